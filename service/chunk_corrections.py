"""Chunk corrections as staff records: every version of a corrected chunk, its diff, and whether it still applies.

Each correction or rollback is one ``chunk_correction`` record (``service/stores/records.py``) holding the text
it wrote and the text it replaced, so the original is kept however often the chunk is corrected. A chunk is found
again by its document and position (``ordinal``): a correction writes the document's rows under new chunk ids.
Records of a document whose content was since replaced are stale: the new content was chunked afresh, so they
are kept as history but no longer counted or applied.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from index.stores.chunk_edits import ChunkCorrection
from index.stores.records import ChunkRecord, DocumentRecord
from service.stores.records import MAX_LIST, RecordStore, StaffRecord
from service.stores.registry import now_iso

KIND = "chunk_correction"


@dataclass(frozen=True)
class ChunkHistory:
    """The versions of one chunk, oldest first; ``live`` those made on the document's current content."""

    live: list[StaffRecord]
    stale: list[StaffRecord]

    @property
    def original(self) -> str | None:
        return self.live[0].body["previous"] if self.live else None

    def text_of(self, version: int) -> str | None:
        """The text version ``version`` wrote (0: the original)."""
        if version == 0:
            return self.original
        found = [r.body["text"] for r in self.live if r.body["version"] == version]
        return found[0] if found else None


def all_records(records: RecordStore, kb_id: str) -> list[StaffRecord]:
    """Every chunk correction of a knowledge base, oldest first."""
    found: list[StaffRecord] = []
    before = None
    while page := records.list(KIND, kb_id, limit=MAX_LIST, before=before):
        found += page
        if len(page) < MAX_LIST:
            break
        before = page[-1].record_id
    return found[::-1]


def history(records: RecordStore, kb_id: str, document: DocumentRecord, chunk: ChunkRecord) -> ChunkHistory:
    key = (document.doc_id, chunk.ordinal)
    mine = [r for r in all_records(records, kb_id) if (r.body["doc_id"], r.body["ordinal"]) == key]
    live = [r for r in mine if _applies(r, document)]
    if live and live[-1].body["text"] != chunk.text:  # the same content uploaded again: chunked afresh
        live = []
    return ChunkHistory(live, [r for r in mine if r not in live])


def _applies(record: StaffRecord, document: DocumentRecord) -> bool:
    return record.body["content_hash"] == document.content_hash


def record(
    records: RecordStore, kb_id: str, done: ChunkCorrection, *, before: ChunkHistory, document: DocumentRecord,
    who: str, note: str, rollback_to: int | None = None,
) -> StaffRecord:  # fmt: skip
    """File what the writer did as the chunk's next version."""
    version = (before.live[-1].body["version"] if before.live else 0) + 1
    body = {
        "doc_id": done.doc_id, "ordinal": done.ordinal, "chunk_id": done.chunk_id, "version": version,
        "action": "rollback" if rollback_to is not None else "correct", "rollback_to": rollback_to,
        "previous": done.before, "text": done.after, "note": note, "set_by": who, "set_at": now_iso(),
        "content_hash": document.content_hash, "embedded_passages": done.embedded_passages,
    }  # fmt: skip
    return records.add(KIND, kb_id, body)


def corrected_chunks(
    records: RecordStore, kb_id: str, documents: Iterable[DocumentRecord], chunks_of
) -> dict[str, set[int]]:
    """doc_id -> the positions of its chunks that read otherwise than their original now. ``chunks_of(doc_id)``:
    its chunks, read only for the documents that have corrections."""
    latest: dict[tuple[str, int], StaffRecord] = {}
    first: dict[tuple[str, int], StaffRecord] = {}
    hashes = {d.doc_id: d.content_hash for d in documents}
    for r in all_records(records, kb_id):
        key = (r.body["doc_id"], r.body["ordinal"])
        if hashes.get(key[0]) == r.body["content_hash"]:
            latest[key] = r
            first.setdefault(key, r)
    found: dict[str, set[int]] = defaultdict(set)
    texts: dict[str, dict[int, str]] = {}
    for (doc_id, ordinal), last in latest.items():
        if doc_id not in texts:
            texts[doc_id] = {c.ordinal: c.text for c in chunks_of(doc_id)}
        if texts[doc_id].get(ordinal) == last.body["text"] != first[(doc_id, ordinal)].body["previous"]:
            found[doc_id].add(ordinal)
    return dict(found)


def forget_document(records: RecordStore, kb_id: str, doc_id: str) -> int:
    """A deleted document's corrections go with it (its text too: nothing of it is kept)."""
    mine = [r for r in all_records(records, kb_id) if r.body["doc_id"] == doc_id]
    for r in mine:
        records.delete(KIND, kb_id, r.record_id)
    return len(mine)


def diff_ops(before: str, after: str) -> list[dict]:
    """Character-level edits (Chinese has no spaces to diff words by): equal, delete and insert runs in order,
    a replacement as a delete then an insert, so a console renders them inline."""
    ops = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append({"op": "equal", "text": before[i1:i2]})
            continue
        if i2 > i1:
            ops.append({"op": "delete", "text": before[i1:i2]})
        if j2 > j1:
            ops.append({"op": "insert", "text": after[j1:j2]})
    return ops
