"""The knowledge-base registry and the API keys, in one small SQLite file (DATA_DIR/keys.sqlite3), or in
Milvus with POLICYQA_STORE=milvus (service/stores/milvus_registry.py).

Keys are ``pqa_<8 hex>_<43 chars>``: the first 12 characters are the prefix
(shown in listings, used to find the row), the rest a 32-byte random secret.
Only the SHA-256 of the whole key is stored, and it is compared in constant
time. Every change is one transaction, so a crash leaves the file whole.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from index.errors import ConflictError, InvalidInputError, NotFoundError
from index.stores.records import now_iso
from service.stores import sqlite_file

logger = logging.getLogger(__name__)

DEFAULT_KB = "default"
KB_ID_PATTERN = r"^[a-z0-9_-]{1,64}$"
REGISTRY_FILE = "keys.sqlite3"
KEY_PREFIX_CHARS = 12  # "pqa_" + 8 hex
KEY_USE_INTERVAL = timedelta(minutes=1)  # a busy key writes its last use at most this often (per process)
Scope = Literal["read", "write"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS document_overrides (
    kb_id TEXT NOT NULL, doc_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kb_id, doc_id)
);
CREATE TABLE IF NOT EXISTS kbs (
    kb_id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
    public INTEGER NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, prefix TEXT NOT NULL UNIQUE, secret_sha256 BLOB NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'write')), label TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    last_used_at TEXT
);
CREATE TABLE IF NOT EXISTS key_kbs (
    key_id TEXT NOT NULL REFERENCES api_keys (key_id) ON DELETE CASCADE,
    kb_id TEXT NOT NULL REFERENCES kbs (kb_id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, kb_id)
);
"""


@dataclass(frozen=True)
class KnowledgeBaseRecord:
    kb_id: str
    title: str
    description: str
    public: bool
    created_at: str


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    prefix: str
    kbs: tuple[str, ...]
    scope: Scope
    label: str
    created_at: str


@dataclass(frozen=True)
class NewKey:
    record: KeyRecord
    key: str  # shown once, never stored


def valid_kb_id(kb_id: str) -> bool:
    return re.fullmatch(KB_ID_PATTERN, kb_id) is not None


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def new_key_material() -> tuple[str, str, str]:
    """A fresh ``(key_id, prefix, key)``: the key is shown once, only its digest is kept."""
    prefix = f"pqa_{secrets.token_hex(4)}"
    key = f"{prefix}_{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"
    return secrets.token_hex(8), prefix, key


class KeyUseThrottle:
    """Which keys are due a write of their last use: a key used on every request writes once a minute, not on each.

    Kept in the process, so the check costs no read; each replica writes a key's use at most once a minute.
    """

    def __init__(self, interval: timedelta = KEY_USE_INTERVAL) -> None:
        self.interval = interval
        self._written: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def due(self, key_id: str, now: datetime) -> bool:
        """True (and ``now`` taken as written) when ``key_id`` was last written an interval ago or never."""
        with self._lock:
            last = self._written.get(key_id)
            if last is not None and timedelta(0) <= now - last < self.interval:
                return False
            self._written[key_id] = now
            return True

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._written.pop(key_id, None)


def required(record: KnowledgeBaseRecord | None, kb_id: str) -> KnowledgeBaseRecord:
    if record is None:
        raise NotFoundError(f"no knowledge base {kb_id!r}")
    return record


def key_kb_names(kbs: Iterable[str]) -> list[str]:
    """The knowledge bases a new key names, sorted; a key must name one at least."""
    names = sorted(set(kbs))
    if not names:
        raise InvalidInputError("a key must name at least one knowledge base")
    return names


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a file made by an older release up to the schema: columns added since are added, rows kept."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(api_keys)")}
    if "last_used_at" not in columns:
        try:
            db.execute("ALTER TABLE api_keys ADD COLUMN last_used_at TEXT")
        except sqlite3.OperationalError as error:  # another worker starting at once added it first
            if "duplicate column" not in str(error):
                raise


