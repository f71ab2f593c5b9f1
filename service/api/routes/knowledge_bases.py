"""Knowledge bases as resources: /api/kbs (each one's own routes are the per-knowledge-base routers)."""

from dataclasses import asdict

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from service.access import Decision, decide
from service.api.audit import note_for_audit
from service.api.schemas import ErrorBody, KbCreate, KbDeleted, KbList, KbOut, KbUpdate
from service.api.tenancy import (
    AdminKbRecordDep,
    AdminOnly,
    CallerDep,
    KbPath,
    KnowledgeBasesDep,
    ReadableKbRecordDep,
    RecordsDep,
    RegistryDep,
    kb_access,
)
from service.knowledge_bases import KnowledgeBases
from service.stores.records import KEPT_AFTER_DELETE
from service.stores.registry import KnowledgeBaseRecord

router = APIRouter(prefix="/api/kbs", tags=["knowledge bases"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)}


def _out(record: KnowledgeBaseRecord, kbs: KnowledgeBases) -> KbOut:
    return KbOut(**asdict(record), **kbs.counts(record.kb_id))


@router.post("", response_model=KbOut, status_code=201, responses=ERRORS, dependencies=[AdminOnly])
async def create_kb(body: KbCreate, registry: RegistryDep, kbs: KnowledgeBasesDep, request: Request) -> KbOut:
    """A new, empty knowledge base (admin)."""
    note_for_audit(request, kb_id=body.kb_id, title=body.title, public=body.public)
    record = registry.create_kb(kb_id=body.kb_id, title=body.title, description=body.description, public=body.public)
    try:
        await run_in_threadpool(kbs.create, record.kb_id)
    except BaseException:
        registry.delete_kb(record.kb_id)
        raise
    return _out(record, kbs)


@router.get("", response_model=KbList, responses=ERRORS)
def list_kbs(caller: CallerDep, registry: RegistryDep, kbs: KnowledgeBasesDep) -> KbList:
    """The knowledge bases the caller may read (public ones, the key's own; all of them for the admin)."""
    readable = [r for r in registry.list_kbs() if decide(caller, kb_access(r), "read") is Decision.ALLOW]
    data = [_out(record, kbs) for record in readable]
    return KbList(data=data, count=len(data))


@router.get("/{kb_id}", response_model=KbOut, responses=ERRORS, dependencies=[KbPath])
def get_kb(record: ReadableKbRecordDep, kbs: KnowledgeBasesDep) -> KbOut:
    return _out(record, kbs)


@router.patch("/{kb_id}", response_model=KbOut, responses=ERRORS, dependencies=[KbPath])
def update_kb(body: KbUpdate, record: AdminKbRecordDep, registry: RegistryDep, kbs: KnowledgeBasesDep) -> KbOut:
    """Change the title, description or whether it is public (admin)."""
    updated = registry.update_kb(record.kb_id, title=body.title, description=body.description, public=body.public)
    return _out(updated, kbs)


@router.delete("/{kb_id}", response_model=KbDeleted, responses=ERRORS, dependencies=[KbPath])
async def delete_kb(
    record: AdminKbRecordDep, registry: RegistryDep, records: RecordsDep, kbs: KnowledgeBasesDep
) -> KbDeleted:
    """Delete a knowledge base with its documents (admin); keys lose it at once. ``default`` stays.
    Its feedback, terms and corrections go with it; its audit trail stays."""
    registry.delete_kb(record.kb_id)
    records.forget_kb(record.kb_id, keep=KEPT_AFTER_DELETE)
    await run_in_threadpool(kbs.drop, record.kb_id)
    return KbDeleted(kb_id=record.kb_id, deleted=True)
