"""The OpenAI chat-completions protocol: GET /v1/models, POST /v1/chat/completions (plain or streamed).

Point any OpenAI client or chat front end at ``http://HOST:PORT/v1`` with the
model ``policyqa``. The last user message is answered from the documents, in
the context of the earlier ones; the reply is the extractive answer with its
[n] markers and a list of sources, and the structured citations ride along in
``message.citations`` (in the last chunk's ``delta.citations`` when streamed), with ``message.feedback``: the
request that gives feedback on the answer, bar the verdict.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from service.access import Caller
from service.api.openai_compat import render
from service.api.openai_compat.auth import model_id, readable, readable_model, v1_caller
from service.api.openai_compat.errors import OpenAIError, OpenAIRoute, openai_error_response
from service.api.openai_compat.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    Model,
    ModelList,
    OpenAIErrorBody,
)
from service.api.policy_schemas import domain_filters
from service.api.tenancy import KnowledgeBasesDep, RegistryDep
from service.knowledge_bases import KnowledgeBases
from service.stores.registry import DEFAULT_KB, KnowledgeBaseRecord

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
ERRORS = {code: {"model": OpenAIErrorBody} for code in (400, 401, 403, 404)}
V1CallerDep = Annotated[Caller, Depends(v1_caller)]
STREAM_DOC = {
    200: {"content": {"text/event-stream": {}}, "description": "With stream: true, chat.completion.chunk events."}
}


def _model(record: KnowledgeBaseRecord, kbs: KnowledgeBases) -> Model:
    built_at = kbs.default.engine.index.manifest.created_at if record.kb_id == DEFAULT_KB else record.created_at
    try:
        created = int(datetime.fromisoformat(str(built_at)).timestamp())
    except ValueError:
        created = 0
    return Model(id=model_id(record.kb_id), created=created)


@router.get("/models", response_model=ModelList, responses=ERRORS)
def list_models(caller: V1CallerDep, registry: RegistryDep, kbs: KnowledgeBasesDep) -> ModelList:
    """A model per knowledge base the key may read: ``policyqa`` is ``default``, the others go by their id."""
    return ModelList(data=[_model(r, kbs) for r in registry.list_kbs() if readable(caller, r)])


@router.get("/models/{model}", response_model=Model, responses=ERRORS)
def retrieve_model(model: str, request: Request, caller: V1CallerDep, kbs: KnowledgeBasesDep) -> Model:
    return _model(readable_model(request, caller, model), kbs)


@router.post("/chat/completions", response_model=ChatCompletion, responses={**ERRORS, **STREAM_DOC})
async def chat_completions(body: ChatCompletionRequest, request: Request, caller: V1CallerDep, kbs: KnowledgeBasesDep):
    """Answer the last user message from the knowledge base the model names, in the context of the conversation."""
    record = readable_model(request, caller, body.model, param="model")
    render.check_request(body)
    engine = (await run_in_threadpool(kbs.get, record.kb_id)).engine
    turns = render.chat_turns(body)
    # The answer is ready before anything is sent, so a failure is still a plain error response.
    result = await run_in_threadpool(
        engine.ask,
        turns.question,
        history=turns.history,
        top_k=body.top_k,
        mode=body.mode,
        doc_ids=body.doc_ids,
        filters=domain_filters(body.filters),
    )
    reply = render.make_reply(
        result, turns, engine.index.manifest.build_id, model=body.model, view=engine.policy_view(),
        feedback_url="/api/feedback" if record.kb_id == DEFAULT_KB else f"/api/kbs/{record.kb_id}/feedback",
    )  # fmt: skip
    if not body.stream:
        return render.completion(reply)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        _stream(reply, request, include_usage=include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(reply: render.Reply, request: Request, *, include_usage: bool) -> AsyncIterator[str]:
    for chunk in render.chunks(reply, include_usage=include_usage):
        if await request.is_disconnected():
            return  # the client has gone
        yield chunk


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def unknown(path: str, request: Request, caller: V1CallerDep):
    """Anything else under /v1 (embeddings, completions, ...): not offered, in the protocol's shape.

    A served path asked with another method is a 405 naming the method it takes.
    """
    allowed = _ALLOWED.get(path.strip("/")) or ("GET" if _MODEL_PATH.fullmatch(path.strip("/")) else None)
    if allowed is not None:
        return openai_error_response(
            405, f"Method {request.method} is not allowed on /v1/{path}; use {allowed}.",
            code="method_not_allowed", headers={"Allow": allowed},
        )  # fmt: skip
    raise OpenAIError(
        404, f"Unknown endpoint /v1/{path}: only /v1/models and /v1/chat/completions are served.", code="unknown_url"
    )


_ALLOWED = {"models": "GET", "chat/completions": "POST"}
_MODEL_PATH = re.compile(r"models/[^/]+")
