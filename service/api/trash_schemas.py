"""Response models of the trash (service/api/routes/trash.py) and of a delete that keeps the document there."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from service.api.schemas import DeletedOut, JobOut
from service.trash import TrashEntry


class TrashEntryOut(BaseModel):
    id: str = Field(description="The entry: restore or purge it by this id.")
    doc_id: str = Field(description="The document's id, which a restore gives it again.")
    title: str
    source: str
    origin: str
    pages: int | None
    added_at: str | None = Field(description="When the document first entered the knowledge base; kept by a restore.")
    deleted_at: str
    deleted_by: str = Field(description='"admin", or "key <id> (<label>)".')
    expires_at: str = Field(description="When it is purged, unless restored or purged before.")
    expires_in_s: int = Field(description="Seconds from now to expires_at, by the server's clock.")
    size_bytes: int = Field(description="What is kept: the text, page spans and corrections, as UTF-8 JSON.")

    @classmethod
    def of(cls, entry: TrashEntry, now: datetime) -> TrashEntryOut:
        return cls(
            id=entry.entry_id, doc_id=entry.doc_id, title=entry.title, source=entry.source, origin=entry.origin,
            pages=entry.pages or None, added_at=entry.added_at or None, deleted_at=entry.deleted_at,
            deleted_by=entry.deleted_by, expires_at=entry.expires_at,
            expires_in_s=max(0, int(entry.expires_in(now).total_seconds())), size_bytes=entry.size_bytes,
        )  # fmt: skip


class TrashList(BaseModel):
    data: list[TrashEntryOut] = Field(description="Newest first.")
    count: int
    retention_hours: float = Field(
        description="How long a deleted document is kept (POLICYQA_TRASH_RETENTION_HOURS); 0: deletes keep nothing."
    )


class TrashRestored(BaseModel):
    entry: TrashEntryOut = Field(description="The entry restored; it leaves the trash when the job is done.")
    restored: bool = Field(description="Whether the document is back already; if not, follow the job.")
    job: JobOut = Field(description="The change adding it back (GET jobs/{id}); it fails if the id is taken meanwhile.")


class TrashPurged(BaseModel):
    id: str
    doc_id: str
    purged: bool


class DocumentDeletedOut(DeletedOut):
    trash: TrashEntryOut | None = Field(
        None, description="Where the document is kept to be restored (POST trash/{id}/restore); null with no window."
    )
