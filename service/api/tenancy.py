"""Who is calling and which knowledge base a route serves: the Depends aliases behind every route.

The caller comes from ``Authorization: Bearer <admin token | API key>``;
without one, or with one that matches nothing (a revoked key, the placeholder
an OpenAI client must send), the caller is anonymous, which reads the public
knowledge bases and gets a 401 anywhere else; the decision is ``service.access.decide``; a refusal is a
domain error that the error handlers answer in the one JSON shape.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from index.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from service.access import ADMIN, ANONYMOUS, Action, Caller, Decision, KbAccess, decide
from service.api.admin import same_secret
from service.knowledge_bases import KnowledgeBases, LoadedKnowledgeBase
from service.stores.records import RecordStore
from service.stores.registry import DEFAULT_KB, KB_ID_PATTERN, KnowledgeBaseRecord, Registry, valid_kb_id

# Documents the bearer scheme in the OpenAPI schema; the credential itself is read by resolve_caller.
_bearer_scheme = HTTPBearer(auto_error=False, description="The admin token or an API key (POST /api/keys).")
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]
LEGACY_V1_CALLER = Caller(kbs=frozenset({DEFAULT_KB}), scope="read")  # a POLICYQA_OPENAI_API_KEYS key


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_records(request: Request) -> RecordStore:
    return request.app.state.records


def get_kbs(request: Request) -> KnowledgeBases:
    return request.app.state.kbs


def bearer(request: Request) -> str | None:
    """The bearer credential, or None."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


CALLER_STATE = "caller"


def resolve_caller(request: Request) -> Caller:
    """Who sent the request, found once per request: the route's dependency and the audit trail (which files the
    change after it) share the request's state."""
    known = getattr(request.state, CALLER_STATE, None)
    if known is None:
        known = identify_caller(request)
        setattr(request.state, CALLER_STATE, known)
    return known


def identify_caller(request: Request) -> Caller:
    """Who the request's bearer credential names (every secret compared in constant time)."""
    given = bearer(request)
    if given is None:
        return ANONYMOUS
    settings = request.app.state.settings
    if settings.admin_token is not None and same_secret(given, settings.admin_token.get_secret_value()):
        return ADMIN
    registry = get_registry(request)
    record = registry.find_key(given)
    if record is not None:
        registry.note_key_use(record.key_id)  # written at most once a minute per key: GET /api/keys shows it
        return Caller(kbs=frozenset(record.kbs), scope=record.scope, key_id=record.key_id, label=record.label)
    legacy = False
    for key in settings.openai_api_keys:  # every one compared, whatever matched
        legacy |= same_secret(given, key.get_secret_value())
    return LEGACY_V1_CALLER if legacy else ANONYMOUS


def enforce(decision: Decision, kb_id: str | None) -> None:
    """Raise the domain error a refusal is."""
    if decision is Decision.ALLOW:
        return
    if decision is Decision.NOT_FOUND:
        raise NotFoundError(f"no knowledge base {kb_id!r}")
    if decision is Decision.UNAUTHENTICATED:
        raise AuthenticationError("missing or wrong bearer token: this needs an API key or the admin token")
    if decision is Decision.DISABLED:
        raise PermissionDeniedError("admin endpoints are disabled: set POLICYQA_ADMIN_TOKEN to enable them")
    raise PermissionDeniedError(f"this key does not grant that in knowledge base {kb_id!r}")


def kb_access(record: KnowledgeBaseRecord | None) -> KbAccess | None:
    return KbAccess(record.kb_id, record.public) if record else None


def check(request: Request, caller: Caller, kb_id: str | None, action: Action) -> KnowledgeBaseRecord | None:
    """The knowledge base's record, if the caller may do ``action`` there (kb_id None: no knowledge base)."""
    record = get_registry(request).kb(kb_id) if kb_id is not None and valid_kb_id(kb_id) else None
    admin_enabled = request.app.state.settings.admin_token is not None
    enforce(decide(caller, kb_access(record), action, admin_enabled=admin_enabled), kb_id)
    return record


def _kb_id(request: Request) -> str:
    return request.path_params.get("kb_id", DEFAULT_KB)  # the unprefixed routes serve default


def _loaded(action: Action):
    def dependency(request: Request) -> Iterator[LoadedKnowledgeBase]:
        """The knowledge base, leased until the response is sent: never evicted under the request."""
        kb_id = _kb_id(request)
        check(request, resolve_caller(request), kb_id, action)
        with get_kbs(request).leased(kb_id) as loaded:
            yield loaded

    return _documented(dependency, action)


def _admin_loaded(request: Request) -> Iterator[LoadedKnowledgeBase]:
    """An existing knowledge base, for the admin: "admin" alone is allowed without one, this route needs one."""
    kb_id = _kb_id(request)
    if check(request, resolve_caller(request), kb_id, "admin") is None:
        raise NotFoundError(f"no knowledge base {kb_id!r}")
    with get_kbs(request).leased(kb_id) as loaded:
        yield loaded


def _record(action: Action):
    def dependency(request: Request) -> KnowledgeBaseRecord:
        kb_id = _kb_id(request)
        record = check(request, resolve_caller(request), kb_id, action)
        if record is None:  # the admin may act without a knowledge base, but not on a missing one
            raise NotFoundError(f"no knowledge base {kb_id!r}")
        return record

    return _documented(dependency, action)


def _documented(dependency, action: Action):
    """Write and admin routes show the bearer scheme in the OpenAPI schema; reads do not need it (public ones)."""
    if action == "read":
        return dependency

    if inspect.isgeneratorfunction(dependency):

        def with_scheme(request: Request, _credentials: BearerDoc):
            yield from dependency(request)

    else:

        def with_scheme(request: Request, _credentials: BearerDoc):
            return dependency(request)

    with_scheme.__name__ = f"{action}_{dependency.__name__}"
    return with_scheme


def require_admin(request: Request, _credentials: BearerDoc) -> None:
    check(request, resolve_caller(request), None, "admin")


def kb_path(
    kb_id: Annotated[str, Path(pattern=KB_ID_PATTERN, max_length=64, description="The knowledge base.")],
) -> None:
    """Declares (and validates) the {kb_id} of the per-knowledge-base routes."""


CallerDep = Annotated[Caller, Depends(resolve_caller)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
RecordsDep = Annotated[RecordStore, Depends(get_records)]
KnowledgeBasesDep = Annotated[KnowledgeBases, Depends(get_kbs)]
ReadKbDep = Annotated[LoadedKnowledgeBase, Depends(_loaded("read"))]
WriteKbDep = Annotated[LoadedKnowledgeBase, Depends(_loaded("write"))]
AdminKbDep = Annotated[LoadedKnowledgeBase, Depends(_documented(_admin_loaded, "admin"))]
ReadableKbRecordDep = Annotated[KnowledgeBaseRecord, Depends(_record("read"))]
WritableKbRecordDep = Annotated[KnowledgeBaseRecord, Depends(_record("write"))]
AdminKbRecordDep = Annotated[KnowledgeBaseRecord, Depends(_record("admin"))]
AdminOnly = Depends(require_admin)
KbPath = Depends(kb_path)
