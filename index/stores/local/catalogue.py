"""The SQLite catalogue: documents, chunks, sentences and build metadata.

Chunk ids are the int64 ids every store shares; sentence ids key the
sentence vectors the answer composer reads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from index.stores.records import (
    ChunkRecord,
    DocumentRecord,
    NewChunk,
    SentenceRecord,
    confidence_of,
    pages_of,
    with_confidence,
)

MAX_CACHED_CHUNKS = 2048  # records a read-only catalogue keeps (one to two KB each)

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'corpus',
    pages TEXT NOT NULL DEFAULT '[]'
);
-- An upload's duplicate check looks its content hash up: without this, a scan of every document's row
-- (with its text: 2.0 s cold, 0.19 s warm at 1M chunks), for each upload.
CREATE INDEX IF NOT EXISTS documents_by_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    section TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS sentences (
    sentence_id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_by_doc ON sentences(doc_id, start);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- A table of its own, not columns of documents: a segment written before it (read-only, immutable) still opens,
-- and a merge still copies its documents table whole.
CREATE TABLE IF NOT EXISTS document_times (
    doc_id TEXT PRIMARY KEY REFERENCES documents(doc_id) ON DELETE CASCADE,
    added_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""
_DOCUMENT_COLUMNS = (
    "d.doc_id, d.title, d.source, d.content_hash, {chunks}, d.origin, json_array_length(d.pages), {times}"
)
_TIMES_JOINED = "COALESCE(t.added_at, ''), COALESCE(t.updated_at, '')"
_NO_TIMES = "'', ''"


class SqliteCatalogue:
    """One connection per thread; opened read-only when serving."""

    def __init__(self, path: Path, *, read_only: bool = False, bulk: bool = False) -> None:
        """``bulk``: a new build's file, which nobody reads until it is finished: no journal, no fsync
        per document (the builder syncs the file once at the end; an unfinished build is discarded)."""
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None
        # A finished build never changes, so its chunk records can be kept between questions: a search
        # reads about forty, mostly the same ones, and decoding their rows cost more than the SQL.
        self._records: dict[int, ChunkRecord] = {}
        self._records_lock = threading.Lock()
        if read_only:
            # One connection, opened now and shared by every thread (sqlite3.threadsafety 3): it
            # holds the file open, so a request still reading this build after a newer build has
            # pruned its directory keeps working. immutable=1: a finished build never changes.
            uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
            self._shared = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._shared.execute("SELECT 1 FROM documents LIMIT 1")
            self._has_times = _has_table(self._shared, "main", "document_times")
        else:
            self._has_times = True
            with self._connection() as conn:
                if bulk:
                    conn.execute("PRAGMA journal_mode = OFF")
                    conn.execute("PRAGMA synchronous = OFF")
                conn.executescript(SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            return
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- writing -------------------------------------------------------------
    def add(
        self,
        *,
        doc_id: str,
        title: str,
        source: str,
        content_hash: str,
        text: str,
        chunks: Sequence[NewChunk],
        sentences: Sequence[tuple[int, int, int]],
        origin: str = "corpus",
        page_spans: Sequence[tuple[int, int]] = (),
        page_confidence: Sequence[float | None] = (),
        times: tuple[str, str] | None = None,
    ) -> None:
        """Store one document with its chunks, ``(sentence_id, start, end)`` sentences and page spans;
        an OCR'd page's span carries its confidence as a third value; ``times``: (added_at, updated_at)."""
        pages = [
            [*span, conf] if conf is not None else list(span)
            for span, conf in with_confidence(page_spans, page_confidence)
        ]
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc_id, title, source, content_hash, text, origin, json.dumps(pages)),
            )
            if times is not None:
                conn.execute("INSERT INTO document_times VALUES (?, ?, ?)", (doc_id, *times))
            conn.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (c.chunk_id, doc_id, i, c.start, c.end, json.dumps(c.section, ensure_ascii=False), c.text)
                    for i, c in enumerate(chunks)
                ],
            )
            conn.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?)", [(sid, doc_id, s, e) for sid, s, e in sentences]
            )

    def add_from(self, path: Path, *, exclude: Iterable[str] = ()) -> int:
        """Copy every document of another catalogue file, with its chunks and sentences, but the excluded
        ids (a merge: the rows keep their ids); the number of documents copied."""
        with self._connection() as conn:
            conn.execute("ATTACH DATABASE ? AS source", (str(Path(path).resolve()),))
        try:
            with self._connection() as conn:
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS excluded (doc_id TEXT PRIMARY KEY)")
                conn.execute("DELETE FROM excluded")
                conn.executemany("INSERT OR IGNORE INTO excluded VALUES (?)", [(d,) for d in exclude])
                keep = "WHERE doc_id NOT IN (SELECT doc_id FROM excluded)"
                copied = conn.execute(f"INSERT INTO documents SELECT * FROM source.documents {keep}").rowcount
                conn.execute(f"INSERT INTO chunks SELECT * FROM source.chunks {keep} ORDER BY chunk_id")
                conn.execute(f"INSERT INTO sentences SELECT * FROM source.sentences {keep} ORDER BY sentence_id")
                if _has_table(conn, "source", "document_times"):
                    conn.execute(f"INSERT INTO document_times SELECT * FROM source.document_times {keep}")
        finally:
            self._connection().execute("DETACH DATABASE source")
        return copied

    def compact(self) -> None:
        """Rewrite the file without free space (after a bulk copy)."""
        self._connection().execute("VACUUM")

    def all_chunk_ids(self) -> list[int]:
        return [row[0] for row in self._connection().execute("SELECT chunk_id FROM chunks ORDER BY chunk_id")]

    def all_sentence_ids(self) -> list[int]:
        rows = self._connection().execute("SELECT sentence_id FROM sentences ORDER BY sentence_id")
        return [row[0] for row in rows]

    def delete(self, doc_ids: Iterable[str]) -> int:
        with self._connection() as conn:
            return sum(conn.execute("DELETE FROM documents WHERE doc_id = ?", (d,)).rowcount for d in doc_ids)

    def set_meta(self, values: dict[str, str]) -> None:
        with self._connection() as conn:
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    # -- reading -------------------------------------------------------------
    def count(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def document_count(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def documents(self) -> list[DocumentRecord]:
        columns = _DOCUMENT_COLUMNS.format(chunks="COUNT(c.chunk_id)", times=self._times_columns())
        rows = self._connection().execute(
            f"SELECT {columns} FROM documents d {self._times_join()}"  # fixed text, no input
            " LEFT JOIN chunks c ON c.doc_id = d.doc_id GROUP BY d.doc_id ORDER BY d.source"
        )
        return [DocumentRecord(*row) for row in rows]

    def document(self, doc_id: str) -> DocumentRecord | None:
        chunks = "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id)"
        columns = _DOCUMENT_COLUMNS.format(chunks=chunks, times=self._times_columns())
        row = (
            self._connection()
            .execute(f"SELECT {columns} FROM documents d {self._times_join()} WHERE d.doc_id = ?", (doc_id,))
            .fetchone()
        )
        return DocumentRecord(*row) if row else None

    def _times_columns(self) -> str:
        return _TIMES_JOINED if self._has_times else _NO_TIMES

    def _times_join(self) -> str:
        return "LEFT JOIN document_times t ON t.doc_id = d.doc_id" if self._has_times else ""

    def document_text(self, doc_id: str) -> str | None:
        row = self._connection().execute("SELECT text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    def page_spans(self, doc_id: str) -> list[tuple[int, int]]:
        row = self._connection().execute("SELECT pages FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return [(span[0], span[1]) for span in json.loads(row[0])] if row else []

    def page_confidence(self, doc_id: str) -> tuple[float | None, ...]:
        """Each page's OCR confidence (None for a page read from its text), or () when none was OCR'd."""
        row = self._connection().execute("SELECT pages FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        spans = json.loads(row[0]) if row else []
        found = tuple(span[2] if len(span) > 2 else None for span in spans)
        return found if any(c is not None for c in found) else ()

    def doc_ids(self) -> list[str]:
        return [row[0] for row in self._connection().execute("SELECT doc_id FROM documents")]

    def doc_ids_with_content_hash(self, digest: str) -> list[str]:
        rows = self._connection().execute("SELECT doc_id FROM documents WHERE content_hash = ?", (digest,))
        return [row[0] for row in rows]

    def find_by_content_hash(self, digest: str) -> DocumentRecord | None:
        row = self._connection().execute("SELECT doc_id FROM documents WHERE content_hash = ?", (digest,)).fetchone()
        return self.document(row[0]) if row else None

    def known_doc_ids(self, doc_ids: Iterable[str]) -> set[str]:
        doc_ids = list(doc_ids)
        marks = ",".join("?" * len(doc_ids))
        rows = self._connection().execute(f"SELECT doc_id FROM documents WHERE doc_id IN ({marks})", doc_ids)
        return {row[0] for row in rows}

    def chunk_ids(self, doc_ids: Iterable[str]) -> list[int]:
        doc_ids = list(doc_ids)
        marks = ",".join("?" * len(doc_ids))
        rows = self._connection().execute(f"SELECT chunk_id FROM chunks WHERE doc_id IN ({marks})", doc_ids)
        return [row[0] for row in rows]

    def chunks(self, chunk_ids: Sequence[int]) -> list[ChunkRecord]:
        """Chunks in the order of ``chunk_ids`` (unknown ids are skipped)."""
        ids = [int(i) for i in chunk_ids]
        if not self.read_only:
            return self._read_chunks(ids)
        with self._records_lock:
            by_id = {i: record for i in ids if (record := self._records.get(i)) is not None}
        missing = [i for i in ids if i not in by_id]
        if missing:
            read = self._read_chunks(missing)
            by_id.update((record.chunk_id, record) for record in read)
            with self._records_lock:
                self._records.update((record.chunk_id, record) for record in read)
                while len(self._records) > MAX_CACHED_CHUNKS:
                    del self._records[next(iter(self._records))]  # the oldest read
        return [by_id[i] for i in ids if i in by_id]

    def _read_chunks(self, ids: list[int]) -> list[ChunkRecord]:
        marks = ",".join("?" * len(ids))
        rows = self._connection().execute(
            "SELECT c.chunk_id, c.doc_id, c.ordinal, c.start, c.end, c.section, c.text, d.title, d.source, d.pages"
            f" FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE c.chunk_id IN ({marks})",
            ids,
        )
        by_id = {}
        for row in rows:
            spans = json.loads(row[9])
            pages = pages_of(spans, row[3], row[4])
            confidence = confidence_of(spans, pages)
            by_id[row[0]] = ChunkRecord(*row[:5], tuple(json.loads(row[5])), *row[6:9], pages, confidence)
        return [by_id[i] for i in ids if i in by_id]

    def document_chunks(self, doc_id: str) -> list[ChunkRecord]:
        ids = [
            row[0]
            for row in self._connection().execute(
                "SELECT chunk_id FROM chunks WHERE doc_id = ? ORDER BY ordinal", (doc_id,)
            )
        ]
        return self.chunks(ids)

    def sentences_within(self, doc_id: str, start: int, end: int) -> list[SentenceRecord]:
        rows = self._connection().execute(
            "SELECT sentence_id, doc_id, start, end FROM sentences WHERE doc_id = ? AND start >= ? AND end <= ?"
            " ORDER BY start",
            (doc_id, start, end),
        )
        return [SentenceRecord(*row) for row in rows]

    def document_sentences(self, doc_id: str) -> list[SentenceRecord]:
        return self.sentences_within(doc_id, 0, 1 << 62)

    def meta(self) -> dict[str, str]:
        return dict(self._connection().execute("SELECT key, value FROM meta"))


def _has_table(conn: sqlite3.Connection, schema: str, name: str) -> bool:
    """Whether the attached database ``schema`` (main, or a merge's source) has the table (older segments lack
    document_times)."""
    query = f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?"  # schema: fixed by callers
    return conn.execute(query, (name,)).fetchone() is not None
