"""BM25 over several segments with statistics global across them.

Each segment keeps its postings as ``Bm25LexicalStore`` saves them (term-major
columns of rows and term frequencies). What makes a score depend on the rest
of the index, N, the document frequencies and the average length, is taken
over the live rows of every segment: tombstoned rows are skipped, and the
document frequencies they held (recorded with the tombstone) are subtracted.
A term's BM25 weights are then computed from its postings when a question
asks for it, with the same float32 arithmetic as ``Bm25LexicalStore``, so a
segmented index scores like one index of the same documents (to float
rounding: only the average length is summed in another order).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.ingest.tokenize import tokenize as default_tokenize
from index.stores.bm25 import (
    DENSE_ACCUMULATION_SHARE,
    FORMAT_VERSION,
    LexicalHits,
    LexicalScores,
    read_saved_postings,
)


class SegmentPostings:
    """One segment's postings, as saved: read-only, shared by every generation listing the segment."""

    def __init__(self, terms: list[str], row_ids, lengths, pointers, rows, tfs, k1: float, b: float) -> None:
        self.terms = terms
        self.vocabulary = {term: i for i, term in enumerate(terms)}
        self.row_ids = row_ids  # int64 chunk id of each row, ascending
        self.lengths = lengths  # int32 tokens per row
        self.pointers = pointers  # int64: term t's postings are [pointers[t], pointers[t+1])
        self.rows = rows  # int32
        self.tfs = tfs  # uint16
        self.k1, self.b = k1, b

    @classmethod
    def load(cls, path: Path) -> SegmentPostings:
        saved = read_saved_postings(path)
        return cls(saved.terms, *saved.arrays, saved.k1, saved.b)

    def df(self, term: str) -> int:
        t = self.vocabulary.get(term)
        return int(self.pointers[t + 1] - self.pointers[t]) if t is not None else 0

    def rows_of(self, chunk_ids: Iterable[int]) -> np.ndarray:
        """The rows of the given chunk ids (ids the segment lacks are skipped)."""
        ids = np.asarray(list(chunk_ids), dtype=np.int64)
        if len(ids) == 0 or len(self.row_ids) == 0:
            return np.zeros(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.row_ids, ids), len(self.row_ids) - 1)
        return at[self.row_ids[at] == ids]

    def nbytes(self) -> int:
        arrays = (self.row_ids, self.lengths, self.pointers, self.rows, self.tfs)
        return sum(a.nbytes for a in arrays) + sum(len(t.encode()) + 100 for t in self.terms)


@dataclass(frozen=True)
class LiveSegment:
    """A segment's postings as one generation sees them: its dead rows and the df they held."""

    postings: SegmentPostings
    dead_rows: np.ndarray
    dead_df: dict[str, int]


