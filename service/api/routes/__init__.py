"""Every router, gathered in one place."""

from fastapi import APIRouter

from service.api.routes import ask, documents, health, jobs, search

api_router = APIRouter()
for module in (ask, search, documents, jobs, health):
    api_router.include_router(module.router)
