"""Hybrid retrieval: dense and BM25 candidates, oversampled, fused, de-duplicated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from index.clean import normalize_for_matching
from index.embedders.base import Embedder
from index.errors import UnknownDocumentError
from index.fusion import FUSIONS
from index.storage import LoadedIndex
from index.stores.catalogue import ChunkRecord

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[str, ...] = ("hybrid", "dense", "lexical")
MIN_CANDIDATES = 20


@dataclass(frozen=True)
class Hit:
    chunk: ChunkRecord
    score: float  # the ranking score of the mode used
    dense: float  # cosine similarity to the question
    lexical: float  # BM25 score


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    query_vector: np.ndarray


class Retriever:
    """Searches one loaded index with one embedder; safe to share across threads."""

    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder,
        *,
        fusion: str = "weighted",
        dense_weight: float = 0.5,
        oversample: int = 4,
    ) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose from {sorted(FUSIONS)}")
        self.index = index
        self.embedder = embedder
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.oversample = oversample

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed_queries([normalize_for_matching(query)])[0]

    def search(
        self,
        query: str,
        *,
        top_k: int = 5,
        mode: Mode = "hybrid",
        doc_ids: Sequence[str] | None = None,
    ) -> SearchResult:
        allowed = self._allowed_chunk_ids(doc_ids)
        query_vector = self.embed_query(query)
        if allowed is not None and len(allowed) == 0:
            return SearchResult([], query_vector)
        n_candidates = max(top_k * self.oversample, MIN_CANDIDATES)
        # One BM25 pass serves both the lexical candidates and the lexical score of the dense ones.
        lexical_scores = self.index.lexical.scores(query, allowed)
        candidates: list[int] = []
        if mode in ("hybrid", "dense"):
            candidates += self.index.vectors.search(query_vector, n_candidates, allowed).ids.tolist()
        if mode in ("hybrid", "lexical"):
            candidates += lexical_scores.top(n_candidates).ids.tolist()
        ids = np.array(list(dict.fromkeys(candidates)), dtype=np.int64)
        if len(ids) == 0:
            return SearchResult([], query_vector)
        dense = self.index.vectors.vectors(ids) @ query_vector
        lexical = lexical_scores.of(ids)
        if mode == "dense":
            scores = dense
        elif mode == "lexical":
            scores = lexical
        else:
            scores = FUSIONS[self.fusion](dense, lexical, dense_weight=self.dense_weight)
        order = np.argsort(-scores, kind="stable")
        return SearchResult(self._hits(ids, order, scores, dense, lexical, top_k), query_vector)

    def _hits(self, ids, order, scores, dense, lexical, top_k: int) -> list[Hit]:
        ranked = [int(ids[i]) for i in order[: top_k * 2]]
        records = {c.chunk_id: c for c in self.index.catalogue.chunks(ranked)}
        hits: list[Hit] = []
        seen_texts: set[str] = set()
        for i in order:
            chunk = records.get(int(ids[i]))
            if chunk is None or chunk.text in seen_texts:
                continue  # an identical passage from a duplicate document adds nothing
            seen_texts.add(chunk.text)
            hits.append(Hit(chunk, float(scores[i]), float(dense[i]), float(lexical[i])))
            if len(hits) == top_k:
                break
        return hits

    def _allowed_chunk_ids(self, doc_ids: Sequence[str] | None) -> np.ndarray | None:
        if doc_ids is None:
            return None
        wanted = list(dict.fromkeys(doc_ids))
        known = self.index.catalogue.known_doc_ids(wanted)
        missing = [d for d in wanted if d not in known]
        if missing:
            raise UnknownDocumentError(missing)
        return np.array(self.index.catalogue.chunk_ids(wanted), dtype=np.int64)
