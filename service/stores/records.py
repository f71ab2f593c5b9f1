"""What staff keep beside a knowledge base: feedback, terms, chunk corrections, the audit trail.

Each is a kind of ``StaffRecord``: a JSON body filed under (kind, knowledge base), with an id that sorts in the order
records were made, so "newest first" and paging by ``before=<id>`` need no second index. The SQLite store below keeps
them in DATA_DIR/staff.sqlite3; with ``POLICYQA_STORE=milvus`` they live in one Milvus collection shared by every
replica (service/stores/milvus_records.py). Both pass tests/test_records.py.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from index.errors import ConflictError, InvalidInputError, NotFoundError
from service.stores import sqlite_file
from service.stores.registry import now_iso

logger = logging.getLogger(__name__)

RECORDS_FILE = "staff.sqlite3"
KIND_PATTERN = r"^[a-z_]{1,32}$"
# One body stays well under Milvus's 65,535-byte VARCHAR, with the JSON escapes it may add.
MAX_BODY_BYTES = 60_000
MAX_LIST = 1_000
AUDIT_KIND = "audit"
# The audit trail is append-only: deleting a knowledge base does not erase the record of who did what in it.
KEPT_AFTER_DELETE = frozenset({AUDIT_KIND})
APPEND_ONLY = frozenset({AUDIT_KIND})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS staff_records (
    kind TEXT NOT NULL, kb_id TEXT NOT NULL, record_id TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, kb_id, record_id)
);
"""


@dataclass(frozen=True)
class StaffRecord:
    kind: str
    kb_id: str
    record_id: str
    created_at: str
    updated_at: str
    body: dict


_last_stamp = 0
_stamp_lock = threading.Lock()


def new_record_id() -> str:
    """Microseconds since the epoch (strictly rising within a process), then randomness: ids sort in the order
    they were made, and across replicas as well as their clocks agree."""
    global _last_stamp
    with _stamp_lock:
        _last_stamp = max(time.time_ns() // 1_000, _last_stamp + 1)
        stamp = _last_stamp
    return f"{stamp:016d}-{secrets.token_hex(4)}"


def encoded_body(body: dict) -> str:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode("utf-8")) > MAX_BODY_BYTES:
        raise InvalidInputError(f"the record is over {MAX_BODY_BYTES:,} bytes of JSON")
    return text


def refuse_rewriting(kind: str) -> None:
    if kind in APPEND_ONLY:
        raise ConflictError(f"{kind} records are append-only: they are never changed or deleted")


def listed(limit: int) -> int:
    return max(1, min(limit, MAX_LIST))


class RecordStore(Protocol):
    """The verbs both stores answer; ``list`` is newest first, ``before`` pages on by record id."""

    def add(self, kind: str, kb_id: str, body: dict) -> StaffRecord: ...
    def get(self, kind: str, kb_id: str, record_id: str) -> StaffRecord | None: ...
    def update(self, kind: str, kb_id: str, record_id: str, body: dict) -> StaffRecord: ...
    def delete(self, kind: str, kb_id: str, record_id: str) -> None:
        """The record, and its body with it, leaves storage (SQLite: at once; Milvus: when it compacts)."""

    def list(
        self, kind: str, kb_id: str | None, *, limit: int = 100, before: str | None = None
    ) -> list[StaffRecord]: ...
    def forget_kb(self, kb_id: str, *, keep: frozenset[str] = frozenset()) -> None: ...


class SqliteRecordStore:
    """Staff records in one SQLite file; a connection per call, so any thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        sqlite_file.create(path, _SCHEMA)

    def _connect(self, *, write: bool = False):
        return sqlite_file.transaction(self.path, write=write)

    def add(self, kind: str, kb_id: str, body: dict) -> StaffRecord:
        record = StaffRecord(kind, kb_id, new_record_id(), now_iso(), now_iso(), body)
        with self._connect(write=True) as db:
            db.execute(
                "INSERT INTO staff_records VALUES (?, ?, ?, ?, ?, ?)",
                (kind, kb_id, record.record_id, record.created_at, record.updated_at, encoded_body(body)),
            )
        return record

    def get(self, kind: str, kb_id: str, record_id: str) -> StaffRecord | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT kind, kb_id, record_id, created_at, updated_at, body FROM staff_records"
                " WHERE kind = ? AND kb_id = ? AND record_id = ?",
                (kind, kb_id, record_id),
            ).fetchone()
        return _record(row) if row else None

    def update(self, kind: str, kb_id: str, record_id: str, body: dict) -> StaffRecord:
        refuse_rewriting(kind)
        encoded = encoded_body(body)
        with self._connect(write=True) as db:
            changed = db.execute(
                "UPDATE staff_records SET body = ?, updated_at = ? WHERE kind = ? AND kb_id = ? AND record_id = ?",
                (encoded, now_iso(), kind, kb_id, record_id),
            ).rowcount
        if not changed:
            raise NotFoundError(f"no {kind} record {record_id!r}")
        record = self.get(kind, kb_id, record_id)
        assert record is not None
        return record

    def delete(self, kind: str, kb_id: str, record_id: str) -> None:
        refuse_rewriting(kind)
        with self._connect(write=True) as db:
            deleted = db.execute(
                "DELETE FROM staff_records WHERE kind = ? AND kb_id = ? AND record_id = ?", (kind, kb_id, record_id)
            ).rowcount
        if not deleted:
            raise NotFoundError(f"no {kind} record {record_id!r}")
        self._erase_wal()

    def list(self, kind: str, kb_id: str | None, *, limit: int = 100, before: str | None = None) -> list[StaffRecord]:
        where, values = ["kind = ?"], [kind]
        if kb_id is not None:
            where.append("kb_id = ?")
            values.append(kb_id)
        if before is not None:
            where.append("record_id < ?")
            values.append(before)
        with self._connect() as db:
            rows = db.execute(
                "SELECT kind, kb_id, record_id, created_at, updated_at, body FROM staff_records"
                f" WHERE {' AND '.join(where)} ORDER BY record_id DESC LIMIT ?",  # the clauses are fixed text
                (*values, listed(limit)),
            ).fetchall()
        return [_record(row) for row in rows]

    def forget_kb(self, kb_id: str, *, keep: frozenset[str] = frozenset()) -> None:
        """Drop a deleted knowledge base's records, except the kinds in ``keep`` (the audit trail outlives it)."""
        kept = sorted(keep)
        with self._connect(write=True) as db:
            db.execute(
                f"DELETE FROM staff_records WHERE kb_id = ? AND kind NOT IN ({','.join('?' * len(kept))})",
                (kb_id, *kept),
            )
        self._erase_wal()

    def _erase_wal(self) -> None:
        """Deleted bodies are zeroed in the file (secure_delete); the log's older frames go too."""
        if not sqlite_file.erase_wal(self.path):
            logger.warning("%s: readers kept the write-ahead log from being emptied; the next delete empties it",
                           self.path)  # fmt: skip


def _record(row) -> StaffRecord:
    return StaffRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))
