"""How the service's own SQLite files are opened: made once in WAL mode, then one short transaction per call.

Every connection turns ``secure_delete`` on: a deleted row's bytes are overwritten with zeros in the file, not left
in free pages, so what staff delete (a purged trash entry's text, a deleted document's corrections) leaves the disk.
``erase_wal`` then empties the write-ahead log, whose older frames still hold the row as it was written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def create(path: Path, schema: str, migrate: Callable[[sqlite3.Connection], None] | None = None) -> None:
    """Make the file (and its directory) with ``schema`` unless it exists; ``migrate`` brings an older file up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    setup = sqlite3.connect(path, timeout=10)
    try:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("PRAGMA secure_delete=ON")
        setup.executescript(schema)
        if migrate is not None:
            migrate(setup)
    finally:
        setup.close()


@contextmanager
def transaction(path: Path, *, write: bool = False, foreign_keys: bool = False) -> Iterator[sqlite3.Connection]:
    """One transaction on a connection of its own (any thread may call it); a write takes the write lock at once,
    reads (every request) never wait for each other."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        db.execute("PRAGMA secure_delete=ON")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()


def erase_wal(path: Path) -> bool:
    """Copy the write-ahead log into the file and truncate it to nothing: after a delete, the log's older frames
    are the last copy of the deleted rows. Waits (up to the busy timeout) for readers of an older snapshot;
    whether it was emptied (if not, the next delete's call empties it)."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.close()
    return not busy
