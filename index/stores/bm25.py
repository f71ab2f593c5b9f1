"""BM25 over jieba tokens, held as flat arrays so a million chunks fit in a few hundred MB.

Postings are kept column-wise, one slice per term (the layout bm25s uses),
with each posting's BM25 term weight computed once. A question then costs
one slice, one multiply and one ``bincount`` per term, with no Python loop
over postings. Adds and deletes are still taken: they go to a row log and
the columns are rebuilt on the next search, so statistics (N, df, average
length) always describe exactly the live chunks.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from index.ingest.tokenize import tokenize as default_tokenize

FORMAT_VERSION = 2  # 2: column arrays in .npz (1 was JSON term counts per chunk)
# Below this share of postings to rows, scores are accumulated sparsely (np.unique);
# above it a dense bincount over all rows is cheaper.
DENSE_ACCUMULATION_SHARE = 1 / 16


class LexicalHits(NamedTuple):
    ids: np.ndarray  # int64, best first
    scores: np.ndarray  # float32 BM25 scores


class LexicalScores(NamedTuple):
    """Every chunk a query matched: ids ascending, with their BM25 scores."""

    ids: np.ndarray  # int64, sorted
    scores: np.ndarray  # float32

    def top(self, k: int) -> LexicalHits:
        """The k best, best first, ties broken by id."""
        k = min(max(k, 0), len(self.ids))
        if k == 0:
            return LexicalHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        if k < len(self.ids):
            # Everything tied with the k-th score is kept, so the id tie-break stays exact.
            kth = np.partition(self.scores, len(self.scores) - k)[len(self.scores) - k]
            keep = np.flatnonzero(self.scores >= kth)
        else:
            keep = np.arange(len(self.ids))
        order = np.lexsort((self.ids[keep], -self.scores[keep]))[:k]
        return LexicalHits(self.ids[keep][order], self.scores[keep][order])

    def of(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Scores of the given ids in their order, 0 for ids that did not match."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(self.ids) == 0 or len(ids) == 0:
            return np.zeros(len(ids), dtype=np.float32)
        at = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return np.where(self.ids[at] == ids, self.scores[at], 0.0).astype(np.float32)


def _int64_array(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    return ids.astype(np.int64) if isinstance(ids, np.ndarray) else np.fromiter(map(int, ids), dtype=np.int64)


def _empty_scores() -> LexicalScores:
    return LexicalScores(np.zeros(0, np.int64), np.zeros(0, np.float32))


class Bm25LexicalStore:
    """Okapi BM25 with Lucene's idf, ``ln(1 + (N - df + 0.5) / (df + 0.5))``.

    The store is in one of two forms: a row log that takes adds and deletes,
    or columns that answer queries. Each turns into the other on demand, so a
    loaded index that is only searched never holds the log.
    """

    def __init__(
        self, *, k1: float = 1.2, b: float = 0.75, tokenizer: Callable[[str], list[str]] = default_tokenize
    ) -> None:
        self.k1 = k1
        self.b = b
        self.tokenizer = tokenizer
        self._vocabulary: dict[str, int] = {}
        self._terms: list[str] = []
        self._log: _RowLog | None = _RowLog()
        self._columns: _Columns | None = None

    # -- writing ---------------------------------------------------------------

    def add(self, ids: Iterable[int], texts: Iterable[str]) -> None:
        for chunk_id, text in zip(ids, texts, strict=True):
            self._add_counts(int(chunk_id), Counter(self.tokenizer(text)))

    def _add_counts(self, chunk_id: int, counts: Counter | dict[str, int]) -> None:
        log = self._writable()
        term_ids = []
        for term in counts:
            term_id = self._vocabulary.get(term)
            if term_id is None:
                term_id = self._vocabulary[term] = len(self._terms)
                self._terms.append(term)
            term_ids.append(term_id)
        log.add(chunk_id, term_ids, list(counts.values()))

    def delete(self, ids: Iterable[int]) -> int:
        ids = list(map(int, ids))
        if not ids:
            return 0
        return self._writable().delete(ids)

    def _writable(self) -> _RowLog:
        if self._log is None:
            self._log = _RowLog.from_columns(self._columns)
        self._columns = None
        return self._log

    def _ready(self) -> _Columns:
        if self._columns is None:
            self._columns = _Columns.from_log(self._log, len(self._terms), self.k1, self.b)
            self._log = None
        return self._columns

    # -- reading ---------------------------------------------------------------

    def count(self) -> int:
        return self._log.count() if self._log is not None else len(self._columns.row_ids)

    def document_frequency(self, term: str) -> int:
        """How many chunks hold the term."""
        columns = self._ready()
        term_id = self._vocabulary.get(term)
        return int(columns.df[term_id]) if term_id is not None else 0

    def idf(self, term: str) -> float:
        df = self.document_frequency(term)
        return math.log(1.0 + (self.count() - df + 0.5) / (df + 0.5))

    def scores(self, query: str, allowed_ids: Iterable[int] | None = None) -> LexicalScores:
        """Every matching chunk's BM25 score, in one pass over the query's postings."""
        columns = self._ready()
        parts: list[tuple[int, float]] = []
        for term, query_tf in Counter(self.tokenizer(query)).items():
            term_id = self._vocabulary.get(term)
            if term_id is not None and columns.df[term_id] > 0:
                parts.append((term_id, float(columns.idf[term_id]) * query_tf))
        if not parts:
            return _empty_scores()
        rows, weights = columns.accumulate(parts)
        ids = columns.row_ids[rows]
        if allowed_ids is not None:
            keep = np.isin(ids, _int64_array(allowed_ids))
            ids, weights = ids[keep], weights[keep]
        return LexicalScores(ids, weights.astype(np.float32))

    def search(self, query: str, k: int, allowed_ids: Iterable[int] | None = None) -> LexicalHits:
        return self.scores(query, allowed_ids).top(k)

    def score(self, query: str, ids: Iterable[int]) -> np.ndarray:
        """BM25 scores of the given ids (0 where no term matches), in the given order."""
        ids = _int64_array(ids)
        return self.scores(query, ids).of(ids)

    def nbytes(self) -> int:
        """Memory held for searching: the columns and (roughly) the vocabulary."""
        return self._ready().nbytes() + sum(len(t.encode()) + 100 for t in self._terms)

    # -- files -----------------------------------------------------------------

    def save(self, path: Path) -> None:
        columns = self._ready()
        arrays = (columns.row_ids, columns.lengths, columns.pointers, columns.rows, columns.tfs)
        write_postings(path, SavedPostings(self._terms, arrays, self.k1, self.b))

    @classmethod
    def load(cls, path: Path, *, tokenizer: Callable[[str], list[str]] = default_tokenize) -> Bm25LexicalStore:
        saved = read_saved_postings(path)
        store = cls(k1=saved.k1, b=saved.b, tokenizer=tokenizer)
        store._terms = saved.terms
        store._vocabulary = {term: i for i, term in enumerate(store._terms)}
        store._columns = _Columns(*saved.arrays, saved.k1, saved.b)
        store._log = None
        return store


class SavedPostings(NamedTuple):
    terms: list[str]
    arrays: tuple[np.ndarray, ...]  # row_ids, lengths, pointers, rows, tfs
    k1: float
    b: float


def write_postings(path: Path, saved: SavedPostings) -> None:
    """The file ``read_saved_postings`` reads (``Bm25LexicalStore.save``'s format)."""
    row_ids, lengths, pointers, rows, tfs = saved.arrays
    with Path(path).open("wb") as handle:
        np.savez(
            handle,
            version=np.array(FORMAT_VERSION),
            params=np.array([saved.k1, saved.b]),
            terms=np.frombuffer("\n".join(saved.terms).encode("utf-8"), dtype=np.uint8),
            row_ids=row_ids,
            lengths=lengths,
            pointers=pointers,
            rows=rows,
            tfs=tfs,
        )


def read_saved_postings(path: Path) -> SavedPostings:
    """What ``Bm25LexicalStore.save`` wrote; ValueError for another format or version."""
    try:
        payload = np.load(path, allow_pickle=False)
        version = int(payload["version"]) if "version" in payload.files else None
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"unsupported lexical index version (not a .npz file): {path}") from exc
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported lexical index version {version!r} in {path}")
    k1, b = (float(x) for x in payload["params"])
    text = payload["terms"].tobytes().decode("utf-8")
    arrays = tuple(payload[name] for name in ("row_ids", "lengths", "pointers", "rows", "tfs"))
    return SavedPostings(text.split("\n") if text else [], arrays, k1, b)


