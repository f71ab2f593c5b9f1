"""Every router, gathered in one place.

The per-knowledge-base routers are mounted twice: under /api/kbs/{kb_id}/
and, for the knowledge base ``default``, under /api/ as they always were.
"""

from fastapi import APIRouter

from service.api.routes import ask, documents, health, jobs, kbs, keys, openai_compat, search, widget
from service.api.tenancy import KbPath

PER_KB = (ask, search, documents, jobs)

api_router = APIRouter()
for module in PER_KB:
    api_router.include_router(module.router, prefix="/api")
for module in (kbs, keys):
    api_router.include_router(module.router)
for module in PER_KB:
    api_router.include_router(module.router, prefix="/api/kbs/{kb_id}", dependencies=[KbPath])
for module in (health, widget, openai_compat):
    api_router.include_router(module.router)
