"""The catalogue in Milvus: the read verbs of ``SegmentedCatalogue`` over collections any replica can read.

Collections (``<prefix>_`` before each name), every one with ``kb_id`` as its
partition key, every query filtered on it:

- ``documents``: one row per live document (title, source, content hash,
  origin, page spans, chunk count and ``version``, the token of the write that
  made it). This row is the commit: a document is in the catalogue when its
  row is there, with the rows of that version;
- ``texts``: the cleaned text in pieces (a VARCHAR holds at most 65,535 bytes);
- ``chunks`` and ``sentences``: spans, keyed by the int64 ids every store shares;
- ``document_times``: when each document came and last changed (a collection of its own: milvus-lite cannot add
  a field to the documents collection of a deployment made before times were kept).

There are no transactions, so every other row carries ``doc_id`` and
``version``, and a reader keeps a row only when the document row it belongs
to holds that version: rows written before their document row (an add under
way or killed) or left after it went (a delete under way or killed) are never
returned. A catalogue reads the document rows once (a snapshot); rows keyed
by immutable ids are cached across snapshots in a ``RowCache``.

A document row lists its chunk and sentence ids (as runs: ids are given out in
runs) and how many text pieces it has, so that reads fetch rows by primary
key (``get``), checking their kb_id, instead of by filter: milvus-lite scans
the collection for any filter but a bare primary-key list (a doc_id filter took
0.8 s on 38k sentence rows, a ``get`` of 30 ids 4 ms).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from index.stores.milvus.vectors import BATCH_ROWS, DEFAULT_KB, KB_FIELD, _client, add_kb_field, kb_filter
from index.stores.records import (
    ChunkRecord,
    DocumentRecord,
    NewChunk,
    SentenceRecord,
    confidence_of,
    pages_of,
    with_confidence,
)

TEXT_PART_CHARS = 16_000  # four bytes a character at most: a part stays under VARCHAR's 65,535 bytes
MAX_VARCHAR = 65_535
CACHED_CHUNKS, CACHED_DOCUMENTS = 50_000, 2_000
DOCUMENT_FIELDS = ["doc_id", "title", "source", "content_hash", "origin", "pages", "chunk_count", "version",
                   "chunk_runs", "sentence_runs", "text_parts"]  # fmt: skip
CHUNK_FIELDS = ["doc_id", "version", "ordinal", "start", "end", "section", "text"]


def quoted(values: Iterable) -> str:
    return ",".join(json.dumps(v, ensure_ascii=False) for v in values)


def text_parts(chars: int) -> int:
    return max(1, -(-chars // TEXT_PART_CHARS))


def runs(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as [first, count] runs of consecutive ids."""
    found: list[list[int]] = []
    for i in sorted(int(i) for i in ids):
        if found and found[-1][0] + found[-1][1] == i:
            found[-1][1] += 1
        else:
            found.append([i, 1])
    return found


def expanded(id_runs: list[list[int]]) -> list[int]:
    return [i for first, count in id_runs for i in range(first, first + count)]


