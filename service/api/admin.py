"""Admin access: a bearer token compared in constant time; no configured token, no admin endpoints."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.kb import KnowledgeBase
from service.settings import Settings

_bearer = HTTPBearer(auto_error=False)


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


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    token = request.app.state.settings.admin_token
    if token is None:
        raise HTTPException(403, "admin endpoints are disabled: set POLICYQA_ADMIN_TOKEN to enable them")
    given = credentials.credentials if credentials else ""
    if not same_secret(given, token.get_secret_value()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def get_kb(request: Request) -> KnowledgeBase:
    return request.app.state.kb


AdminDep = Depends(require_admin)
KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_kb)]
