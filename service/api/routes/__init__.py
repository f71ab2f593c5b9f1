"""Every router, gathered in one place.

The per-knowledge-base routes are mounted twice: under /api/kbs/{kb_id}/
and, for the knowledge base ``default``, under /api/ as they always were.
Each mount is a copy whose routes carry the whole path themselves: the request
log and metrics label a request by its route's own path template.
"""

from collections.abc import Sequence

from fastapi import APIRouter, params

from service.api.routes import (
    ask,
    audit,
    caller,
    chunks,
    console,
    deployment_audit,
    document_export,
    document_metadata,
    documents,
    evaluations,
    faq,
    feedback,
    gold,
    health,
    jobs,
    keys,
    knowledge_bases,
    openai_compat,
    search,
    terms,
    trash,
    widget,
)
from service.api.tenancy import KbPath

PER_KB = (
    ask,
    search,
    document_metadata,
    document_export,
    documents,
    faq,
    chunks,
    jobs,
    evaluations,
    audit,
    feedback,
    gold,
    terms,
    trash,
)


def mounted(router: APIRouter, prefix: str, dependencies: Sequence[params.Depends] = ()) -> APIRouter:
    """A copy of ``router``'s routes under ``prefix``, with ``dependencies`` added to each."""
    copy = APIRouter(prefix=prefix)
    for route in router.routes:
        copy.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods),
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=[*dependencies, *route.dependencies],
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            name=route.name,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
        )
    return copy


api_router = APIRouter()
for module in PER_KB:
    api_router.include_router(mounted(module.router, "/api"))
for module in (knowledge_bases, keys, caller, deployment_audit):
    api_router.include_router(module.router)
for module in PER_KB:
    api_router.include_router(mounted(module.router, "/api/kbs/{kb_id}", [KbPath]))
for module in (health, widget, console, openai_compat):
    api_router.include_router(module.router)