class _RowLog:
    """Chunks as added: one row each, postings as (row, term, tf); deleted rows are skipped later."""

    def __init__(self) -> None:
        self.row_ids = array("q")
        self.lengths = array("i")
        self.posting_rows = array("i")
        self.posting_terms = array("i")
        self.posting_tfs = array("i")
        self.row_of: dict[int, int] = {}  # live chunk id -> its row

    def add(self, chunk_id: int, term_ids: list[int], tfs: list[int]) -> None:
        if chunk_id in self.row_of:
            self.delete([chunk_id])
        row = len(self.row_ids)
        self.posting_rows.extend([row] * len(term_ids))
        self.posting_terms.extend(term_ids)
        self.posting_tfs.extend(tfs)
        self.row_ids.append(chunk_id)
        self.lengths.append(sum(tfs))
        self.row_of[chunk_id] = row

    def delete(self, ids: list[int]) -> int:
        return sum(self.row_of.pop(chunk_id, None) is not None for chunk_id in ids)

    def count(self) -> int:
        return len(self.row_of)

    def live(self):
        """Live rows ordered by chunk id: (row ids, lengths, posting rows renumbered, terms, tfs)."""
        row_ids = np.frombuffer(self.row_ids, dtype=np.int64)
        live_rows = np.fromiter(self.row_of.values(), dtype=np.int64, count=len(self.row_of))
        live_rows = live_rows[np.argsort(row_ids[live_rows], kind="stable")]
        new_row = np.full(len(row_ids), -1, dtype=np.int64)
        new_row[live_rows] = np.arange(len(live_rows))
        rows = new_row[np.frombuffer(self.posting_rows, dtype=np.int32)]
        keep = rows >= 0
        return (
            row_ids[live_rows],
            np.frombuffer(self.lengths, dtype=np.int32)[live_rows],
            rows[keep].astype(np.int32),
            np.frombuffer(self.posting_terms, dtype=np.int32)[keep],
            np.frombuffer(self.posting_tfs, dtype=np.int32)[keep],
        )

    @classmethod
    def from_columns(cls, columns: _Columns) -> _RowLog:
        log = cls()
        log.row_ids = array("q", columns.row_ids.astype(np.int64).tobytes())
        log.lengths = array("i", columns.lengths.astype(np.int32).tobytes())
        log.posting_rows = array("i", columns.rows.astype(np.int32).tobytes())
        terms = np.repeat(np.arange(len(columns.df), dtype=np.int32), columns.df)
        log.posting_terms = array("i", terms.tobytes())
        log.posting_tfs = array("i", columns.tfs.astype(np.int32).tobytes())
        log.row_of = {int(chunk_id): row for row, chunk_id in enumerate(columns.row_ids.tolist())}
        return log


