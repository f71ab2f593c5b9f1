"""Security headers on every response.

A response that sets its own ``Content-Security-Policy`` (the demo page does,
to allow its inline styles by hash) keeps it; everything else gets a policy
that allows nothing, which suits JSON, the event stream and the widget's
script and stylesheet. The OpenAPI pages load Swagger UI and ReDoc from their
CDN, and get a policy that allows just that.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
# Scripts and stylesheets that other sites embed: loadable from any origin.
EMBEDDABLE_PATHS = frozenset({"/widget.js", "/widget.css"})

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", DOCS_CSP if path in DOCS_PATHS else DEFAULT_CSP)
                resource_policy = "cross-origin" if path in EMBEDDABLE_PATHS else "same-origin"
                headers.setdefault("Cross-Origin-Resource-Policy", resource_policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)
