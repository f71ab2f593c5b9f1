"""Optional API keys for the /v1 endpoints: ``Authorization: Bearer <key>``, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from service.api.openai_compat.errors import OpenAIError


def require_api_key(request: Request) -> None:
    keys = request.app.state.settings.openai_api_keys
    if not keys:
        return  # no keys configured: open
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given_bytes = given.strip().encode() if scheme.lower() == "bearer" else b""
    # Every key is compared, whatever matched, so the time taken says nothing about which.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given_bytes, key.get_secret_value().encode())
    if not matched:
        message = (
            "Incorrect API key provided." if given_bytes else "Missing API key: send 'Authorization: Bearer <key>'."
        )
        raise OpenAIError(401, message, code="invalid_api_key")
