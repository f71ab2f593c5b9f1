from fastapi import APIRouter

from service.api.deps import EngineDep
from service.api.schemas import Health

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=Health)
def health(engine: EngineDep) -> Health:
    """Liveness and what is being served."""
    manifest = engine.index.manifest
    return Health(
        status="ok",
        documents=engine.index.catalogue.document_count(),
        chunks=engine.index.catalogue.count(),
        embedder=manifest.embedder.name,
        dimension=manifest.embedder.dimension,
        build_id=manifest.build_id,
        built_at=manifest.created_at,
    )
