"""Every router, gathered in one place."""

from fastapi import APIRouter

from service.api.routes import ask, documents, health, jobs, search, widget

api_router = APIRouter()
for module in (ask, search, documents, jobs, health, widget):
    api_router.include_router(module.router)
