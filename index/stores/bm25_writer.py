"""BM25 postings written a batch of chunks at a time, in ``Bm25LexicalStore``'s file format.

A large build cannot keep every chunk's tokens until the end: each batch is
turned into term-major columns of its own (rows, term ids, term frequencies:
ten bytes a posting) and its tokens are dropped. Finishing counts each term's
postings over all batches and lays the batches' columns end to end within
each term. Batches come in chunk-id order, so rows stay ascending within a
term, and the file is the one ``Bm25LexicalStore`` would save for the same
chunks (tested against it): same vocabulary order, same columns.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from index.stores.bm25 import SavedPostings, write_postings


class _BatchColumns(NamedTuple):
    terms: np.ndarray  # int32, ascending
    rows: np.ndarray  # int32 rows of the whole segment, ascending within a term
    tfs: np.ndarray  # uint16


class Bm25PostingsWriter:
    """One segment's postings, taken batch by batch and written once by ``finish``."""

    def __init__(self, *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._vocabulary: dict[str, int] = {}  # in first-seen order, as Bm25LexicalStore numbers terms
        self._row_ids: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._batches: list[_BatchColumns] = []
        self._rows = 0

    def count(self) -> int:
        return self._rows

    def add(self, chunk_ids: Sequence[int], token_lists: Iterable[Sequence[str]]) -> None:
        """The next chunks, with ids above every chunk added before, and each chunk's tokens."""
        vocabulary = self._vocabulary
        rows, terms, tfs, lengths = array("i"), array("i"), array("i"), array("i")
        for row, tokens in enumerate(token_lists, start=self._rows):
            counts = Counter(tokens)
            terms.extend([vocabulary.setdefault(term, len(vocabulary)) for term in counts])
            tfs.extend(counts.values())
            rows.extend([row] * len(counts))
            lengths.append(len(tokens))
        ids = np.asarray(chunk_ids, dtype=np.int64)
        if len(ids) != len(lengths):
            raise ValueError(f"{len(ids)} chunk ids for {len(lengths)} token lists")
        previous = self._row_ids[-1][-1:] if self._row_ids and len(self._row_ids[-1]) else ids[:0]
        if np.any(np.diff(np.concatenate([previous, ids])) <= 0):
            raise ValueError("chunk ids must ascend across the batches")
        term_array = np.frombuffer(terms, dtype=np.int32)
        order = np.argsort(term_array, kind="stable")  # rows stay ascending within a term
        self._batches.append(
            _BatchColumns(
                term_array[order],
                np.frombuffer(rows, dtype=np.int32)[order],
                np.frombuffer(tfs, dtype=np.int32)[order].astype(np.uint16),
            )
        )
        self._row_ids.append(ids)
        self._lengths.append(np.frombuffer(lengths, dtype=np.int32).copy())
        self._rows += len(ids)

    def finish(self, path: Path) -> None:
        """Write the postings of every chunk added, and let go of them."""
        n_terms = len(self._vocabulary)
        df = np.zeros(n_terms, dtype=np.int64)
        for batch in self._batches:
            df += np.bincount(batch.terms, minlength=n_terms)
        pointers = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=pointers[1:])
        rows = np.empty(int(pointers[-1]), dtype=np.int32)
        tfs = np.empty(int(pointers[-1]), dtype=np.uint16)
        written = pointers[:-1].copy()  # where each term's next postings go
        for batch in self._batches:
            counts = np.bincount(batch.terms, minlength=n_terms)
            starts = np.zeros(n_terms, dtype=np.int64)  # each term's first posting within the batch
            np.cumsum(counts[:-1], out=starts[1:])
            at = written[batch.terms] + (np.arange(len(batch.terms), dtype=np.int64) - starts[batch.terms])
            rows[at] = batch.rows
            tfs[at] = batch.tfs
            written += counts
        row_ids = np.concatenate(self._row_ids) if self._row_ids else np.zeros(0, dtype=np.int64)
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, dtype=np.int32)
        self._batches, self._row_ids, self._lengths = [], [], []
        write_postings(
            path, SavedPostings(list(self._vocabulary), (row_ids, lengths, pointers, rows, tfs), self.k1, self.b)
        )