class Registry(Protocol):
    """Knowledge bases and keys: what the SQLite registry (below) and the Milvus one
    (service/stores/milvus_registry.py) both answer, each passing tests/test_registry.py."""

    def list_kbs(self) -> list[KnowledgeBaseRecord]: ...
    def kb(self, kb_id: str) -> KnowledgeBaseRecord | None: ...
    def create_kb(self, *, kb_id: str, title: str, description: str = "", public: bool) -> KnowledgeBaseRecord: ...
    def update_kb(
        self, kb_id: str, *, title: str | None = None, description: str | None = None, public: bool | None = None
    ) -> KnowledgeBaseRecord: ...
    def delete_kb(self, kb_id: str) -> None: ...
    def create_key(self, *, kbs: Iterable[str], scope: Scope, label: str = "") -> NewKey: ...
    def list_keys(self) -> list[KeyRecord]: ...
    def delete_key(self, key_id: str) -> None: ...
    def find_key(self, key: str) -> KeyRecord | None: ...
    def note_key_use(self, key_id: str, *, now: datetime | None = None) -> None: ...
    def key_uses(self) -> dict[str, str]: ...
    def document_overrides(self, kb_id: str) -> dict[str, dict]: ...
    def put_document_override(self, kb_id: str, doc_id: str, body: dict | None) -> None: ...


