"""The trash: a deleted document kept for the operator's retention window, so that its delete can be undone.

With ``POLICYQA_TRASH_RETENTION_HOURS`` above 0, a delete first files what it takes to add the document back, in
the staff record store (every replica sees it): one ``trash`` entry (what the listing shows) and its contents, the
cleaned text, page spans, OCR confidences and metadata corrections as one JSON text, in ``trash_text`` parts that
each fit a record. If the delete does not happen, the entry goes again. A restore adds the document back under its
own id and first "added" time, as a job on the knowledge base's writer; past the window, or when purged, the entry
and its parts are deleted, and with them the last copy of the text (docs/trash.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from index.errors import ConflictError, NotFoundError, PolicyQAError
from index.ingest.documents import SourceDocument
from index.stores.base import Catalogue
from index.stores.records import DocumentRecord
from service.stores.jobs import Job
from service.stores.records import MAX_LIST, RecordStore, StaffRecord
from service.stores.registry import Registry
from service.writer import KnowledgeBaseWriter

logger = logging.getLogger(__name__)

ENTRY_KIND = "trash"
CONTENTS_KIND = "trash_text"
PART_BYTES = 50_000  # of JSON in one part, under the store's 60,000 with room for the part's own fields
SLICE_CHARS = 1_000  # the contents are cut in slices this long, then packed into parts by their encoded size
CONTENTS_PAGE = 50  # parts read at once while looking for parts without an entry (each up to 50 KB)
# A part older than this whose entry does not exist was left by a process that died while filing it; a younger
# one may belong to an entry another replica is filing now.
ORPHAN_AGE = timedelta(hours=1)
# The entry lists its parts' ids within one record: past this many (about 50 MB of contents), a delete keeps nothing.
MAX_PARTS = 1_000

Clock = Callable[[], datetime]


class TooLargeToKeepError(PolicyQAError):
    code = "too_large_to_keep"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


@dataclass(frozen=True)
class TrashedContents:
    """What a restore needs besides the listing's fields: the text as it was served, and what lay on it."""

    text: str
    page_spans: tuple[tuple[int, int], ...]
    page_confidence: tuple[float | None, ...]
    metadata_corrections: dict | None

    def to_json(self) -> str:
        body = {"text": self.text, "page_spans": self.page_spans, "page_confidence": self.page_confidence,
                "metadata_corrections": self.metadata_corrections}  # fmt: skip
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TrashedContents:
        body = json.loads(text)
        return cls(body["text"], tuple((a, b) for a, b in body["page_spans"]), tuple(body["page_confidence"]),
                   body["metadata_corrections"])  # fmt: skip


@dataclass(frozen=True)
class TrashEntry:
    entry_id: str
    kb_id: str
    doc_id: str
    title: str
    source: str
    origin: str
    pages: int
    added_at: str  # when the document first entered the knowledge base ("" if not known); a restore keeps it
    deleted_at: str
    deleted_by: str  # "admin", or "key <id> (<label>)"
    expires_at: str  # the earlier of the window it was deleted under and the window now
    size_bytes: int  # of its contents, as kept
    part_ids: tuple[str, ...]
    token: str  # written in each of its parts, so that parts whose entry was never filed can be told

    def expires_in(self, now: datetime) -> timedelta:
        return datetime.fromisoformat(self.expires_at) - now


def trashed_document(
    catalogue: Catalogue, registry: Registry, kb_id: str, doc_id: str
) -> tuple[DocumentRecord, TrashedContents]:
    """(the record, its contents) of a live document, read before its delete."""
    record, text = catalogue.document(doc_id), catalogue.document_text(doc_id)
    if record is None or text is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    confidence = catalogue.page_confidence(doc_id)
    contents = TrashedContents(text, tuple(catalogue.page_spans(doc_id)), tuple(confidence),
                               registry.document_overrides(kb_id).get(doc_id))  # fmt: skip
    return record, contents


def restored_document(entry: TrashEntry, contents: TrashedContents) -> SourceDocument:
    """The document as it is added back: cleaned already (nothing is read or cleaned again), its first time kept."""
    return SourceDocument(
        doc_id=entry.doc_id, title=entry.title, source=entry.source, raw_text=contents.text, origin=entry.origin,
        page_confidence=contents.page_confidence, cleaned=(contents.text, contents.page_spans),
        added_at=entry.added_at or None,
    )  # fmt: skip


