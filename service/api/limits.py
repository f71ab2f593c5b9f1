"""Limits that keep one client or one input from taking the service down.

Pure ASGI middleware (no ``BaseHTTPMiddleware``: it buffers streams), each
answering with the one JSON error shape:

- ``RateLimitMiddleware``: a token bucket per client address, 429 with ``Retry-After``;
- ``BodyLimitMiddleware``: request bodies over the limit are refused with 413
  before, or while, they are read; only a request carrying the admin token (or a
  write key) gets the larger allowance of an upload;
- ``StreamLimitMiddleware``: at most so many streamed answers at once, 503 beyond;
- ``TimeoutMiddleware``: a request that runs past its deadline is answered with
  503 (or, once a stream has started, with a final ``error`` event) at once.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import HTTPException
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.admin import token_matches
from service.api.errors import error_body, error_response
from service.api.responses import utf8_json
from service.settings import Settings
from service.stores.registry import DEFAULT_KB

UNLIMITED_PATHS = frozenset({"/api/health", "/metrics"})
# The default knowledge base's documents, and each other's (its id in the path).
UPLOAD_PATH = re.compile(r"/api(?:/kbs/(?P<kb>[a-z0-9_-]{1,64}))?/documents(?:/|$)")
ADMIN_CHANGE_METHODS = frozenset({"POST", "PUT", "DELETE"})
MAX_TRACKED_CLIENTS = 10_000


def is_admin_change(scope: Scope) -> bool:
    """Uploads, replacements and deletes: the requests that get the upload allowance and deadline."""
    return scope["method"] in ADMIN_CHANGE_METHODS and UPLOAD_PATH.match(scope["path"]) is not None


def may_upload(settings: Settings, scope: Scope) -> bool:
    """The admin token, or a write key for the knowledge base in the path: a key of another one is refused by
    the route, and must not first get a 200 MB body spooled for it."""
    authorization = Headers(scope=scope).get("authorization")
    if token_matches(settings, authorization):
        return True
    scheme, _, given = (authorization or "").partition(" ")
    registry = getattr(getattr(scope.get("app"), "state", None), "registry", None)
    if scheme.lower() != "bearer" or not given.strip() or registry is None:
        return False
    record = registry.find_key(given.strip())
    target = UPLOAD_PATH.match(scope["path"])
    kb_id = (target.group("kb") if target else None) or DEFAULT_KB
    return record is not None and record.scope == "write" and kb_id in record.kbs


def client_key(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class TokenBuckets:
    """A token bucket per key, refilled at ``rate`` tokens a second up to ``burst``; the oldest keys are forgotten."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0 when a token was taken, else the seconds until one will be there."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


class CallerBudget:
    """A budget of one kind of request (feedback posts) per caller: a key by its id, anyone else by address;
    the bucket holds a minute's worth, so a burst may spend it at once."""

    def __init__(self, per_minute: float, *, what: str) -> None:
        self.what = what
        self.buckets = TokenBuckets(per_minute / 60.0, max(1, math.ceil(per_minute))) if per_minute > 0 else None

    def spend(self, caller: str) -> None:
        """Take one from ``caller``'s budget, or refuse with a 429 (and Retry-After) when it is spent."""
        wait = self.buckets.take(caller) if self.buckets is not None else 0.0
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise HTTPException(
                429, f"too many {self.what} from this caller; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )  # fmt: skip


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        per_second = settings.rate_limit_per_minute / 60.0
        self.buckets = TokenBuckets(per_second, settings.rate_limit_burst) if per_second > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_key(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        response = error_response(
            429, "too_many_requests", f"too many requests from this address; retry in {retry_after} s"
        )
        response.headers["Retry-After"] = str(retry_after)
        await response(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes its own HTTPException through body parsing untouched."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {describe_bytes(limit)}")


def describe_bytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB" if size >= 1_000_000 else f"{size / 1000:g} KB"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.body_limit = settings.max_body_kb * 1000
        # Every file at its largest, plus room for the multipart framing and the title.
        self.upload_limit = int(settings.max_upload_files * settings.max_upload_mb * 1_000_000) + 100_000

    def limit_for(self, scope: Scope) -> int:
        if is_admin_change(scope) and may_upload(self.settings, scope):
            return self.upload_limit
        return self.body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(413, "payload_too_large", f"the request body is larger than {describe_bytes(limit)}")
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


_SCHEMA_BOOL = TypeAdapter(bool)  # lax, as the request models' ``stream: bool`` fields validate


def _wants_stream(body: bytes) -> bool:
    """Whether the route may stream: ``stream`` read as leniently as the most lenient request schema (/v1's) reads
    a boolean, so ``"true"`` and ``1`` count as ``true`` does. A body that is not JSON, or is nested too deep to
    parse, is the route's to refuse."""
    if b'"stream"' not in body:
        return False
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(parsed, dict) or "stream" not in parsed:
        return False
    try:
        return _SCHEMA_BOOL.validate_python(parsed["stream"])
    except ValidationError:
        return False


class StreamLimitMiddleware:
    """Counts open streamed answers: a JSON POST whose body says ``"stream": true``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_streams = settings.max_streams
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = Headers(scope=scope).get("content-type", "") if scope["type"] == "http" else ""
        if scope["type"] != "http" or scope["method"] != "POST" or "json" not in content_type:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        replay = _replaying(body, receive)
        if not _wants_stream(body):
            await self.app(scope, replay, send)
            return
        if self.active >= self.max_streams:
            response = error_response(503, "too_many_streams", f"{self.max_streams} answers are streaming; retry soon")
            response.headers["Retry-After"] = "1"
            await response(scope, replay, send)
            return
        self.active += 1
        try:
            await self.app(scope, replay, send)
        finally:
            self.active -= 1


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body once, then whatever the client sends next (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class TimeoutMiddleware:
    """Answers at the deadline; work still running in a thread finishes unseen (threads cannot be stopped)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.request_timeout = settings.request_timeout_s
        self.upload_timeout = settings.upload_timeout_s
        self._abandoned: set[asyncio.Task] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timeout = self.upload_timeout if is_admin_change(scope) else self.request_timeout
        state = {"started": False, "ended": False, "stream": False, "abandoned": False}

        async def guarded_send(message: Message) -> None:
            if state["abandoned"]:
                raise asyncio.CancelledError  # the answer was given; stop this work at its next await
            if message["type"] == "http.response.start":
                state["started"] = True
                state["stream"] = (
                    Headers(raw=message.get("headers", [])).get("content-type", "").startswith("text/event-stream")
                )
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["ended"] = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if done:
            task.result()  # re-raises what the app raised
            return
        state["abandoned"] = True
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)
        await _answer_timeout(scope, receive, send, state, timeout)

    def _forget(self, task: asyncio.Task) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not report it as lost


async def _answer_timeout(scope: Scope, receive: Receive, send: Send, state: dict, timeout: float) -> None:
    message = f"the request took longer than {timeout:g} s"
    if not state["started"]:
        response = error_response(503, "timeout", message)
        response.headers["Retry-After"] = "1"
        await response(scope, receive, send)
    elif not state["ended"]:
        tail = b""
        if state["stream"]:
            tail = f"event: error\ndata: {utf8_json(error_body('timeout', message))}\n\n".encode()
        await send({"type": "http.response.body", "body": tail, "more_body": False})