def create_collection(client, name: str, fields: list[tuple], primary: str) -> None:
    """A collection of ``(name, type, params)`` fields with a kb_id partition key and the vector field
    Milvus wants in every collection (two zeros here: these rows are read by filter, never searched)."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    for field_name, kind, params in fields:
        schema.add_field(field_name, getattr(DataType, kind), is_primary=field_name == primary, **params)
    add_kb_field(schema)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("unused", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def _text(length: int = MAX_VARCHAR) -> tuple[str, dict]:
    return "VARCHAR", {"max_length": length}


SCHEMAS: dict[str, tuple[str, list[tuple]]] = {
    "documents": ("key", [
        ("key", *_text(1100)), ("doc_id", *_text(1024)), ("title", *_text(8192)), ("source", *_text(2048)),
        ("content_hash", *_text(128)), ("origin", *_text(32)), ("pages", *_text()), ("chunk_count", "INT64", {}),
        ("version", *_text(64)), ("chunk_runs", *_text()), ("sentence_runs", *_text()), ("text_parts", "INT64", {}),
    ]),
    "texts": ("key", [
        ("key", *_text(1200)), ("doc_id", *_text(1024)), ("version", *_text(64)), ("part", "INT64", {}),
        ("text", *_text()),
    ]),
    "chunks": ("chunk_id", [
        ("chunk_id", "INT64", {}), ("doc_id", *_text(1024)), ("version", *_text(64)), ("ordinal", "INT64", {}),
        ("start", "INT64", {}), ("end", "INT64", {}), ("section", *_text(8192)), ("text", *_text()),
    ]),
    "document_times": ("key", [
        ("key", *_text(1100)), ("doc_id", *_text(1024)), ("added_at", *_text(40)), ("updated_at", *_text(40)),
    ]),
    "sentences": ("sentence_id", [
        ("sentence_id", "INT64", {}), ("doc_id", *_text(1024)), ("version", *_text(64)), ("start", "INT64", {}),
        ("end", "INT64", {}),
    ]),
}  # fmt: skip


@dataclass
class RowCache:
    """Rows that never change once written (ids are never reused; a document's rows are fixed per
    version), shared by the snapshots of one knowledge base. Bounded, oldest out first."""

    chunks: OrderedDict = field(default_factory=OrderedDict)  # chunk id -> (version, record without pages)
    sentences: OrderedDict = field(default_factory=OrderedDict)  # (doc_id, version) -> [SentenceRecord]
    texts: OrderedDict = field(default_factory=OrderedDict)  # (doc_id, version) -> text

    @staticmethod
    def put(store: OrderedDict, key, value, limit: int) -> None:
        store[key] = value
        while len(store) > limit:
            store.popitem(last=False)


LIST_PAGE_ROWS = 2_000  # rows a listing reads per call: inside the gRPC message limit and the query window


class MilvusCatalogue:
    """One knowledge base's catalogue in Milvus, read as of its last ``refresh``."""

    def __init__(self, *, uri: str, prefix: str, kb_id: str = DEFAULT_KB, cache: RowCache | None = None) -> None:
        self.uri, self.prefix, self.kb_id = uri, prefix, kb_id
        self.cache = cache if cache is not None else RowCache()
        self._client = _client(uri)
        self.names = {kind: f"{prefix}_{kind}" for kind in SCHEMAS}
        for kind, name in self.names.items():
            if not self._client.has_collection(name):
                create_collection(self._client, name, SCHEMAS[kind][1], SCHEMAS[kind][0])
            self._client.load_collection(name)
        self._documents: dict[str, dict] = {}
        self._times: dict[str, tuple[str, str]] | None = None  # read when first asked for, once per snapshot
        self.refresh()

    def snapshot(self) -> MilvusCatalogue:
        """A catalogue as of now, sharing this one's client and cache."""
        other = object.__new__(MilvusCatalogue)
        other.__dict__.update(self.__dict__)
        other.refresh()
        return other

    def refresh(self) -> None:
        rows = self._query("documents", "", DOCUMENT_FIELDS)
        self._documents = {row["doc_id"]: row for row in rows}
        self._times = None

    def _document_times(self) -> dict[str, tuple[str, str]]:
        if self._times is None:
            rows = self._query("document_times", "", ["doc_id", "added_at", "updated_at"])
            self._times = {row["doc_id"]: (row["added_at"], row["updated_at"]) for row in rows}
        return self._times

    def _query(self, kind: str, condition: str, fields: list[str]) -> list[dict]:
        """Every matching row, read a page at a time: one plain query stops at Milvus's 16,384-row window,
        so a knowledge base of more documents (or a document of more sentences) failed to list."""
        pages = self._client.query_iterator(
            self.names[kind], batch_size=LIST_PAGE_ROWS, filter=kb_filter(self.kb_id, condition), output_fields=fields
        )
        rows: list[dict] = []
        try:
            while page := pages.next():
                rows += page
        finally:
            pages.close()
        return rows

    def _get(self, kind: str, keys: Sequence, fields: list[str]) -> list[dict]:
        """Rows by primary key, this knowledge base's only (keys are unique across all of them)."""
        rows: list[dict] = []
        for at in range(0, len(keys), BATCH_ROWS):
            part = list(keys[at : at + BATCH_ROWS])
            rows += self._client.get(self.names[kind], ids=part, output_fields=[*fields, KB_FIELD])
        return [row for row in rows if row[KB_FIELD] == self.kb_id]

    def _live(self, doc_id: str, version: str) -> bool:
        row = self._documents.get(doc_id)
        return row is not None and row["version"] == version

    # -- documents ---------------------------------------------------------
    def _record(self, row: dict) -> DocumentRecord:
        added, updated = self._document_times().get(row["doc_id"], ("", ""))
        return DocumentRecord(
            row["doc_id"], row["title"], row["source"], row["content_hash"], int(row["chunk_count"]), row["origin"],
            len(json.loads(row["pages"])), added, updated,
        )  # fmt: skip

    def count(self) -> int:
        return sum(int(row["chunk_count"]) for row in self._documents.values())

    def document_count(self) -> int:
        return len(self._documents)

    def documents(self) -> list[DocumentRecord]:
        return sorted((self._record(row) for row in self._documents.values()), key=lambda r: r.source)

    def document(self, doc_id: str) -> DocumentRecord | None:
        row = self._documents.get(doc_id)
        return self._record(row) if row is not None else None

    def version(self, doc_id: str) -> str | None:
        row = self._documents.get(doc_id)
        return row["version"] if row is not None else None

    def document_text(self, doc_id: str) -> str | None:
        version = self.version(doc_id)
        if version is None:
            return None
        text = self.cache.texts.get((doc_id, version))
        return text if text is not None else self._load_texts([doc_id])[doc_id]

    def _load_texts(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """The texts of these (live) documents, read in one round trip and cached."""
        versions = {d: self._documents[d]["version"] for d in doc_ids}
        keys = [f"{self.kb_id}/{d}/{v}/{n}" for d, v in versions.items()
                for n in range(int(self._documents[d]["text_parts"]))]  # fmt: skip
        parts: dict[str, list] = {d: [] for d in versions}
        for row in self._get("texts", keys, ["doc_id", "version", "part", "text"]):
            if versions.get(row["doc_id"]) == row["version"]:
                parts[row["doc_id"]].append((row["part"], row["text"]))
        texts = {d: "".join(text for _, text in sorted(found)) for d, found in parts.items()}
        for d, text in texts.items():  # returned from a local: another thread may evict them meanwhile
            RowCache.put(self.cache.texts, (d, versions[d]), text, CACHED_DOCUMENTS)
        return texts

    def _prefetch(self, doc_ids: set[str]) -> None:
        """The sentences and texts of the documents a search's passages come from, in two round trips
        rather than two a document (the answer's evidence reads them next)."""
        live = {d: self._documents[d]["version"] for d in doc_ids if d in self._documents}
        if missing := [d for d, v in live.items() if (d, v) not in self.cache.sentences]:
            self._load_sentences(missing)
        if missing := [d for d, v in live.items() if (d, v) not in self.cache.texts]:
            self._load_texts(missing)

    def _spans(self, doc_id: str) -> list[list]:
        row = self._documents.get(doc_id)
        return json.loads(row["pages"]) if row is not None else []

    def page_spans(self, doc_id: str) -> list[tuple[int, int]]:
        return [(span[0], span[1]) for span in self._spans(doc_id)]

    def page_confidence(self, doc_id: str) -> tuple[float | None, ...]:
        found = tuple(span[2] if len(span) > 2 else None for span in self._spans(doc_id))
        return found if any(c is not None for c in found) else ()

    def find_by_content_hash(self, digest: str) -> DocumentRecord | None:
        rows = sorted((r for r in self._documents.values() if r["content_hash"] == digest), key=lambda r: r["doc_id"])
        return self._record(rows[0]) if rows else None

    def known_doc_ids(self, doc_ids: Iterable[str]) -> set[str]:
        return {d for d in doc_ids if d in self._documents}

    def meta(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        """Nothing to close: the client is shared by every snapshot, and Milvus holds the rows."""

    # -- chunks and sentences ----------------------------------------------
    def chunk_ids(self, doc_ids: Iterable[str]) -> list[int]:
        wanted = self.known_doc_ids(doc_ids)
        return sorted(i for d in wanted for i in expanded(json.loads(self._documents[d]["chunk_runs"])))

    def chunks(self, chunk_ids: Sequence[int]) -> list[ChunkRecord]:
        """Live chunks in the order of ``chunk_ids`` (unknown, deleted and uncommitted ids are skipped)."""
        ids = [int(i) for i in chunk_ids]
        missing = [i for i in dict.fromkeys(ids) if not self._cached_live(i)]  # a reused id is read again
        read: dict[int, tuple[str, ChunkRecord]] = {}
        for at in range(0, len(missing), BATCH_ROWS):
            for row in self._get("chunks", missing[at : at + BATCH_ROWS], CHUNK_FIELDS):
                record = ChunkRecord(
                    int(row["chunk_id"]), row["doc_id"], int(row["ordinal"]), int(row["start"]), int(row["end"]),
                    tuple(json.loads(row["section"])), row["text"], "", "",
                )  # fmt: skip
                read[record.chunk_id] = (row["version"], record)
                RowCache.put(self.cache.chunks, record.chunk_id, read[record.chunk_id], CACHED_CHUNKS)
        found = [read.get(i) or self.cache.chunks.get(i) for i in ids]
        records = [self._with_document(record) for v, record in filter(None, found) if self._live(record.doc_id, v)]
        self._prefetch({r.doc_id for r in records})
        return records

    def _cached_live(self, chunk_id: int) -> bool:
        cached = self.cache.chunks.get(chunk_id)
        return cached is not None and self._live(cached[1].doc_id, cached[0])

    def _with_document(self, chunk: ChunkRecord) -> ChunkRecord:
        row = self._documents[chunk.doc_id]
        spans = json.loads(row["pages"])
        pages = pages_of(spans, chunk.start, chunk.end)
        return ChunkRecord(
            chunk.chunk_id, chunk.doc_id, chunk.ordinal, chunk.start, chunk.end, chunk.section, chunk.text,
            row["title"], row["source"], pages, confidence_of(spans, pages),
        )  # fmt: skip

    def document_chunks(self, doc_id: str) -> list[ChunkRecord]:
        return sorted(self.chunks(self.chunk_ids([doc_id])), key=lambda c: c.ordinal)

    def document_sentences(self, doc_id: str) -> list[SentenceRecord]:
        version = self.version(doc_id)
        if version is None:
            return []
        found = self.cache.sentences.get((doc_id, version))
        return found if found is not None else self._load_sentences([doc_id])[doc_id]

    def _load_sentences(self, doc_ids: Iterable[str]) -> dict[str, list[SentenceRecord]]:
        """The sentences of these (live) documents, read in one round trip and cached."""
        versions = {d: self._documents[d]["version"] for d in doc_ids}
        ids = [i for d in versions for i in expanded(json.loads(self._documents[d]["sentence_runs"]))]
        found: dict[str, list[SentenceRecord]] = {d: [] for d in versions}
        for r in self._get("sentences", ids, ["doc_id", "version", "start", "end"]):
            if versions.get(r["doc_id"]) == r["version"]:
                record = SentenceRecord(int(r["sentence_id"]), r["doc_id"], int(r["start"]), int(r["end"]))
                found[r["doc_id"]].append(record)
        for d, sentences in found.items():
            sentences.sort(key=lambda s: s.start)
            RowCache.put(self.cache.sentences, (d, versions[d]), sentences, CACHED_DOCUMENTS)
        return found

    def sentences_within(self, doc_id: str, start: int, end: int) -> list[SentenceRecord]:
        return [s for s in self.document_sentences(doc_id) if s.start >= start and s.end <= end]

    # -- writing -----------------------------------------------------------
    def add_rows(
        self, *, doc_id: str, version: str, text: str, chunks: Sequence[NewChunk], sentences: Sequence[tuple]
    ) -> None:
        """A document's text, chunks and sentences, not yet visible (``commit`` makes them so)."""
        base = {KB_FIELD: self.kb_id, "doc_id": doc_id, "version": version, "unused": [0.0, 0.0]}
        parts = [text[n * TEXT_PART_CHARS : (n + 1) * TEXT_PART_CHARS] for n in range(text_parts(len(text)))]
        self._upsert("texts", [{**base, "key": f"{self.kb_id}/{doc_id}/{version}/{n}", "part": n, "text": part}
                               for n, part in enumerate(parts)])  # fmt: skip
        self._upsert("chunks", [
            {**base, "chunk_id": c.chunk_id, "ordinal": n, "start": c.start, "end": c.end,
             "section": json.dumps(c.section, ensure_ascii=False), "text": c.text}
            for n, c in enumerate(chunks)
        ])  # fmt: skip
        self._upsert("sentences", [{**base, "sentence_id": i, "start": s, "end": e} for i, s, e in sentences])

    def document_row(self, *, doc_id: str, version: str, title: str, source: str, content_hash: str, origin: str,
                     chunk_ids: Sequence[int], sentence_ids: Sequence[int], text_chars: int,
                     page_spans: Sequence = (), page_confidence: Sequence = ()) -> dict:  # fmt: skip
        pages = [
            [*span, c] if c is not None else list(span) for span, c in with_confidence(page_spans, page_confidence)
        ]
        return {
            "key": f"{self.kb_id}/{doc_id}", KB_FIELD: self.kb_id, "doc_id": doc_id, "title": title, "source": source,
            "content_hash": content_hash, "origin": origin, "pages": json.dumps(pages), "chunk_count": len(chunk_ids),
            "version": version, "chunk_runs": json.dumps(runs(chunk_ids)),
            "sentence_runs": json.dumps(runs(s for s in sentence_ids)), "text_parts": text_parts(text_chars),
            "unused": [0.0, 0.0],
        }  # fmt: skip

    def commit_all(self, rows: list[dict], times: dict[str, tuple[str, str]] | None = None) -> None:
        """Write document rows (``document_row``): each commits its own document's version; ``times`` (doc_id ->
        (added_at, updated_at)) go first: a times row without its document is never read."""
        self._upsert("document_times", [
            {"key": f"{self.kb_id}/{doc_id}", KB_FIELD: self.kb_id, "doc_id": doc_id, "added_at": added,
             "updated_at": updated, "unused": [0.0, 0.0]}
            for doc_id, (added, updated) in (times or {}).items()
        ])  # fmt: skip
        self._upsert("documents", rows)
        self.refresh()

    def retract(self, doc_ids: Iterable[str]) -> int:
        """Delete the document rows: the documents are gone for every reader (their rows go after)."""
        known = sorted(self.known_doc_ids(doc_ids))
        if known:
            keys = [f"{self.kb_id}/{d}" for d in known]
            for kind in ("documents", "document_times"):
                self._client.delete(self.names[kind], filter=kb_filter(self.kb_id, f"key in [{quoted(keys)}]"))
            self.refresh()
        return len(known)

    def rows_of(self, doc_id: str, version: str | None = None) -> tuple[list[int], list[int]]:
        """(chunk ids, sentence ids) stored for a document, of one version or of all."""
        condition = f"doc_id == {json.dumps(doc_id)}" + (f" and version == {json.dumps(version)}" if version else "")
        chunks = [int(r["chunk_id"]) for r in self._query("chunks", condition, ["chunk_id"])]
        sentences = [int(r["sentence_id"]) for r in self._query("sentences", condition, ["sentence_id"])]
        return sorted(chunks), sorted(sentences)

    def remove_rows(self, doc_id: str, version: str | None = None) -> None:
        """A document's text, chunk and sentence rows, of one version or of all (after its row went)."""
        condition = f"doc_id == {json.dumps(doc_id)}" + (f" and version == {json.dumps(version)}" if version else "")
        for kind in ("chunks", "sentences", "texts"):
            self._client.delete(self.names[kind], filter=kb_filter(self.kb_id, condition))

    def add(self, *, doc_id: str, title: str, source: str, content_hash: str, text: str,
            chunks: Sequence[NewChunk], sentences: Sequence[tuple[int, int, int]], origin: str = "corpus",
            page_spans: Sequence = (), page_confidence: Sequence = (), version: str = "1",
            times: tuple[str, str] | None = None) -> None:  # fmt: skip
        """``SqliteCatalogue.add``: the rows, then the document row (vectors and BM25 are other stores')."""
        previous = self.version(doc_id)
        self.add_rows(doc_id=doc_id, version=version, text=text, chunks=chunks, sentences=sentences)
        row = self.document_row(
            doc_id=doc_id, version=version, title=title, source=source, content_hash=content_hash, origin=origin,
            chunk_ids=[c.chunk_id for c in chunks], sentence_ids=[s[0] for s in sentences], text_chars=len(text),
            page_spans=page_spans, page_confidence=page_confidence,
        )  # fmt: skip
        self.commit_all([row], {doc_id: times} if times is not None else None)
        if previous is not None and previous != version:
            self.remove_rows(doc_id, previous)

    def delete(self, doc_ids: Iterable[str]) -> int:
        """The document rows first, then their other rows; the number of documents deleted."""
        known = sorted(self.known_doc_ids(doc_ids))
        self.retract(known)
        for doc_id in known:
            self.remove_rows(doc_id)
        return len(known)

    def clear(self) -> None:
        """Every row of this knowledge base (it was deleted)."""
        for name in self.names.values():
            self._client.delete(name, filter=kb_filter(self.kb_id))
        self.refresh()

    def drop(self) -> None:
        for name in self.names.values():
            self._client.drop_collection(name)

    def _upsert(self, kind: str, rows: list[dict]) -> None:
        for at in range(0, len(rows), BATCH_ROWS):
            self._client.upsert(self.names[kind], rows[at : at + BATCH_ROWS])