def pieces(text: str, budget: int = PART_BYTES) -> list[str]:
    """``text`` cut into pieces whose JSON string (escapes included) is at most ``budget`` bytes of UTF-8."""
    found: list[str] = []
    current: list[str] = []
    size = 0
    for start in range(0, len(text), SLICE_CHARS):
        piece = text[start : start + SLICE_CHARS]
        cost = len(json.dumps(piece, ensure_ascii=False).encode("utf-8")) - 2
        if current and size + cost > budget:
            found.append("".join(current))
            current, size = [], 0
        current.append(piece)
        size += cost
    return [*found, "".join(current)] if current else found


class TrashBin:
    """One knowledge base's trash, over the staff record store; ``retention`` 0 keeps nothing."""

    def __init__(self, records: RecordStore, kb_id: str, *, retention: timedelta, now: Clock = utc_now) -> None:
        self.records, self.kb_id, self.retention, self._now = records, kb_id, retention, now

    @property
    def enabled(self) -> bool:
        return self.retention > timedelta(0)

    def keep(self, record: DocumentRecord, contents: TrashedContents, *, deleted_by: str) -> TrashEntry:
        """File the document's contents, then its entry; nothing stays if filing fails half way."""
        token, written = secrets.token_hex(8), []
        encoded = contents.to_json()
        parts = pieces(encoded)
        if len(parts) > MAX_PARTS:
            raise TooLargeToKeepError(f"{record.doc_id}: {len(encoded):,} characters are too many to keep in the trash")
        try:
            for n, piece in enumerate(parts):
                body = {"token": token, "n": n, "text": piece}
                written.append(self.records.add(CONTENTS_KIND, self.kb_id, body).record_id)
            now = self._now()
            body = {
                "doc_id": record.doc_id, "title": record.title, "source": record.source, "origin": record.origin,
                "pages": record.pages, "added_at": record.added_at, "deleted_at": _iso(now),
                "deleted_by": deleted_by, "expires_at": _iso(now + self.retention),
                "size_bytes": len(encoded.encode("utf-8")), "part_ids": written, "token": token,
            }  # fmt: skip
            return self._entry(self.records.add(ENTRY_KIND, self.kb_id, body))
        except BaseException:
            self._delete_parts(written)
            raise

    def entries(self) -> list[TrashEntry]:
        """Newest first, after the expired ones are purged."""
        return [entry for entry in self._all() if not self._purged_if_expired(entry)]

    def entry(self, entry_id: str) -> TrashEntry:
        record = self.records.get(ENTRY_KIND, self.kb_id, entry_id)
        if record is None or self._purged_if_expired(entry := self._entry(record)):
            raise NotFoundError(f"no entry {entry_id!r} in the trash of knowledge base {self.kb_id!r}")
        return entry

    def contents(self, entry: TrashEntry) -> TrashedContents:
        parts = [self.records.get(CONTENTS_KIND, self.kb_id, part_id) for part_id in entry.part_ids]
        if any(part is None for part in parts):
            raise ConflictError(f"trash entry {entry.entry_id!r} lost part of its contents; it cannot be restored")
        return TrashedContents.from_json("".join(part.body["text"] for part in parts if part is not None))

    def purge(self, entry: TrashEntry) -> None:
        """Its contents, then the entry (a purge cut short leaves an entry, purged again when it expires)."""
        self._delete_parts(entry.part_ids)
        with contextlib.suppress(NotFoundError):  # another replica's sweep got there first
            self.records.delete(ENTRY_KIND, self.kb_id, entry.entry_id)

    def purge_if_expired(self, record: StaffRecord) -> bool:
        """Purge the entry ``record`` holds if its window is over; whether it was."""
        return self._purged_if_expired(self._entry(record))

    def _purged_if_expired(self, entry: TrashEntry) -> bool:
        if entry.expires_in(self._now()) > timedelta(0):
            return False
        self.purge(entry)
        logger.info("trash of %s: %s (%s) purged, its window over", self.kb_id, entry.doc_id, entry.entry_id)
        return True

    def _all(self) -> list[TrashEntry]:
        return [self._entry(record) for record in all_records(self.records, ENTRY_KIND, self.kb_id)]

    def _entry(self, record: StaffRecord) -> TrashEntry:
        body = record.body
        window_now = datetime.fromisoformat(body["deleted_at"]) + self.retention
        expires = min(datetime.fromisoformat(body["expires_at"]), window_now)  # a shortened window applies too
        return TrashEntry(
            record.record_id, record.kb_id, body["doc_id"], body["title"], body["source"], body["origin"],
            body["pages"], body["added_at"], body["deleted_at"], body["deleted_by"], _iso(expires),
            body["size_bytes"], tuple(body["part_ids"]), body["token"],
        )  # fmt: skip

    def _delete_parts(self, part_ids) -> None:
        for part_id in part_ids:
            with contextlib.suppress(NotFoundError):
                self.records.delete(CONTENTS_KIND, self.kb_id, part_id)


