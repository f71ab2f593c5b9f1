"""Every router, gathered in one place."""

from fastapi import APIRouter

from service.api.routes import ask, documents, health, jobs, openai_compat, search, widget

api_router = APIRouter()
for module in (ask, search, documents, jobs, health, widget, openai_compat):
    api_router.include_router(module.router)
