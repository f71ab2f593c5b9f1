"""The audit trail: every change made through the API, who made it, from where, and when.

A change is any successful POST, PUT, PATCH or DELETE outside the read paths (asking, searching, /v1, a reader's
feedback). The middleware here files one ``audit`` record per change in the staff record store, under the knowledge
base the change touched, or under ``*`` for the deployment's own (keys, a new knowledge base). The record is filed
before the response starts, so a client that saw its change succeed finds it in the trail. A route may add what the
path does not say (a title, a term) with ``note_for_audit``. Records of kind ``audit`` are append-only in both stores.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.request_log import route_template
from service.api.tenancy import resolve_caller
from service.stores.records import AUDIT_KIND
from service.stores.registry import DEFAULT_KB

logger = logging.getLogger(__name__)

AUDIT_DETAIL_STATE = "audit_detail"
DEPLOYMENT = "*"  # the trail of what belongs to no one knowledge base: keys, knowledge bases being made
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POSTs that read: a question, a search, how terms read a question, a /v1 completion, a reader's verdict.
READ_ROUTE_ENDINGS = ("/ask", "/ask/stream", "/search", "/terms/analyze", "/feedback")
READ_ROUTE_PREFIXES = ("/v1/",)
DEPLOYMENT_ROUTES = ("/api/keys", "/api/kbs")
MAX_DETAIL_CHARS = 2_000


def note_for_audit(request: Request, **detail: object) -> None:
    """Add ``detail`` (short, JSON-safe values) to this request's audit record."""
    current = getattr(request.state, AUDIT_DETAIL_STATE, None) or {}
    setattr(request.state, AUDIT_DETAIL_STATE, {**current, **detail})


def audited(method: str, route: str) -> bool:
    if method not in CHANGES or not route.startswith("/api/"):
        return False
    return not route.endswith(READ_ROUTE_ENDINGS) and not route.startswith(READ_ROUTE_PREFIXES)


def audited_kb(route: str, path_params: Mapping[str, str]) -> str:
    if "kb_id" in path_params:
        return path_params["kb_id"]
    return DEPLOYMENT if route.startswith(DEPLOYMENT_ROUTES) else DEFAULT_KB


def _bounded(detail: dict) -> dict:
    return {key: value if len(str(value)) <= MAX_DETAIL_CHARS else str(value)[:MAX_DETAIL_CHARS] + "…"
            for key, value in detail.items()}  # fmt: skip


class AuditTrailMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES:
            await self.app(scope, receive, send)
            return

        async def send_after_filing(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                await self._file(scope, message["status"])
            await send(message)

        await self.app(scope, receive, send_after_filing)

    async def _file(self, scope: Scope, status: int) -> None:
        route = route_template(scope)
        if not audited(scope["method"], route):
            return
        request = Request(scope)
        try:
            caller = await run_in_threadpool(resolve_caller, request)
            path_params = dict(scope.get("path_params") or {})
            client = scope.get("client")
            body = {
                "who": caller.who, "key_id": caller.key_id, "admin": caller.admin,
                "action": f"{scope['method']} {route}", "path": scope["path"], "params": path_params,
                "status": status, "client": client[0] if client else None,
                "request_id": scope.get("state", {}).get("request_id"),
                "detail": _bounded(getattr(request.state, AUDIT_DETAIL_STATE, None) or {}),
            }  # fmt: skip
            kb_id = audited_kb(route, path_params)
            await run_in_threadpool(request.app.state.records.add, AUDIT_KIND, kb_id, body)
        except Exception:  # the change is made; a trail that cannot be written is logged loudly, not hidden
            logger.exception("could not file the audit record of %s %s", scope["method"], scope["path"])
