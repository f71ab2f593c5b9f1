"""What create_app adds to protect and watch the service: limits, security headers, request logs, metrics.

The order matters (outermost first): the request log and metrics see every
answer, the refusals included; security headers go on every answer; CORS
(added by create_app) wraps the limits, so a browser on an allowed origin can
read a 429 or 413; then rate limit, body size, open streams and the deadline.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from service.api.audit import AuditTrailMiddleware
from service.api.errors import document_errors
from service.api.limits import BodyLimitMiddleware, RateLimitMiddleware, StreamLimitMiddleware, TimeoutMiddleware
from service.api.metrics import Metrics
from service.api.request_log import RequestLogMiddleware
from service.api.routes import metrics as metrics_routes
from service.api.security import SecurityHeadersMiddleware
from service.settings import Settings


def install_hardening(app: FastAPI, settings: Settings) -> None:
    """Call once, at the end of create_app (after any CORS middleware)."""
    app.state.metrics = Metrics(app.state)
    for limit in (RateLimitMiddleware, BodyLimitMiddleware, StreamLimitMiddleware, TimeoutMiddleware):
        app.user_middleware.append(Middleware(limit, settings=settings))  # innermost, inside CORS
    app.add_middleware(AuditTrailMiddleware)  # files a change before its response starts
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestLogMiddleware, metrics=app.state.metrics)  # outermost
    app.include_router(metrics_routes.router)
    document_errors(app)
