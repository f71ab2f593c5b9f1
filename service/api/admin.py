"""The admin token, compared in constant time (service/api/tenancy.py decides what it and the API keys may do)."""

from __future__ import annotations

import hashlib
import hmac

from service.settings import Settings


def same_secret(given: str, expected: str) -> bool:
    """Constant time, whatever the lengths: the SHA-256 digests are compared, not the strings."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest(),
    )


def token_matches(settings: Settings, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the configured admin token (never, when none is set)."""
    if settings.admin_token is None or not authorization:
        return False
    scheme, _, credentials = authorization.partition(" ")
    return scheme.lower() == "bearer" and same_secret(credentials.strip(), settings.admin_token.get_secret_value())
