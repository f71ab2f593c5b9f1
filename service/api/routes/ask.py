import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from index.answering.engine import QAEngine, TimedAnswer
from index.answering.followup import Turn
from index.errors import PolicyQAError
from service.api import presenters
from service.api.errors import error_body
from service.api.policy_schemas import domain_filters
from service.api.schemas import AskRequest, AskResponse, ErrorBody
from service.api.tenancy import ReadKbDep

router = APIRouter(tags=["answers"])
ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422)}
STREAM_DOC = {200: {"content": {"text/event-stream": {}}, "description": "With stream: true, Server-Sent Events."}}


@router.post("/ask", response_model=AskResponse, responses={**ERRORS, **STREAM_DOC})
async def ask(body: AskRequest, request: Request, target: ReadKbDep):
    """Answer a question with sentences quoted from the documents, each with its [n] citation.

    With ``"stream": true`` the answer comes as Server-Sent Events: ``citations``
    first, then ``delta`` pieces of the answer text, then ``done`` (or ``error``).
    With ``history`` (the earlier turns), a follow-up question is answered in their context.
    """
    engine = target.engine
    if body.stream:
        return StreamingResponse(
            _events(body, request, engine),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    # Embedding is CPU work: in a worker thread, so the event loop keeps serving.
    timed = await run_in_threadpool(_answer, engine, body)
    return _response(body, timed, engine)


def _answer(engine: QAEngine, body: AskRequest) -> TimedAnswer:
    history = [Turn(t.role, t.content) for t in body.history]
    return engine.ask(
        body.question, history=history, top_k=body.top_k, mode=body.mode, doc_ids=body.doc_ids,
        filters=domain_filters(body.filters),
    )  # fmt: skip


def _response(body: AskRequest, result: TimedAnswer, engine: QAEngine) -> AskResponse:
    answer = result.answer
    return AskResponse(
        question=body.question,
        answer=answer.text,
        answerable=answer.answerable,
        relevance=round(answer.relevance, 6),
        min_relevance=engine.options.answer.min_relevance,
        confidence=None if answer.confidence is None else round(answer.confidence, 4),
        min_confidence=engine.current().composer.min_confidence,
        short_answer=presenters.short_answer(answer),
        declined_reason=answer.declined_reason,
        citations=presenters.citations(answer, engine.policy_view()),
        took_ms=round(result.took_ms, 2),
        resolved_question=result.query if result.resolution.followup else None,
        notices=list(answer.notices),
        faq=presenters.faq_lead(answer),
    )


def _event(name: str, payload: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _events(body: AskRequest, request: Request, engine: QAEngine) -> AsyncIterator[str]:
    if await request.is_disconnected():
        return  # the client left before any work was done
    try:
        answered = await run_in_threadpool(_answer, engine, body)
        response = _response(body, answered, engine)
    except PolicyQAError as exc:
        yield _event("error", error_body(exc.code, str(exc)))
        return
    except Exception:  # the stream is already open: report, never break it
        yield _event("error", error_body("internal_error", "internal error; the server log has the details"))
        return
    yield _event("citations", {"citations": [c.model_dump() for c in response.citations]})
    if response.short_answer is not None:
        yield _event("short_answer", response.short_answer.model_dump())
    for piece in presenters.answer_pieces(response.answer):
        if await request.is_disconnected():
            return
        yield _event("delta", {"text": piece})
    yield _event(
        "done",
        {
            "answer": response.answer,
            "answerable": response.answerable,
            "relevance": response.relevance,
            "confidence": response.confidence,
            "short_answer": response.short_answer.model_dump() if response.short_answer else None,
            "declined_reason": response.declined_reason,
            "took_ms": response.took_ms,
            "resolved_question": response.resolved_question,
            "notices": response.notices,
            "faq": response.faq.model_dump() if response.faq else None,
        },
    )
