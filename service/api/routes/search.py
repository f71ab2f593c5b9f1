from fastapi import APIRouter

from service.api import presenters
from service.api.deps import EngineDep
from service.api.schemas import ErrorBody, Passage, SearchRequest, SearchResponse

router = APIRouter(prefix="/api", tags=["search"])
ERRORS = {400: {"model": ErrorBody}, 422: {"model": ErrorBody}}


@router.post("/search", response_model=SearchResponse, responses=ERRORS)
def search(request: SearchRequest, engine: EngineDep) -> SearchResponse:
    """Passages ranked for a query, without composing an answer."""
    timed = engine.search(request.query, top_k=request.top_k, mode=request.mode, doc_ids=request.doc_ids)
    return SearchResponse(
        query=request.query,
        results=[Passage(**presenters.passage(hit)) for hit in timed.result.hits],
        took_ms=round(timed.took_ms, 2),
    )
