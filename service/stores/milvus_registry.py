"""The knowledge-base registry and the API keys in Milvus, shared by every replica (``POLICYQA_STORE=milvus``).

The same verbs as the SQLite ``Registry`` (service/stores/registry.py), over two
collections, ``policyqa_kbs`` and ``policyqa_keys``, read with strong
consistency: a key made or revoked through one replica is honoured or refused
by the next request on any other. Milvus has no transactions or unique
inserts, so every change runs under the writer lock ``registry``
(index/stores/milvus/lock.py): "create unless it exists", a knowledge base's
deletion and the keys it takes with it are each one critical section. Keys are
stored as the SHA-256 of the whole key and compared in constant time, as in
SQLite.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from index.errors import ConflictError, InvalidInputError, NotFoundError
from index.stores.milvus.client import Column, ensure_table, milvus_client, quoted, with_placeholder
from index.stores.milvus.lock import lock_collection, milvus_writer_lock
from service.stores.registry import (
    DEFAULT_KB,
    KEY_PREFIX_CHARS,
    KeyRecord,
    KeyUseThrottle,
    KnowledgeBaseRecord,
    NewKey,
    Scope,
    key_digest,
    key_kb_names,
    new_key_material,
    now_iso,
    required,
    valid_kb_id,
)

LOCK_NAME = "registry"
LOCK_TIMEOUT_S = 30.0
MAX_ROWS = 16_384  # Milvus's largest query limit: far more knowledge bases and keys than a server holds
_KB_FIELDS = ["kb_id", "title", "description", "public", "created_at"]
_KEY_FIELDS = ["key_id", "prefix", "secret_sha256", "scope", "label", "created_at", "kbs"]
_PREFIX = re.compile(r"pqa_[0-9a-f]{8}")
_NO_DIGEST = b"\0" * 32


class MilvusRegistry:
    """Knowledge bases and keys in Milvus; any thread of any replica may use it."""

    def __init__(self, uri: str, *, default_public: bool = True, prefix: str = "policyqa") -> None:
        self.uri, self.prefix = uri, prefix
        self.kbs_collection, self.keys_collection = f"{prefix}_kbs", f"{prefix}_keys"
        self.overrides_collection = f"{prefix}_document_overrides"
        # Its own collection, not a column: a deployment made before it keeps its keys collection as it was.
        self.uses_collection = f"{prefix}_key_uses"
        self._client = milvus_client(uri)
        ensure_table(
            self._client, self.kbs_collection, key=Column("kb_id", "VARCHAR", 64),
            columns=[
                Column("title", "VARCHAR", 1024), Column("description", "VARCHAR", 8192), Column("public", "BOOL"),
                Column("created_at", "VARCHAR", 40),
            ],
        )  # fmt: skip
        ensure_table(
            self._client, self.keys_collection, key=Column("key_id", "VARCHAR", 64),
            columns=[
                Column("prefix", "VARCHAR", 32), Column("secret_sha256", "VARCHAR", 64), Column("scope", "VARCHAR", 8),
                Column("label", "VARCHAR", 1024), Column("created_at", "VARCHAR", 40), Column("kbs", "VARCHAR", 8192),
            ],
        )  # fmt: skip
        ensure_table(
            self._client, self.overrides_collection, key=Column("key", "VARCHAR", 1100),
            columns=[Column("kb_id", "VARCHAR", 64), Column("body", "VARCHAR", 65_535)],
        )  # fmt: skip
        ensure_table(
            self._client, self.uses_collection, key=Column("key_id", "VARCHAR", 64),
            columns=[Column("last_used_at", "VARCHAR", 40)],
        )  # fmt: skip
        self._uses = KeyUseThrottle()
        with self._writing():
            if self.kb(DEFAULT_KB) is None:
                self._put_kb(KnowledgeBaseRecord(DEFAULT_KB, "Default", "", default_public, now_iso()))

    def _writing(self):
        return milvus_writer_lock(
            self.uri, name=f"{LOCK_NAME}:{self.kbs_collection}", timeout_s=LOCK_TIMEOUT_S,
            collection=lock_collection(self.prefix),
        )  # fmt: skip

    # -- knowledge bases ---------------------------------------------------
    def list_kbs(self) -> list[KnowledgeBaseRecord]:
        rows = self._client.query(self.kbs_collection, filter='kb_id != ""', output_fields=_KB_FIELDS, limit=MAX_ROWS)
        return sorted((_kb(row) for row in rows), key=lambda kb: kb.kb_id)

    def kb(self, kb_id: str) -> KnowledgeBaseRecord | None:
        if not valid_kb_id(kb_id):
            return None
        rows = self._client.query(self.kbs_collection, filter=f"kb_id == {quoted(kb_id)}", output_fields=_KB_FIELDS)
        return _kb(rows[0]) if rows else None

    def create_kb(self, *, kb_id: str, title: str, description: str = "", public: bool) -> KnowledgeBaseRecord:
        if not valid_kb_id(kb_id):
            raise InvalidInputError(f"kb_id {kb_id!r} must be 1 to 64 of a-z, 0-9, _ and -")
        with self._writing():
            if self.kb(kb_id) is not None:
                raise ConflictError(f"a knowledge base {kb_id!r} exists already")
            self._put_kb(KnowledgeBaseRecord(kb_id, title, description, public, now_iso()))
        return self._require_kb(kb_id)

    def update_kb(
        self, kb_id: str, *, title: str | None = None, description: str | None = None, public: bool | None = None
    ) -> KnowledgeBaseRecord:
        with self._writing():
            current = self._require_kb(kb_id)
            self._put_kb(
                KnowledgeBaseRecord(
                    kb_id,
                    current.title if title is None else title,
                    current.description if description is None else description,
                    current.public if public is None else public,
                    current.created_at,
                )  # fmt: skip
            )
        return self._require_kb(kb_id)

    def delete_kb(self, kb_id: str) -> None:
        """Forget a knowledge base; the keys scoped to it lose it (a key left with none is revoked)."""
        if kb_id == DEFAULT_KB:
            raise ConflictError("the default knowledge base cannot be deleted")
        with self._writing():
            self._require_kb(kb_id)
            for row in self._key_rows():
                kbs = json.loads(row["kbs"])
                if kb_id not in kbs:
                    continue
                if len(kbs) == 1:  # revoked first: a key must never outlive all its knowledge bases
                    self._client.delete(self.keys_collection, ids=[row["key_id"]])
                    self._client.delete(self.uses_collection, ids=[row["key_id"]])
                else:
                    kept = json.dumps([name for name in kbs if name != kb_id])
                    self._client.upsert(self.keys_collection, with_placeholder([{**row, "kbs": kept}]))
            self._client.delete(self.kbs_collection, ids=[kb_id])
            self._client.delete(self.overrides_collection, filter=f"kb_id == {quoted(kb_id)}")

    # -- staff corrections of document metadata -----------------------------
    def document_overrides(self, kb_id: str) -> dict[str, dict]:
        rows = self._client.query(
            self.overrides_collection, filter=f"kb_id == {quoted(kb_id)}", output_fields=["key", "body"],
            limit=MAX_ROWS,
        )  # fmt: skip
        return {row["key"].split("/", 1)[1]: json.loads(row["body"]) for row in rows}

    def put_document_override(self, kb_id: str, doc_id: str, body: dict | None) -> None:
        key = f"{kb_id}/{doc_id}"
        if body is None:
            self._client.delete(self.overrides_collection, ids=[key])
            return
        row = {"key": key, "kb_id": kb_id, "body": json.dumps(body, ensure_ascii=False)}
        self._client.upsert(self.overrides_collection, with_placeholder([row]))

    def _put_kb(self, kb: KnowledgeBaseRecord) -> None:
        row = dict(
            kb_id=kb.kb_id, title=kb.title, description=kb.description, public=kb.public, created_at=kb.created_at
        )
        self._client.upsert(self.kbs_collection, with_placeholder([row]))

    def _require_kb(self, kb_id: str) -> KnowledgeBaseRecord:
        return required(self.kb(kb_id), kb_id)

    # -- keys --------------------------------------------------------------
    def create_key(self, *, kbs: Iterable[str], scope: Scope, label: str = "") -> NewKey:
        names = key_kb_names(kbs)
        with self._writing():
            missing = [name for name in names if self.kb(name) is None]
            if missing:
                raise InvalidInputError(f"no knowledge base {', '.join(map(repr, missing))}")
            key_id, prefix, key = new_key_material()
            while self._key_row_by_prefix(prefix) is not None:  # 8 hex digits: a clash is rare, never kept
                key_id, prefix, key = new_key_material()
            row = dict(
                key_id=key_id, prefix=prefix, secret_sha256=key_digest(key).hex(), scope=scope, label=label,
                created_at=now_iso(), kbs=json.dumps(names),
            )  # fmt: skip
            self._client.upsert(self.keys_collection, with_placeholder([row]))
        return NewKey(_key(row), key)

    def list_keys(self) -> list[KeyRecord]:
        return sorted((_key(row) for row in self._key_rows()), key=lambda k: (k.created_at, k.prefix))

    def delete_key(self, key_id: str) -> None:
        with self._writing():
            rows = self._client.query(self.keys_collection, filter=f"key_id == {quoted(key_id)}")
            if not rows:
                raise NotFoundError(f"no key with id {key_id!r}")
            self._client.delete(self.keys_collection, ids=[key_id])
            self._client.delete(self.uses_collection, ids=[key_id])
        self._uses.forget(key_id)

    def find_key(self, key: str) -> KeyRecord | None:
        """The key this secret is, or None; the digests are compared in constant time."""
        prefix = key[:KEY_PREFIX_CHARS]
        row = self._key_row_by_prefix(prefix) if _PREFIX.fullmatch(prefix) else None
        stored = bytes.fromhex(row["secret_sha256"]) if row else _NO_DIGEST
        matched = hmac.compare_digest(key_digest(key), stored)
        return _key(row) if row and matched else None

    def note_key_use(self, key_id: str, *, now: datetime | None = None) -> None:
        """Record that the key was used, at most once a minute per key (a revoked key's row is not made)."""
        now = now or datetime.now(UTC)
        if not self._uses.due(key_id, now):
            return
        if not self._client.query(self.keys_collection, filter=f"key_id == {quoted(key_id)}", output_fields=["key_id"]):
            return
        row = {"key_id": key_id, "last_used_at": now.isoformat(timespec="seconds")}
        self._client.upsert(self.uses_collection, with_placeholder([row]))

    def key_uses(self) -> dict[str, str]:
        """When each key was last used (as noted), by key id; keys never used are absent."""
        rows = self._client.query(
            self.uses_collection, filter='key_id != ""', output_fields=["key_id", "last_used_at"], limit=MAX_ROWS
        )
        return {row["key_id"]: row["last_used_at"] for row in rows}

    def _key_rows(self) -> list[dict]:
        return self._client.query(
            self.keys_collection, filter='key_id != ""', output_fields=_KEY_FIELDS, limit=MAX_ROWS
        )

    def _key_row_by_prefix(self, prefix: str) -> dict | None:
        rows = self._client.query(self.keys_collection, filter=f"prefix == {quoted(prefix)}", output_fields=_KEY_FIELDS)
        return rows[0] if rows else None


def _kb(row: dict) -> KnowledgeBaseRecord:
    return KnowledgeBaseRecord(row["kb_id"], row["title"], row["description"], bool(row["public"]), row["created_at"])


def _key(row: dict) -> KeyRecord:
    kbs = tuple(sorted(json.loads(row["kbs"])))
    return KeyRecord(row["key_id"], row["prefix"], kbs, row["scope"], row["label"], row["created_at"])