class SqliteRegistry:
    """Knowledge bases and keys; a connection per call, so any thread may use it."""

    def __init__(self, path: Path, *, default_public: bool = True) -> None:
        self.path = path
        sqlite_file.create(path, _SCHEMA, _add_missing_columns)
        self._uses = KeyUseThrottle()
        with self._connect(write=True) as db:
            db.execute(
                "INSERT OR IGNORE INTO kbs VALUES (?, ?, '', ?, ?)",
                (DEFAULT_KB, "Default", int(default_public), now_iso()),
            )

    def _connect(self, *, write: bool = False):
        return sqlite_file.transaction(self.path, write=write, foreign_keys=True)

    # -- knowledge bases ---------------------------------------------------
    def list_kbs(self) -> list[KnowledgeBaseRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT kb_id, title, description, public, created_at FROM kbs ORDER BY kb_id")
            return [KnowledgeBaseRecord(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def kb(self, kb_id: str) -> KnowledgeBaseRecord | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT kb_id, title, description, public, created_at FROM kbs WHERE kb_id = ?", (kb_id,)
            ).fetchone()
        return KnowledgeBaseRecord(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None

    def create_kb(self, *, kb_id: str, title: str, description: str = "", public: bool) -> KnowledgeBaseRecord:
        if not valid_kb_id(kb_id):
            raise InvalidInputError(f"kb_id {kb_id!r} must be 1 to 64 of a-z, 0-9, _ and -")
        with self._connect(write=True) as db:
            try:
                db.execute(
                    "INSERT INTO kbs VALUES (?, ?, ?, ?, ?)", (kb_id, title, description, int(public), now_iso())
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"a knowledge base {kb_id!r} exists already") from None
        return self._require_kb(kb_id)

    def update_kb(
        self, kb_id: str, *, title: str | None = None, description: str | None = None, public: bool | None = None
    ) -> KnowledgeBaseRecord:
        changes = {"title": title, "description": description, "public": None if public is None else int(public)}
        changes = {column: value for column, value in changes.items() if value is not None}
        with self._connect(write=True) as db:
            if db.execute("SELECT 1 FROM kbs WHERE kb_id = ?", (kb_id,)).fetchone() is None:
                raise NotFoundError(f"no knowledge base {kb_id!r}")
            for column, value in changes.items():  # column names come from the dict above, never from input
                db.execute(f"UPDATE kbs SET {column} = ? WHERE kb_id = ?", (value, kb_id))
        return self._require_kb(kb_id)

    def delete_kb(self, kb_id: str) -> None:
        """Forget a knowledge base; the keys scoped to it lose it (a key left with none is revoked)."""
        if kb_id == DEFAULT_KB:
            raise ConflictError("the default knowledge base cannot be deleted")
        with self._connect(write=True) as db:
            if db.execute("DELETE FROM kbs WHERE kb_id = ?", (kb_id,)).rowcount == 0:
                raise NotFoundError(f"no knowledge base {kb_id!r}")
            db.execute("DELETE FROM api_keys WHERE key_id NOT IN (SELECT key_id FROM key_kbs)")
            db.execute("DELETE FROM document_overrides WHERE kb_id = ?", (kb_id,))

    def _require_kb(self, kb_id: str) -> KnowledgeBaseRecord:
        return required(self.kb(kb_id), kb_id)

    # -- staff corrections of document metadata -----------------------------
    def document_overrides(self, kb_id: str) -> dict[str, dict]:
        with self._connect() as db:
            rows = db.execute("SELECT doc_id, body FROM document_overrides WHERE kb_id = ?", (kb_id,))
            return {doc_id: json.loads(body) for doc_id, body in rows}

    def put_document_override(self, kb_id: str, doc_id: str, body: dict | None) -> None:
        """Set (or, with None, forget) a document's corrections: one row, replaced whole."""
        with self._connect(write=True) as db:
            db.execute("DELETE FROM document_overrides WHERE kb_id = ? AND doc_id = ?", (kb_id, doc_id))
            if body is not None:
                db.execute(
                    "INSERT INTO document_overrides VALUES (?, ?, ?)",
                    (kb_id, doc_id, json.dumps(body, ensure_ascii=False)),
                )

    # -- keys --------------------------------------------------------------
    def create_key(self, *, kbs: Iterable[str], scope: Scope, label: str = "") -> NewKey:
        names = key_kb_names(kbs)
        key_id, prefix, key = new_key_material()
        with self._connect(write=True) as db:
            known = {
                r[0] for r in db.execute(f"SELECT kb_id FROM kbs WHERE kb_id IN ({','.join('?' * len(names))})", names)
            }
            missing = [name for name in names if name not in known]
            if missing:
                raise InvalidInputError(f"no knowledge base {', '.join(map(repr, missing))}")
            db.execute(
                "INSERT INTO api_keys (key_id, prefix, secret_sha256, scope, label, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, prefix, key_digest(key), scope, label, now_iso()),
            )
            db.executemany("INSERT INTO key_kbs VALUES (?, ?)", [(key_id, name) for name in names])
        return NewKey(self._key(key_id), key)

    def list_keys(self) -> list[KeyRecord]:
        with self._connect() as db:
            ids = [r[0] for r in db.execute("SELECT key_id FROM api_keys ORDER BY created_at, prefix")]
        return [self._key(key_id) for key_id in ids]

    def delete_key(self, key_id: str) -> None:
        with self._connect(write=True) as db:
            if db.execute("DELETE FROM api_keys WHERE key_id = ?", (key_id,)).rowcount == 0:
                raise NotFoundError(f"no key with id {key_id!r}")
        self._uses.forget(key_id)

    def find_key(self, key: str) -> KeyRecord | None:
        """The key this secret is, or None; the digests are compared in constant time."""
        with self._connect() as db:
            row = db.execute(
                "SELECT key_id, secret_sha256 FROM api_keys WHERE prefix = ?", (key[:KEY_PREFIX_CHARS],)
            ).fetchone()
        stored = row[1] if row else b"\0" * 32
        matched = hmac.compare_digest(key_digest(key), stored)
        return self._key(row[0]) if row and matched else None

    def note_key_use(self, key_id: str, *, now: datetime | None = None) -> None:
        """Record that the key was used (a revoked key: nothing), at most once a minute per key."""
        now = now or datetime.now(UTC)
        if not self._uses.due(key_id, now):
            return
        try:
            with self._connect(write=True) as db:
                at = now.isoformat(timespec="seconds")
                db.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (at, key_id))
        except sqlite3.OperationalError as error:  # a busy file: the bookkeeping waits, the request does not fail
            self._uses.forget(key_id)
            logger.warning("could not record the use of key %s: %s", key_id, error)

    def key_uses(self) -> dict[str, str]:
        """When each key was last used (as noted), by key id; keys never used are absent."""
        with self._connect() as db:
            rows = db.execute("SELECT key_id, last_used_at FROM api_keys WHERE last_used_at IS NOT NULL")
            return dict(rows.fetchall())

    def _key(self, key_id: str) -> KeyRecord:
        with self._connect() as db:
            row = db.execute(
                "SELECT key_id, prefix, scope, label, created_at FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no key with id {key_id!r}")
            kbs = tuple(
                r[0] for r in db.execute("SELECT kb_id FROM key_kbs WHERE key_id = ? ORDER BY kb_id", (key_id,))
            )
        return KeyRecord(row[0], row[1], kbs, row[2], row[3], row[4])
