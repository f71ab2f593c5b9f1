"""One JSON error shape for every failure: ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyQAError,
    UnknownDocumentError,
)
from service.api.responses import Utf8JSONResponse as JSONResponse

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


def error_body(code: str, message: str, details: list[dict] | None = None) -> dict:
    error: dict = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, code: str, message: str, details: list[dict] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    details = [
        {"field": ".".join(str(part) for part in e.get("loc", ()) if part != "body"), "message": e.get("msg", "")}
        for e in errors
    ]
    summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details)
    return error_response(422, "invalid_request", summary, details)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        # FastAPI's own words for a body that is not even text (invalid UTF-8).
        return error_response(400, "malformed_json", "the request body is not valid UTF-8 JSON")
    code = _HTTP_CODES.get(exc.status_code, "error")
    response = error_response(exc.status_code, code, str(exc.detail), None)
    response.headers.update(exc.headers or {})  # WWW-Authenticate on a 401
    if exc.status_code == 405 and (methods := _documented_methods(request)):
        response.headers["Allow"] = ", ".join(methods)
    return response


def _documented_methods(request: Request) -> list[str]:
    """Every method the OpenAPI schema gives this path (Starlette's Allow names only the first route's). Where a
    literal path and a templated one both match (``/terms/export`` and ``/terms/{term_id}``), the path is the most
    literal one's: routing gives it its methods first."""
    matching: list[tuple[int, set[str]]] = []
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            matching.append((template.count("{"), {method.upper() for method in item}))
    fewest = min((placeholders for placeholders, _ in matching), default=0)
    methods = set().union(*(found for placeholders, found in matching if placeholders == fewest))
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


_DOMAIN_STATUS = ((AuthenticationError, 401), (PermissionDeniedError, 403), (NotFoundError, 404), (ConflictError, 409))


async def _domain_error(request: Request, exc: PolicyQAError) -> JSONResponse:
    status = next((status for kind, status in _DOMAIN_STATUS if isinstance(exc, kind)), None)
    if status is None:
        status = 422 if isinstance(exc, UnknownDocumentError | InvalidInputError) else 503
    response = error_response(status, exc.code, str(exc), getattr(exc, "details", None))
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "-")
    logger.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id)
    return error_response(500, "internal_error", "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PolicyQAError, _domain_error)
    app.add_exception_handler(Exception, _unexpected_error)


# Answers any operation may give, whatever its own ``responses=`` say: the limits and deadlines.
COMMON_ERRORS = {
    "413": "The request body is over the limit (payload_too_large).",
    "429": "Too many requests from this address; see Retry-After (too_many_requests).",
    "503": "Busy, timed out or the index is unavailable; see Retry-After where given.",
}
REQUEST_ERRORS = {
    "400": "The body is not valid JSON, or not valid UTF-8 (malformed_json).",
    "422": "The request does not match the schema (invalid_request), or names unknown documents.",
}
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def document_errors(app: FastAPI) -> None:
    """Document the errors in the OpenAPI schema as they are sent: our error shape, not FastAPI's.

    FastAPI documents a 422 with its own ``HTTPValidationError`` body, which this
    service never sends; every operation also gets the limit and deadline errors.
    """
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(_error_schemas())
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                _document_operation(operation)
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _document_operation(operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    takes_input = "requestBody" in operation or operation.get("parameters")
    errors = {**COMMON_ERRORS, **(REQUEST_ERRORS if takes_input else {})}
    for status, description in errors.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = _ERROR_REF
            response.setdefault("description", "Error")


def _error_schemas() -> dict:
    from service.api.schemas import ErrorBody

    schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return {**definitions, "ErrorBody": schema}