class SegmentedLexicalStore:
    """Okapi BM25 (Lucene's idf) over the live rows of several segments; read-only."""

    def __init__(self, segments: list[LiveSegment], *, tokenizer: Callable[[str], list[str]] = default_tokenize):
        self.tokenizer = tokenizer
        self.segments = segments
        first = segments[0].postings if segments else None
        self.k1, self.b = (first.k1, first.b) if first else (1.2, 0.75)
        self._live: list[np.ndarray | None] = []
        n = total = 0
        for segment in segments:
            lengths = segment.postings.lengths
            n += len(lengths) - len(segment.dead_rows)
            total += int(lengths.sum(dtype=np.int64)) - int(lengths[segment.dead_rows].sum(dtype=np.int64))
            live = None
            if len(segment.dead_rows):
                live = np.ones(len(lengths), dtype=bool)
                live[segment.dead_rows] = False
            self._live.append(live)
        self._n = n
        average = total / n if n and total > 0 else 1.0
        k1, b = self.k1, self.b
        self._norms = [
            (k1 * (1.0 - b + b * s.postings.lengths.astype(np.float32) / average)).astype(np.float32) for s in segments
        ]

    # -- reading ---------------------------------------------------------------

    def count(self) -> int:
        return self._n

    def document_frequency(self, term: str) -> int:
        """How many live chunks hold the term."""
        return sum(s.postings.df(term) - s.dead_df.get(term, 0) for s in self.segments)

    def idf(self, term: str) -> float:
        df = self.document_frequency(term)
        return math.log(1.0 + (self._n - df + 0.5) / (df + 0.5))

    def scores(self, query: str, allowed_ids: Iterable[int] | None = None) -> LexicalScores:
        """Every matching live chunk's BM25 score, ids ascending."""
        parts = []
        for term, query_tf in Counter(self.tokenizer(query)).items():
            df = self.document_frequency(term)
            if df > 0:
                parts.append((term, float(np.log1p((self._n - df + 0.5) / (df + 0.5))) * query_tf))
        found_ids, found_scores = [], []
        for segment, live, norms in zip(self.segments, self._live, self._norms, strict=True):
            rows, weights = self._accumulate(segment.postings, norms, parts)
            if live is not None:
                keep = live[rows]
                rows, weights = rows[keep], weights[keep]
            found_ids.append(segment.postings.row_ids[rows])
            found_scores.append(weights.astype(np.float32))
        if not found_ids:
            return LexicalScores(np.zeros(0, np.int64), np.zeros(0, np.float32))
        ids, scores = np.concatenate(found_ids).astype(np.int64), np.concatenate(found_scores)
        if len(ids) > 1 and np.any(ids[1:] < ids[:-1]):
            order = np.argsort(ids, kind="stable")
            ids, scores = ids[order], scores[order]
        if allowed_ids is not None:
            allowed = allowed_ids if isinstance(allowed_ids, np.ndarray) else np.fromiter(allowed_ids, np.int64)
            keep = np.isin(ids, allowed.astype(np.int64))
            ids, scores = ids[keep], scores[keep]
        return LexicalScores(ids, scores)

    def _accumulate(self, postings: SegmentPostings, norms: np.ndarray, parts: list[tuple[str, float]]):
        """Rows of one segment matched by the weighted terms, ascending, with their summed scores."""
        k1_plus_1 = np.float32(self.k1 + 1.0)
        pieces = []
        for term, weight in parts:
            t = postings.vocabulary.get(term)
            if t is None or postings.pointers[t + 1] == postings.pointers[t]:
                continue
            start, end = postings.pointers[t], postings.pointers[t + 1]
            rows = postings.rows[start:end]
            tf = postings.tfs[start:end].astype(np.float32)
            weights = (tf * k1_plus_1 / (tf + norms[rows])).astype(np.float32)
            pieces.append((rows, weights * np.float32(weight)))
        if not pieces:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if len(pieces) == 1:
            return pieces[0]
        rows = np.concatenate([r for r, _ in pieces])
        weights = np.concatenate([w for _, w in pieces])
        if len(rows) >= len(postings.row_ids) * DENSE_ACCUMULATION_SHARE:
            totals = np.bincount(rows, weights=weights, minlength=len(postings.row_ids))
            matched = np.flatnonzero(totals)
            return matched, totals[matched]
        matched, inverse = np.unique(rows, return_inverse=True)
        return matched, np.bincount(inverse, weights=weights)

    def search(self, query: str, k: int, allowed_ids: Iterable[int] | None = None) -> LexicalHits:
        return self.scores(query, allowed_ids).top(k)

    def score(self, query: str, ids: Iterable[int]) -> np.ndarray:
        """BM25 scores of the given ids (0 where no term matches), in the given order."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        return self.scores(query, ids).of(ids)

    def nbytes(self) -> int:
        return sum(s.postings.nbytes() for s in self.segments) + sum(n.nbytes for n in self._norms)


def merge_postings(parts: list[tuple[SegmentPostings, np.ndarray | None]], path: Path) -> int:
    """Write the live rows of several segments (ascending chunk ids, in this order) as one segment's
    postings, in ``Bm25LexicalStore``'s file format; each part is (postings, live-row mask or None).
    The number of rows written."""
    vocabulary: dict[str, int] = {}
    row_ids, lengths, rows, terms, tfs = [], [], [], [], []
    offset = 0
    for postings, live in parts:
        n_rows = len(postings.row_ids)
        live = np.ones(n_rows, dtype=bool) if live is None else live
        new_row = np.cumsum(live) - 1 + offset  # a live row's number in the merged segment
        to_global = np.array([vocabulary.setdefault(t, len(vocabulary)) for t in postings.terms], dtype=np.int32)
        local_terms = np.repeat(np.arange(len(postings.terms), dtype=np.int32), np.diff(postings.pointers))
        keep = live[postings.rows]
        rows.append(new_row[postings.rows[keep]].astype(np.int32))
        terms.append(to_global[local_terms[keep]] if len(to_global) else local_terms[keep])
        tfs.append(postings.tfs[keep])
        row_ids.append(postings.row_ids[live])
        lengths.append(postings.lengths[live])
        offset += int(live.sum())
    k1, b = (parts[0][0].k1, parts[0][0].b) if parts else (1.2, 0.75)
    all_terms = np.concatenate(terms) if terms else np.zeros(0, np.int32)
    # Terms only the dropped rows held are dropped too: the merged file is what a build of its rows writes.
    df = np.bincount(all_terms, minlength=len(vocabulary))
    kept = np.flatnonzero(df)
    renumber = np.full(len(vocabulary), -1, dtype=np.int32)
    renumber[kept] = np.arange(len(kept), dtype=np.int32)
    all_terms = renumber[all_terms]
    words = list(vocabulary)
    vocabulary = {words[i]: n for n, i in enumerate(kept.tolist())}
    order = np.argsort(all_terms, kind="stable")  # rows stay ascending within a term
    pointers = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    np.cumsum(df[kept], out=pointers[1:])
    with Path(path).open("wb") as handle:
        np.savez(
            handle,
            version=np.array(FORMAT_VERSION),
            params=np.array([k1, b]),
            terms=np.frombuffer("\n".join(vocabulary).encode("utf-8"), dtype=np.uint8),
            row_ids=np.concatenate(row_ids).astype(np.int64) if row_ids else np.zeros(0, np.int64),
            lengths=np.concatenate(lengths).astype(np.int32) if lengths else np.zeros(0, np.int32),
            pointers=pointers,
            rows=(np.concatenate(rows) if rows else np.zeros(0, np.int32))[order],
            tfs=(np.concatenate(tfs) if tfs else np.zeros(0, np.uint16)).astype(np.uint16)[order],
        )
    return offset