def all_records(records: RecordStore, kind: str, kb_id: str | None) -> Iterator[StaffRecord]:
    """Every record of a kind, newest first, a page at a time."""
    before = None
    while page := records.list(kind, kb_id, limit=MAX_LIST, before=before):
        yield from page
        if len(page) < MAX_LIST:
            return
        before = page[-1].record_id


def delete_into_trash(
    trash: TrashBin, writer: KnowledgeBaseWriter, catalogue: Catalogue, registry: Registry, doc_id: str, *,
    deleted_by: str,
) -> tuple[Job, TrashEntry | None]:  # fmt: skip
    """Delete a document through ``writer`` (its KnowledgeBaseWriter), kept in the trash first when the window is
    open; the entry goes again unless the delete is done (a failed or unfinished one keeps nothing)."""
    if not trash.enabled:
        return writer.delete(doc_id), None
    record, contents = trashed_document(catalogue, registry, trash.kb_id, doc_id)
    try:
        entry = trash.keep(record, contents, deleted_by=deleted_by)
    except TooLargeToKeepError:
        logger.warning("trash of %s: %s is deleted without being kept (too large)", trash.kb_id, doc_id)
        return writer.delete(doc_id), None
    job = None
    try:
        job = writer.delete(doc_id)
    finally:
        if job is None or job.state != "done":
            trash.purge(entry)
    return job, entry if job.state == "done" else None


def restore(
    trash: TrashBin, entry_id: str, writer: KnowledgeBaseWriter, catalogue: Catalogue, registry: Registry,
    policy_changed: Callable[[], None],
) -> tuple[TrashEntry, Job]:  # fmt: skip
    """Queue the entry's document back under its own id; when its job has added it, its metadata corrections
    come back and the entry leaves the trash. A 409 (ConflictError) while another document has that id."""
    entry = trash.entry(entry_id)
    if catalogue.known_doc_ids([entry.doc_id]):
        raise ConflictError(f"a document with id {entry.doc_id!r} exists again (uploaded since?): delete it or "
                            "restore nothing; the entry stays in the trash until it expires")  # fmt: skip
    contents = trash.contents(entry)

    def then() -> None:  # in the job, once the document is served again
        try:
            if contents.metadata_corrections:
                registry.put_document_override(trash.kb_id, entry.doc_id, contents.metadata_corrections)
                policy_changed()
            trash.purge(entry)
        except Exception:  # the document is back; an entry left over is purged when its window ends
            logger.exception("trash of %s: %s is restored, but its entry was not finished", trash.kb_id, entry.doc_id)

    return entry, writer.restore(restored_document(entry, contents), then=then)


def sweep(records: RecordStore, retention: timedelta, *, now: Clock = utc_now, orphans: bool = False) -> int:
    """Purge every knowledge base's expired entries (and, with ``orphans``, parts whose entry was never filed);
    how many entries went."""
    bins: dict[str, TrashBin] = {}
    purged = 0
    for record in all_records(records, ENTRY_KIND, None):  # each entry read once, whichever knowledge base it is in
        trash = bins.setdefault(record.kb_id, TrashBin(records, record.kb_id, retention=retention, now=now))
        purged += trash.purge_if_expired(record)
    if orphans:
        purge_orphans(records, now())
    return purged


def purge_orphans(records: RecordStore, now: datetime) -> int:
    """Parts left by a process that died between filing a document's contents and its entry."""
    tokens = {record.body["token"] for record in all_records(records, ENTRY_KIND, None)}
    orphans, before = [], None
    while page := records.list(CONTENTS_KIND, None, limit=CONTENTS_PAGE, before=before):
        old = [r for r in page if datetime.fromisoformat(r.created_at) < now - ORPHAN_AGE]
        orphans += [(r.kb_id, r.record_id) for r in old if r.body["token"] not in tokens]
        before = page[-1].record_id
    for kb_id, record_id in orphans:
        with contextlib.suppress(NotFoundError):
            records.delete(CONTENTS_KIND, kb_id, record_id)
    if orphans:
        logger.warning("trash: %d part(s) without an entry purged (left by an interrupted delete)", len(orphans))
    return len(orphans)
