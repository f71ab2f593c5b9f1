"""BM25 in Milvus: the same verbs and scores as ``Bm25LexicalStore``, with every statistic in Milvus.

Milvus's own BM25 function keeps statistics per segment (a fresh row ranked
132nd of 133 for its own text) and rejects the Chinese analyzer, so the
scoring is ours and Milvus holds what it needs, so that any replica can
answer:

- ``<name>_rows``: a chunk's BM25 term weights as a sparse vector (term id ->
  saturated tf, with the length weight of the average length when it was
  written, kept beside it with the chunk's length, so the raw tf can be
  recovered);
- ``<name>_terms``: each term's id and document frequency, and three
  bookkeeping rows (chunks, total length, next term id).

Both carry ``kb_id`` as their partition key: each knowledge base has its own
statistics and term ids (a term row's key is ``"<kb_id> <term>"``), and a
store reads and writes only its own.

A query's candidates come from a sparse inner-product search with the
query's idf weights over those weights: BM25 itself while the average length
has not moved since; each candidate is then scored exactly with today's
average. Every chunk a query matches is a candidate while they number at most
``candidates``; beyond that the candidates are the best by the written
weights, and the rest score 0. Each
candidate's frequencies cross the wire, so that bound is the cost: on
milvus-lite, 10k matched chunks took 760 ms a query. Writes read, then write, the statistics: one writer at
a time, as the service's write lock already ensures.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from index.ingest.tokenize import tokenize as default_tokenize
from index.stores.bm25 import LexicalHits, LexicalScores, _empty_scores, _int64_array
from index.stores.milvus.vectors import BATCH_ROWS, DEFAULT_KB, KB_FIELD, MAX_LIMIT, _client, add_kb_field, kb_filter

CANDIDATES = 256  # chunks scored exactly per query (see above)
# Keys no token can be: tokens never hold a space.
CHUNKS, TOTAL_LENGTH, NEXT_TERM = " chunks", " length", " next term"
BOOKKEEPING = (CHUNKS, TOTAL_LENGTH, NEXT_TERM)


def _quoted(values: Iterable) -> str:
    return ",".join(json.dumps(v, ensure_ascii=False) for v in values)


class MilvusLexicalStore:
    def __init__(
        self, *, uri: str, name: str, k1: float = 1.2, b: float = 0.75,
        tokenizer: Callable[[str], list[str]] = default_tokenize, candidates: int = CANDIDATES,
        kb_id: str = DEFAULT_KB,
    ) -> None:  # fmt: skip
        self.uri, self.name, self.k1, self.b, self.tokenizer = uri, name, k1, b, tokenizer
        self.kb_id = kb_id
        self._kept: dict[str, tuple[int, int] | None] | None = None  # a snapshot's term rows (see snapshot)
        self.candidates = min(candidates, MAX_LIMIT)
        self._client = _client(uri)
        self._rows, self._terms = f"{name}_rows", f"{name}_terms"
        if not self._client.has_collection(self._rows):
            self._create()
        for collection in (self._rows, self._terms):
            self._client.load_collection(collection)

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        rows = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        rows.add_field("id", DataType.INT64, is_primary=True)
        add_kb_field(rows)
        rows.add_field("tf", DataType.SPARSE_FLOAT_VECTOR)
        rows.add_field("length", DataType.INT64)
        rows.add_field("average", DataType.DOUBLE)  # the average length its weights were computed with
        index = self._client.prepare_index_params()
        index.add_index("tf", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        self._client.create_collection(self._rows, schema=rows, index_params=index, consistency_level="Strong")
        terms = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        terms.add_field("term", DataType.VARCHAR, is_primary=True, max_length=512)  # "<kb_id> <term>"
        add_kb_field(terms)
        terms.add_field("term_id", DataType.INT64)
        terms.add_field("df", DataType.INT64)
        terms.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        index = self._client.prepare_index_params()
        index.add_index("unused", index_type="FLAT", metric_type="IP")
        self._client.create_collection(self._terms, schema=terms, index_params=index, consistency_level="Strong")

    # -- statistics ------------------------------------------------------------

    def snapshot(self) -> MilvusLexicalStore:
        """A reader that keeps the statistics it reads: for the life of one generation of the index,
        which no write changes (writers use a store of their own)."""
        reader = copy.copy(self)
        reader._kept = {}
        return reader

    def _term_rows(self, terms: Iterable[str]) -> dict[str, tuple[int, int]]:
        """term -> (term id, document frequency), for the terms stored."""
        if self._kept is None:
            return self._read_term_rows(terms)
        terms = list(dict.fromkeys(terms))
        missing = [t for t in terms if t not in self._kept]
        if missing:
            found = self._read_term_rows(missing)
            self._kept.update((t, found.get(t)) for t in missing)
        return {t: row for t in terms if (row := self._kept[t]) is not None}

    def _read_term_rows(self, terms: Iterable[str]) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        wanted = [self._key(t) for t in dict.fromkeys(terms)]
        for at in range(0, len(wanted), BATCH_ROWS):
            part = f"term in [{_quoted(wanted[at : at + BATCH_ROWS])}]"  # the keys hold the kb_id: a key lookup
            rows = self._client.query(self._terms, filter=part, output_fields=["term_id", "df"])
            found.update((self._unkeyed(row["term"]), (int(row["term_id"]), int(row["df"]))) for row in rows)
        return found

    def _key(self, term: str) -> str:
        return f"{self.kb_id} {term}"

    def _unkeyed(self, key: str) -> str:
        return key[len(self.kb_id) + 1 :]

    def _bookkeeping(self) -> tuple[int, int, int]:
        """(chunks, total length, next term id)."""
        rows = self._term_rows(BOOKKEEPING)
        return tuple(rows.get(key, (0, 0))[1] for key in BOOKKEEPING)

    def _write_terms(self, rows: dict[str, tuple[int, int]]) -> None:
        items = [
            {"term": self._key(t), KB_FIELD: self.kb_id, "term_id": i, "df": df, "unused": [0.0, 0.0]}
            for t, (i, df) in rows.items()
        ]
        for at in range(0, len(items), BATCH_ROWS):
            self._client.upsert(self._terms, items[at : at + BATCH_ROWS])

    def count(self) -> int:
        return self._bookkeeping()[0]

    def document_frequency(self, term: str) -> int:
        return self._term_rows([term]).get(term, (0, 0))[1]

    def idf(self, term: str) -> float:
        rows = self._term_rows([CHUNKS, term])  # one round trip
        return _idf(rows.get(CHUNKS, (0, 0))[1], rows.get(term, (0, 0))[1])

    # -- writing ---------------------------------------------------------------

    def add(self, ids: Iterable[int], texts: Iterable[str]) -> None:
        """Store the chunks' term counts; an id stored before is replaced."""
        counts = {int(i): Counter(self.tokenizer(t)) for i, t in zip(ids, texts, strict=True)}
        if not counts:
            return
        self.delete(list(counts))
        chunks, total, next_id = self._bookkeeping()
        terms = self._term_rows({t for c in counts.values() for t in c})
        for term in sorted({t for c in counts.values() for t in c} - set(terms)):
            terms[term], next_id = (next_id, 0), next_id + 1
        for c in counts.values():
            for term in c:
                terms[term] = (terms[term][0], terms[term][1] + 1)
        length = sum(sum(c.values()) for c in counts.values())
        average = (total + length) / (chunks + len(counts))
        rows = [self._row(i, {terms[t][0]: n for t, n in c.items()}, average) for i, c in counts.items()]
        for at in range(0, len(rows), BATCH_ROWS):
            self._client.upsert(self._rows, rows[at : at + BATCH_ROWS])
        self._write_terms({**terms, CHUNKS: (0, chunks + len(rows)), TOTAL_LENGTH: (0, total + length),
                           NEXT_TERM: (0, next_id)})  # fmt: skip
        self._client.flush(self._rows)  # unflushed rows are searched by brute force, many times slower

    def _row(self, chunk_id: int, tfs: dict[int, int], average: float) -> dict:
        length = sum(tfs.values())
        norm = self._norm(length, average)
        weights = {t: tf * (self.k1 + 1) / (tf + norm) for t, tf in tfs.items()}
        return {"id": chunk_id, KB_FIELD: self.kb_id, "tf": weights or {0: 0.0}, "length": length, "average": average}

    def _norm(self, length: int, average: float) -> float:
        return self.k1 * (1.0 - self.b + self.b * length / average) if average > 0 else self.k1

    def _raw_tfs(self, row: dict) -> dict[int, float]:
        """Back from written weights to term frequencies: w = tf (k1 + 1) / (tf + norm)."""
        norm = self._norm(int(row["length"]), float(row["average"]))
        return {int(t): round(w * norm / (self.k1 + 1 - w)) for t, w in row["tf"].items() if w > 0}

    def delete(self, ids: Iterable[int]) -> int:
        ids = [int(i) for i in ids]
        stored = self._stored(ids)
        if not stored:
            return 0
        chunks, total, next_id = self._bookkeeping()
        by_id = {term_id: term for term, (term_id, _) in self._all_terms(stored).items()}
        change: Counter = Counter(by_id[t] for row in stored for t in self._raw_tfs(row))
        terms = self._term_rows(change)
        self._client.delete(self._rows, ids=[int(row["id"]) for row in stored])
        length = sum(int(row["length"]) for row in stored)
        updated = {t: (terms[t][0], terms[t][1] - n) for t, n in change.items()}
        self._write_terms({**updated, CHUNKS: (0, chunks - len(stored)), TOTAL_LENGTH: (0, total - length),
                           NEXT_TERM: (0, next_id)})  # fmt: skip
        return len(stored)

    def _stored(self, ids: list[int]) -> list[dict]:
        rows: list[dict] = []
        for at in range(0, len(ids), BATCH_ROWS):  # by primary key (a filter with the kb_id is a scan)
            part = ids[at : at + BATCH_ROWS]
            rows += self._client.get(self._rows, ids=part, output_fields=["tf", "length", "average", KB_FIELD])
        return [row for row in rows if row[KB_FIELD] == self.kb_id]

    def _all_terms(self, rows: list[dict]) -> dict[str, tuple[int, int]]:
        """The stored terms whose ids the rows hold (ids are looked up by value: a scan of term ids)."""
        wanted = sorted({int(t) for row in rows for t in row["tf"]})
        found: dict[str, tuple[int, int]] = {}
        for at in range(0, len(wanted), BATCH_ROWS):
            part = ",".join(map(str, wanted[at : at + BATCH_ROWS]))
            bookkeeping = _quoted(self._key(k) for k in BOOKKEEPING)
            query = kb_filter(self.kb_id, f"term_id in [{part}] and not (term in [{bookkeeping}])")
            for row in self._client.query(self._terms, filter=query, output_fields=["term_id", "df"]):
                found[self._unkeyed(row["term"])] = (int(row["term_id"]), int(row["df"]))
        return found

    # -- reading ---------------------------------------------------------------

    def scores(self, query: str, allowed_ids: Iterable[int] | None = None) -> LexicalScores:
        """Every matching chunk's BM25 score (of the best ``candidates`` by idf x tf)."""
        query_tf = Counter(self.tokenizer(query))
        rows = self._term_rows([*BOOKKEEPING, *query_tf])  # statistics and terms in one round trip
        chunks, total = rows.get(CHUNKS, (0, 0))[1], rows.get(TOTAL_LENGTH, (0, 0))[1]
        terms = {t: v for t, v in rows.items() if t in query_tf and v[1] > 0}
        allowed = None if allowed_ids is None else _int64_array(allowed_ids)
        if not terms or chunks == 0 or (allowed is not None and len(allowed) == 0):
            return _empty_scores()
        weights = {term_id: _idf(chunks, df) * query_tf[t] for t, (term_id, df) in terms.items()}
        found = self._client.search(
            self._rows, data=[weights], anns_field="tf", limit=min(self.candidates, chunks),
            filter=kb_filter(self.kb_id, "" if allowed is None else f"id in [{','.join(map(str, allowed.tolist()))}]"),
            output_fields=["tf", "length", "average"], search_params={"metric_type": "IP"},
        )[0]  # fmt: skip
        average = total / chunks
        ids = np.array([hit["id"] for hit in found], dtype=np.int64)
        scores = np.array([self._bm25(hit["entity"], weights, average) for hit in found], dtype=np.float32)
        order = np.argsort(ids)
        return LexicalScores(ids[order], scores[order])

    def _bm25(self, row: dict, weights: dict[int, float], average: float) -> float:
        norm = self._norm(int(row["length"]), average)
        tfs = self._raw_tfs(row)
        return sum(w * tfs[t] * (self.k1 + 1) / (tfs[t] + norm) for t, w in weights.items() if tfs.get(t, 0) > 0)

    def search(self, query: str, k: int, allowed_ids: Iterable[int] | None = None) -> LexicalHits:
        return self.scores(query, allowed_ids).top(k)

    def score(self, query: str, ids: Iterable[int]) -> np.ndarray:
        ids = _int64_array(ids)
        return self.scores(query, ids).of(ids)

    def nbytes(self) -> int:
        return 0  # held by Milvus, not by this process

    # -- files -----------------------------------------------------------------

    def save(self, path: Path) -> None:
        pointer = {"uri": self.uri, "name": self.name, "k1": self.k1, "b": self.b, "kb_id": self.kb_id}
        Path(path).write_text(json.dumps(pointer), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, *, tokenizer: Callable[[str], list[str]] = default_tokenize) -> MilvusLexicalStore:
        p = json.loads(Path(path).read_text(encoding="utf-8"))
        kb_id = p.get("kb_id", DEFAULT_KB)
        return cls(uri=p["uri"], name=p["name"], k1=float(p["k1"]), b=float(p["b"]), tokenizer=tokenizer, kb_id=kb_id)

    def drop(self) -> None:
        """Both collections, every knowledge base's rows."""
        for collection in (self._rows, self._terms):
            self._client.drop_collection(collection)

    def clear(self) -> None:
        """This knowledge base's rows and statistics (a knowledge base deleted)."""
        for collection in (self._rows, self._terms):
            self._client.delete(collection, filter=kb_filter(self.kb_id))


def _idf(n: int, df: int) -> float:
    """Lucene's idf, as ``Bm25LexicalStore`` computes it."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))
