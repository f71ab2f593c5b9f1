"""Staff records in Milvus (``POLICYQA_STORE=milvus``): the verbs of ``SqliteRecordStore``, one collection
``{prefix}_staff_records`` read with strong consistency, so every replica sees a record the moment it is filed.

Milvus cannot sort a query, so a listing reads the matching ids and sorts them here; the ids sort in the order the
records were made (``new_record_id``). A record's row key is ``kind/kb_id/record_id``; an update is an upsert of it.
"""

from __future__ import annotations

import json

from index.errors import NotFoundError
from index.stores.milvus.client import Column, ensure_table, milvus_client, quoted, with_placeholder
from service.stores.records import StaffRecord, encoded_body, listed, new_record_id, refuse_rewriting
from service.stores.registry import now_iso

MAX_ROWS = 16_384  # Milvus's largest query limit
_FIELDS = ["kind", "kb_id", "record_id", "created_at", "updated_at", "body"]


class MilvusRecordStore:
    def __init__(self, uri: str, *, prefix: str = "policyqa") -> None:
        self.collection = f"{prefix}_staff_records"
        self._client = milvus_client(uri)
        ensure_table(
            self._client, self.collection, key=Column("key", "VARCHAR", 200),
            columns=[
                Column("kind", "VARCHAR", 32), Column("kb_id", "VARCHAR", 64), Column("record_id", "VARCHAR", 40),
                Column("created_at", "VARCHAR", 40), Column("updated_at", "VARCHAR", 40),
                Column("body", "VARCHAR", 65_535),
            ],
        )  # fmt: skip

    def add(self, kind: str, kb_id: str, body: dict) -> StaffRecord:
        record = StaffRecord(kind, kb_id, new_record_id(), now_iso(), now_iso(), body)
        self._put(record)
        return record

    def get(self, kind: str, kb_id: str, record_id: str) -> StaffRecord | None:
        rows = self._client.query(
            self.collection, filter=f"key == {quoted(_key(kind, kb_id, record_id))}", output_fields=_FIELDS
        )
        return _record(rows[0]) if rows else None

    def update(self, kind: str, kb_id: str, record_id: str, body: dict) -> StaffRecord:
        refuse_rewriting(kind)
        current = self.get(kind, kb_id, record_id)
        if current is None:
            raise NotFoundError(f"no {kind} record {record_id!r}")
        record = StaffRecord(kind, kb_id, record_id, current.created_at, now_iso(), body)
        self._put(record)
        return record

    def delete(self, kind: str, kb_id: str, record_id: str) -> None:
        refuse_rewriting(kind)
        if self.get(kind, kb_id, record_id) is None:
            raise NotFoundError(f"no {kind} record {record_id!r}")
        self._client.delete(self.collection, ids=[_key(kind, kb_id, record_id)])

    def list(self, kind: str, kb_id: str | None, *, limit: int = 100, before: str | None = None) -> list[StaffRecord]:
        where = [f"kind == {quoted(kind)}"]
        if kb_id is not None:
            where.append(f"kb_id == {quoted(kb_id)}")
        if before is not None:
            where.append(f"record_id < {quoted(before)}")
        ids = self._client.query(
            self.collection, filter=" and ".join(where), output_fields=["key", "record_id"], limit=MAX_ROWS
        )
        newest = sorted(ids, key=lambda row: row["record_id"], reverse=True)[: listed(limit)]
        if not newest:
            return []
        rows = self._client.query(
            self.collection, filter=f"key in [{', '.join(quoted(row['key']) for row in newest)}]", output_fields=_FIELDS
        )
        return sorted((_record(row) for row in rows), key=lambda record: record.record_id, reverse=True)

    def forget_kb(self, kb_id: str, *, keep: frozenset[str] = frozenset()) -> None:
        where = [f"kb_id == {quoted(kb_id)}"]
        if keep:
            where.append(f"kind not in [{', '.join(quoted(kind) for kind in sorted(keep))}]")
        self._client.delete(self.collection, filter=" and ".join(where))

    def _put(self, record: StaffRecord) -> None:
        row = {
            "key": _key(record.kind, record.kb_id, record.record_id), "kind": record.kind, "kb_id": record.kb_id,
            "record_id": record.record_id, "created_at": record.created_at, "updated_at": record.updated_at,
            "body": encoded_body(record.body),
        }  # fmt: skip
        self._client.upsert(self.collection, with_placeholder([row]))


def _key(kind: str, kb_id: str, record_id: str) -> str:
    return f"{kind}/{kb_id}/{record_id}"


def _record(row: dict) -> StaffRecord:
    return StaffRecord(
        row["kind"], row["kb_id"], row["record_id"], row["created_at"], row["updated_at"], json.loads(row["body"])
    )
