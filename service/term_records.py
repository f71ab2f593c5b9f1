"""A knowledge base's term entries as the staff's record store keeps them (kind "term") and the engine reads them."""

from __future__ import annotations

from index.answering.term_set import MAX_ENTRIES, TermEntry
from service.stores.records import RecordStore, StaffRecord

TERM_KIND = "term"


def entry_of(record: StaffRecord) -> TermEntry:
    body = record.body
    return TermEntry(
        record.record_id, str(body["canonical"]), tuple(body.get("variants") or ()), str(body["kind"]),
        str(body.get("note") or ""),
    )  # fmt: skip


def term_records(records: RecordStore, kb_id: str) -> list[StaffRecord]:
    """Every entry of the knowledge base, oldest first (there are at most ``MAX_ENTRIES``: one page)."""
    return list(reversed(records.list(TERM_KIND, kb_id, limit=MAX_ENTRIES)))


def term_entries(records: RecordStore, kb_id: str) -> tuple[TermEntry, ...]:
    return tuple(entry_of(record) for record in term_records(records, kb_id))
