"""Who calls /v1: ``Authorization: Bearer <key>`` (an API key, the admin token, or one of
POLICYQA_OPENAI_API_KEYS, which read ``default``), and which knowledge base a model names."""

from __future__ import annotations

from fastapi import Request

from service.access import Caller, Decision, decide
from service.api.openai_compat.errors import OpenAIError
from service.api.openai_compat.schemas import MODEL_ID
from service.api.tenancy import bearer, get_registry, kb_access, resolve_caller
from service.stores.registry import DEFAULT_KB, KnowledgeBaseRecord, valid_kb_id


def v1_caller(request: Request) -> Caller:
    """The caller; when POLICYQA_OPENAI_API_KEYS is set, /v1 is closed to anonymous callers, as before."""
    caller = resolve_caller(request)
    if caller.anonymous and request.app.state.settings.openai_api_keys:
        if bearer(request) is not None:
            raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
        raise OpenAIError(401, "Missing API key: send 'Authorization: Bearer <key>'.", code="invalid_api_key")
    return caller


def model_id(kb_id: str) -> str:
    return MODEL_ID if kb_id == DEFAULT_KB else kb_id


def kb_id_of(model: str) -> str:
    return DEFAULT_KB if model == MODEL_ID else model


def readable(caller: Caller, record: KnowledgeBaseRecord) -> bool:
    return decide(caller, kb_access(record), "read") is Decision.ALLOW


def readable_model(request: Request, caller: Caller, model: str, *, param: str | None = None) -> KnowledgeBaseRecord:
    """The knowledge base a model names, if the caller may read it; else the protocol's error."""
    kb_id = kb_id_of(model)
    record = get_registry(request).kb(kb_id) if valid_kb_id(kb_id) else None
    decision = decide(caller, kb_access(record), "read")
    if decision is Decision.ALLOW and record is not None:
        return record
    if decision is Decision.UNAUTHENTICATED:
        raise OpenAIError(401, f"The model '{model}' needs an API key.", param=param, code="invalid_api_key")
    if decision is Decision.FORBIDDEN:
        raise OpenAIError(403, f"This key may not use the model '{model}'.", param=param, code="model_not_permitted")
    raise OpenAIError(
        404, f"The model '{model}' does not exist; GET /v1/models lists yours.", param=param, code="model_not_found"
    )
