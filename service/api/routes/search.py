from fastapi import APIRouter

from service.api import presenters
from service.api.policy_schemas import domain_filters
from service.api.schemas import ErrorBody, Passage, SearchRequest, SearchResponse
from service.api.tenancy import ReadKbDep

router = APIRouter(tags=["search"])
ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422)}


@router.post("/search", response_model=SearchResponse, responses=ERRORS)
def search(request: SearchRequest, target: ReadKbDep) -> SearchResponse:
    """Passages ranked for a query, without composing an answer."""
    engine = target.engine
    timed = engine.search(
        request.query, top_k=request.top_k, mode=request.mode, doc_ids=request.doc_ids,
        filters=domain_filters(request.filters),
    )  # fmt: skip
    view = engine.policy_view()
    return SearchResponse(
        query=request.query,
        results=[Passage(**presenters.passage(hit, view)) for hit in timed.result.hits],
        took_ms=round(timed.took_ms, 2),
    )
