"""OpenAI-style errors for the /v1 routes only: ``{"error": {"message", "type", "param", "code"}}``.

The rest of the service keeps its own error shape (service/api/errors.py); the
/v1 routes use a route class that turns every failure into this one, so that
OpenAI clients show the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.errors import InvalidInputError, NotFoundError, PolicyQAError, UnknownDocumentError
from service.api.responses import Utf8JSONResponse as JSONResponse

logger = logging.getLogger(__name__)

_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def openai_error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def openai_error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None, headers: dict | None = None
) -> JSONResponse:
    return JSONResponse(openai_error_body(status, message, param=param, code=code), status, headers=headers)


def _param(location: tuple) -> str | None:
    """messages.[2].role, as OpenAI names a parameter inside a list."""
    parts = [f"[{part}]" if isinstance(part, int) else str(part) for part in location if part != "body"]
    return ".".join(parts) or None


def _validation(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if not errors or any(e.get("type") == "json_invalid" for e in errors):
        return openai_error_response(400, "We could not parse the JSON body of your request.", code="invalid_json")
    first = errors[0]
    param = _param(tuple(first.get("loc", ())))
    if first.get("type") == "missing":
        return openai_error_response(400, f"Missing required parameter: '{param}'.", param=param, code="missing")
    message = f"Invalid value for '{param}': {first.get('msg', 'invalid')}." if param else first.get("msg", "")
    return openai_error_response(400, message, param=param, code="invalid_value")


def to_openai_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, OpenAIError):
        return openai_error_response(exc.status, exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, RequestValidationError):
        return _validation(exc)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            return openai_error_response(400, "We could not parse the JSON body of your request.", code="invalid_json")
        return openai_error_response(exc.status_code, str(exc.detail), headers=exc.headers)
    if isinstance(exc, UnknownDocumentError):
        return openai_error_response(400, str(exc), param="doc_ids", code=exc.code)
    if isinstance(exc, InvalidInputError):
        return openai_error_response(400, str(exc), code=exc.code)
    if isinstance(exc, NotFoundError):
        return openai_error_response(404, str(exc), code=exc.code)
    if isinstance(exc, PolicyQAError):
        return openai_error_response(503, str(exc), code=exc.code)
    logger.exception("unhandled error on a /v1 route")
    return openai_error_response(500, "internal error; the server log has the details", code="internal_error")


class OpenAIRoute(APIRoute):
    """A route whose failures, validation included, answer in OpenAI's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every failure, in the protocol's shape
                return to_openai_response(exc)

        return route
