"""How the service's own SQLite files are opened: made once in WAL mode, then one short transaction per call."""

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
