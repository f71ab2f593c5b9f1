"""The audit trail of one knowledge base, read by its write keys and the admin (the whole deployment's, for the
admin, is routes/deployment_audit.py).

Newest first, paged with ``before`` (a record id); ``/export`` streams it all as JSON Lines. Nothing here changes a
record: the trail is append-only (service/stores/records.py refuses it).
"""

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from service.api.schemas import ErrorBody
from service.api.tenancy import RecordsDep, WritableKbRecordDep
from service.stores.records import AUDIT_KIND, MAX_LIST, RecordStore, StaffRecord

router = APIRouter(prefix="/audit", tags=["audit"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 422)}
EXPORT_PAGE = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIST, description="How many records, newest first.")]
Before = Annotated[str | None, Query(max_length=40, pattern=r"^[0-9]{16}-[0-9a-f]{8}$", description="Page on: "
                                     "the records filed before this record id.")]  # fmt: skip


class AuditRecordOut(BaseModel):
    record_id: str
    kb_id: str = Field(description="The knowledge base changed, or * for the deployment's own (keys, new bases).")
    at: str
    who: str = Field(description='"admin", or "key <id> (<label>)".')
    key_id: str | None
    action: str = Field(description="The method and route template: DELETE /api/kbs/{kb_id}/documents/{doc_id}.")
    path: str
    params: dict
    status: int
    client: str | None = Field(description="The client's address (the proxy's X-Forwarded-For behind nginx).")
    request_id: str | None
    detail: dict


class AuditPage(BaseModel):
    data: list[AuditRecordOut]
    count: int
    next_before: str | None = Field(description="Pass as ``before`` for the next page; null on the last.")


@router.get("", response_model=AuditPage, responses=ERRORS)
def kb_audit_trail(record: WritableKbRecordDep, records: RecordsDep, limit: Limit = 100, before: Before = None):
    """This knowledge base's changes: who, what, when, from where (write keys of it and the admin)."""
    return audit_page(records, record.kb_id, limit, before)


@router.get("/export", response_class=StreamingResponse, responses=ERRORS)
def export_kb_audit_trail(record: WritableKbRecordDep, records: RecordsDep) -> StreamingResponse:
    """The whole trail of this knowledge base as JSON Lines, newest first."""
    return audit_jsonl(records, record.kb_id, f"audit-{record.kb_id}.jsonl")


def _out(record: StaffRecord) -> AuditRecordOut:
    body = record.body
    return AuditRecordOut(
        record_id=record.record_id, kb_id=record.kb_id, at=record.created_at, who=body.get("who", ""),
        key_id=body.get("key_id"), action=body.get("action", ""), path=body.get("path", ""),
        params=body.get("params") or {}, status=body.get("status", 0), client=body.get("client"),
        request_id=body.get("request_id"), detail=body.get("detail") or {},
    )  # fmt: skip


def audit_page(records: RecordStore, kb_id: str | None, limit: int, before: str | None) -> AuditPage:
    found = records.list(AUDIT_KIND, kb_id, limit=limit, before=before)
    data = [_out(record) for record in found]
    return AuditPage(data=data, count=len(data), next_before=found[-1].record_id if len(found) == limit else None)


def audit_jsonl(records: RecordStore, kb_id: str | None, filename: str) -> StreamingResponse:
    def lines() -> Iterator[str]:
        before = None
        while page := records.list(AUDIT_KIND, kb_id, limit=EXPORT_PAGE, before=before):
            yield from (_out(record).model_dump_json() + "\n" for record in page)
            before = page[-1].record_id

    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)
