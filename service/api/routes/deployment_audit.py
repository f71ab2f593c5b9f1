"""The whole deployment's audit trail, for the admin: every knowledge base's changes and the deployment's own (keys,
knowledge bases made), newest first, or all of it as JSON Lines."""

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from service.api.routes.audit import ERRORS, AuditPage, Before, Limit, audit_jsonl, audit_page
from service.api.tenancy import AdminOnly, RecordsDep

router = APIRouter(prefix="/api/admin/audit", tags=["audit"], dependencies=[AdminOnly])


@router.get("", response_model=AuditPage, responses=ERRORS)
def deployment_audit_trail(records: RecordsDep, limit: Limit = 100, before: Before = None):
    """Every change in every knowledge base, and the deployment's own (admin)."""
    return audit_page(records, None, limit, before)


@router.get("/export", response_class=StreamingResponse, responses=ERRORS)
def export_deployment_audit_trail(records: RecordsDep) -> StreamingResponse:
    """The whole trail as JSON Lines, newest first (admin)."""
    return audit_jsonl(records, None, "audit.jsonl")
