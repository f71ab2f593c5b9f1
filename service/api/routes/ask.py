from fastapi import APIRouter

from service.api import presenters
from service.api.deps import EngineDep
from service.api.schemas import AskRequest, AskResponse, ErrorBody

router = APIRouter(prefix="/api", tags=["answers"])
ERRORS = {400: {"model": ErrorBody}, 422: {"model": ErrorBody}}


@router.post("/ask", response_model=AskResponse, responses=ERRORS)
def ask(request: AskRequest, engine: EngineDep) -> AskResponse:
    """Answer a question with sentences quoted from the documents, each with its [n] citation."""
    # A plain def: FastAPI runs it in a worker thread, so embedding does not block the loop.
    timed = engine.ask(request.question, top_k=request.top_k, mode=request.mode, doc_ids=request.doc_ids)
    answer = timed.answer
    return AskResponse(
        question=request.question,
        answer=answer.text,
        answerable=answer.answerable,
        relevance=round(answer.relevance, 6),
        citations=presenters.citations(answer),
        took_ms=round(timed.took_ms, 2),
    )
