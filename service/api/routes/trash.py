"""A knowledge base's trash: documents deleted within the retention window, listed, restored and purged.

Read by its write keys and the admin, like the audit trail. Every call purges what has expired first
(service/trash.py); the app's sweep does so in the background too (service/trash_sweep.py).
"""

from fastapi import APIRouter, Request

from service.api.audit import note_for_audit
from service.api.schemas import ErrorBody, JobOut
from service.api.tenancy import RecordsDep, RegistryDep, WritableKbRecordDep, WriteKbDep
from service.api.trash_schemas import TrashEntryOut, TrashList, TrashPurged, TrashRestored
from service.stores.records import RecordStore
from service.trash import TrashBin, restore, utc_now

router = APIRouter(prefix="/trash", tags=["trash"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404)}
RESTORE_ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409)}
# A restore embeds the document again: the reply waits this long at most, and never past the request's deadline.
RESTORE_WAIT_S = 120.0


def _trash(request: Request, records: RecordStore, kb_id: str) -> TrashBin:
    return TrashBin(records, kb_id, retention=request.app.state.settings.trash_retention())


@router.get("", response_model=TrashList, responses=ERRORS)
def list_trash(request: Request, record: WritableKbRecordDep, records: RecordsDep) -> TrashList:
    """Documents deleted within the retention window, newest first, with when each is purged."""
    trash = _trash(request, records, record.kb_id)
    entries, now = trash.entries(), utc_now()
    return TrashList(data=[TrashEntryOut.of(entry, now) for entry in entries], count=len(entries),
                     retention_hours=trash.retention.total_seconds() / 3600)  # fmt: skip


@router.post("/{entry_id}/restore", response_model=TrashRestored, status_code=202, responses=RESTORE_ERRORS)
def restore_entry(
    entry_id: str, request: Request, target: WriteKbDep, records: RecordsDep, registry: RegistryDep
) -> TrashRestored:
    """Add the document back under its id, with its text, pages, first "added" time and metadata corrections;
    answers once it is served again (or, for a long one, while its job runs). 409 while its id is taken."""
    trash = _trash(request, records, target.kb_id)
    engine = target.engine
    entry, job = restore(trash, entry_id, target.writer, engine.index.catalogue, registry, engine.policy.changed)
    note_for_audit(request, doc_id=entry.doc_id, title=entry.title)
    target.writer.wait(job, min(RESTORE_WAIT_S, request.app.state.settings.request_timeout_s * 0.8))
    return TrashRestored(entry=TrashEntryOut.of(entry, utc_now()), restored=job.state == "done",
                         job=JobOut(**job.to_dict()))  # fmt: skip


@router.delete("/{entry_id}", response_model=TrashPurged, responses=ERRORS)
def purge_entry(entry_id: str, request: Request, record: WritableKbRecordDep, records: RecordsDep) -> TrashPurged:
    """Purge an entry now: its text leaves the store, and the delete can no longer be undone."""
    trash = _trash(request, records, record.kb_id)
    entry = trash.entry(entry_id)
    trash.purge(entry)
    note_for_audit(request, doc_id=entry.doc_id, title=entry.title)
    return TrashPurged(id=entry.entry_id, doc_id=entry.doc_id, purged=True)
