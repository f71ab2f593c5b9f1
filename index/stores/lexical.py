"""BM25 over jieba tokens, as an inverted index that takes live adds and deletes.

bm25s and rank-bm25 build a frozen matrix; documents here are added and
withdrawn one at a time, so postings are kept per term and statistics are
updated in place.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from index.tokenize import tokenize as default_tokenize

FORMAT_VERSION = 1


class LexicalHits(NamedTuple):
    ids: np.ndarray  # int64, best first
    scores: np.ndarray  # float32 BM25 scores


class Bm25LexicalStore:
    """Okapi BM25 with Lucene's idf, ``ln(1 + (N - df + 0.5) / (df + 0.5))``."""

    def __init__(
        self, *, k1: float = 1.2, b: float = 0.75, tokenizer: Callable[[str], list[str]] = default_tokenize
    ) -> None:
        self.k1 = k1
        self.b = b
        self.tokenizer = tokenizer
        self._postings: dict[str, dict[int, int]] = {}
        self._lengths: dict[int, int] = {}
        self._terms: dict[int, tuple[str, ...]] = {}  # so a delete touches only its own postings
        self._total_length = 0

    def add(self, ids: Iterable[int], texts: Iterable[str]) -> None:
        for chunk_id, text in zip(ids, texts, strict=True):
            self._add_counts(int(chunk_id), Counter(self.tokenizer(text)))

    def _add_counts(self, chunk_id: int, counts: Counter | dict[str, int]) -> None:
        if chunk_id in self._lengths:
            self.delete([chunk_id])
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[chunk_id] = tf
        length = sum(counts.values())
        self._lengths[chunk_id] = length
        self._terms[chunk_id] = tuple(counts)
        self._total_length += length

    def delete(self, ids: Iterable[int]) -> int:
        removed = 0
        for chunk_id in map(int, ids):
            length = self._lengths.pop(chunk_id, None)
            if length is None:
                continue
            removed += 1
            self._total_length -= length
            for term in self._terms.pop(chunk_id):
                del self._postings[term][chunk_id]
                if not self._postings[term]:
                    del self._postings[term]
        return removed

    def count(self) -> int:
        return len(self._lengths)

    def idf(self, term: str) -> float:
        df = len(self._postings.get(term, ()))
        return math.log(1.0 + (self.count() - df + 0.5) / (df + 0.5))

    def _accumulate(self, query: str, allowed: set[int] | None) -> dict[int, float]:
        if not self._lengths:
            return {}
        average_length = self._total_length / len(self._lengths)
        scores: dict[int, float] = {}
        for term, query_tf in Counter(self.tokenizer(query)).items():
            posting = self._postings.get(term)
            if not posting:
                continue
            idf = self.idf(term) * query_tf
            for chunk_id, tf in posting.items():
                if allowed is not None and chunk_id not in allowed:
                    continue
                norm = self.k1 * (1.0 - self.b + self.b * self._lengths[chunk_id] / average_length)
                scores[chunk_id] = scores.get(chunk_id, 0.0) + idf * tf * (self.k1 + 1.0) / (tf + norm)
        return scores

    def scores(self, query: str, allowed_ids: Iterable[int] | None = None) -> dict[int, float]:
        """Every matching chunk's BM25 score, in one pass over the query's postings."""
        allowed = set(map(int, allowed_ids)) if allowed_ids is not None else None
        return self._accumulate(query, allowed)

    @staticmethod
    def top(scores: dict[int, float], k: int) -> LexicalHits:
        """The k best of ``scores``, best first (ties by id)."""
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: max(k, 0)]
        return LexicalHits(
            np.array([i for i, _ in best], dtype=np.int64), np.array([s for _, s in best], dtype=np.float32)
        )

    def search(self, query: str, k: int, allowed_ids: Iterable[int] | None = None) -> LexicalHits:
        return self.top(self.scores(query, allowed_ids), k)

    def score(self, query: str, ids: Iterable[int]) -> np.ndarray:
        """BM25 scores of the given ids (0 where no term matches), in the given order."""
        ids = [int(i) for i in ids]
        scores = self._accumulate(query, set(ids))
        return np.array([scores.get(i, 0.0) for i in ids], dtype=np.float32)

    def save(self, path: Path) -> None:
        per_chunk: dict[int, dict[str, int]] = {chunk_id: {} for chunk_id in self._lengths}
        for term, posting in self._postings.items():
            for chunk_id, tf in posting.items():
                per_chunk[chunk_id][term] = tf
        payload = {
            "version": FORMAT_VERSION,
            "params": {"k1": self.k1, "b": self.b},
            "chunks": {str(chunk_id): counts for chunk_id, counts in per_chunk.items()},
        }
        path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, *, tokenizer: Callable[[str], list[str]] = default_tokenize) -> Bm25LexicalStore:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported lexical index version {payload.get('version')!r} in {path}")
        store = cls(tokenizer=tokenizer, **payload["params"])
        for chunk_id, counts in payload["chunks"].items():
            store._add_counts(int(chunk_id), counts)
        return store
