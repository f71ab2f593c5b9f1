"""Who the bearer credential is: what a console shows after sign-in, and the check that the token is right."""

from fastapi import APIRouter

from index.errors import AuthenticationError
from service.api.schemas import CallerOut, ErrorBody
from service.api.tenancy import BearerDoc, CallerDep

router = APIRouter(prefix="/api", tags=["keys"])


@router.get("/caller", response_model=CallerOut, responses={401: {"model": ErrorBody}})
def who_is_calling(caller: CallerDep, _credentials: BearerDoc) -> CallerOut:
    """The admin, or a key's scope and knowledge bases; a 401 when the credential matches nothing.

    It tells nothing a request with the same credential could not find out by trying.
    """
    if caller.admin:
        return CallerOut(role="admin", kbs=None)
    if caller.anonymous:
        raise AuthenticationError("missing or wrong bearer token: send the admin token or an API key")
    return CallerOut(role=caller.scope, kbs=sorted(caller.kbs))