class _Columns:
    """The searchable form: postings grouped by term, each with its BM25 term weight."""

    def __init__(self, row_ids, lengths, pointers, rows, tfs, k1: float, b: float) -> None:
        self.row_ids = row_ids  # int64 chunk id of each row, ascending
        self.lengths = lengths  # int32 tokens per row
        self.pointers = pointers  # int64: term t's postings are [pointers[t], pointers[t+1])
        self.rows = rows  # int32, ascending within a term
        self.tfs = tfs  # uint16
        self.df = np.diff(pointers)
        n = len(row_ids)
        lengths = lengths.astype(np.float32)
        average = float(lengths.mean()) if n and lengths.sum() > 0 else 1.0
        norms = (k1 * (1.0 - b + b * lengths / average)).astype(np.float32)
        tf = tfs.astype(np.float32)
        # tf·(k1+1) / (tf + k1·(1 - b + b·len/avg)): all of BM25 but the idf, computed once.
        self.weights = (tf * np.float32(k1 + 1.0) / (tf + norms[rows])).astype(np.float32)
        self.idf = np.log1p((n - self.df + 0.5) / (self.df + 0.5))

    @classmethod
    def from_log(cls, log: _RowLog, n_terms: int, k1: float, b: float) -> _Columns:
        row_ids, lengths, rows, terms, tfs = log.live()
        order = np.argsort(terms, kind="stable")  # rows stay ascending within a term
        df = np.bincount(terms, minlength=n_terms)
        pointers = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=pointers[1:])
        return cls(row_ids.copy(), lengths.copy(), pointers, rows[order], tfs[order].astype(np.uint16), k1, b)

    def accumulate(self, parts: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Rows matched by the weighted terms, ascending, with their summed scores."""
        slices = [(self.pointers[t], self.pointers[t + 1], w) for t, w in parts]
        if len(slices) == 1:
            start, end, weight = slices[0]
            return self.rows[start:end], self.weights[start:end] * np.float32(weight)
        rows = np.concatenate([self.rows[s:e] for s, e, _ in slices])
        weights = np.concatenate([self.weights[s:e] * np.float32(w) for s, e, w in slices])
        if len(rows) >= len(self.row_ids) * DENSE_ACCUMULATION_SHARE:
            totals = np.bincount(rows, weights=weights, minlength=len(self.row_ids))
            matched = np.flatnonzero(totals)
            return matched, totals[matched]
        matched, inverse = np.unique(rows, return_inverse=True)
        return matched, np.bincount(inverse, weights=weights)

    def nbytes(self) -> int:
        arrays = (self.row_ids, self.lengths, self.pointers, self.rows, self.tfs, self.weights, self.df, self.idf)
        return sum(a.nbytes for a in arrays)
