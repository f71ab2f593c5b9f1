"""One JSON log line per request, an ``X-Request-ID`` on every response, and the request metrics.

The line holds the request id, method, path (never the query string, which
may carry anything), route template, status, duration and client address; no
header is logged, so no token can be. A sane incoming ``X-Request-ID`` (up to
64 of ``A-Z a-z 0-9 . _ -``) is kept, so a proxy's id follows the request;
anything else is replaced by a fresh one.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.metrics import Metrics

logger = logging.getLogger("policyqa.requests")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
UNMATCHED_ROUTE = "(no route)"  # unknown paths, and requests refused before routing


def request_id_from(scope: Scope) -> str:
    given = Headers(scope=scope).get(REQUEST_ID_HEADER.lower(), "")
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/documents/{doc_id}``): a bounded label, unlike the path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.observe(route=route, method=scope["method"], status=status, seconds=seconds)
            client = scope.get("client")
            record = {
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": client[0] if client else None,
            }
            logger.info(json.dumps(record))  # ASCII: a path can hold no line break
