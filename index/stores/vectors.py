"""Dense vectors in FAISS: inner product over L2-normalised float32, int64 chunk ids."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np


class VectorHits(NamedTuple):
    ids: np.ndarray  # int64, best first
    scores: np.ndarray  # float32 cosine similarities


class FaissVectorStore:
    """Exact inner-product search with id mapping, so ids survive deletes."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {vectors.shape}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != (len(vectors),):
            raise ValueError(f"expected {len(vectors)} ids, got shape {ids.shape}")
        self._index.add_with_ids(vectors, ids)

    def delete(self, ids: np.ndarray) -> int:
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> VectorHits:
        k = min(k, self.count())
        if k <= 0:
            return VectorHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dimension:
            raise ValueError(f"expected a query of dimension {self.dimension}, got {query.shape[1]}")
        params = None
        if allowed_ids is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(query, k, params=params)
        keep = ids[0] >= 0
        return VectorHits(ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float32))

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of the given ids (each id must be present)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_batch(ids)

    def count(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissVectorStore:
        index = faiss.read_index(str(path))
        return cls(index.d, index)
