"""Admin access: a bearer token compared in constant time; no configured token, no admin endpoints."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.kb import KnowledgeBase

_bearer = HTTPBearer(auto_error=False)


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    token = request.app.state.settings.admin_token
    if token is None:
        raise HTTPException(403, "admin endpoints are disabled: set POLICYQA_ADMIN_TOKEN to enable them")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def get_kb(request: Request) -> KnowledgeBase:
    return request.app.state.kb


AdminDep = Depends(require_admin)
KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_kb)]
