"""Dense vectors in FAISS: inner product over L2-normalised float32, int64 chunk ids.

Small indexes are searched exactly. Above ``exact_max`` vectors (measured by
``eval/bench_scale.py``: where exact search starts to cost as much as the
rest of a search) an inverted-file index is built instead, and its ``nprobe``
is raised until recall@10 against exact search reaches ``target_recall`` on
a sample of the index's own vectors moved off-centre like questions are.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from index.stores.vectors import VectorHits, checked_rows  # noqa: F401  (where the FAISS store's readers found them)

# eval/bench_scale.py (one core): exact search takes 3.0 ms at 50,000 vectors and
# 6.7 ms at 100,000, against about 20 ms to embed the question; from here on it
# costs more than a quarter of that, and IVF at recall@10 0.98 is 3-6x faster.
EXACT_MAX = 75_000
# Calibration queries are the index's own vectors pushed far off (cosine about
# 0.55 to where they started): real questions sit off the passages' manifold,
# and on the 1M-chunk tier these queries at recall 0.975 gave recall@10 0.982 on
# the real gold questions (nprobe 1024 of 4000 lists), where nearer ones
# (cosine 0.86) at 0.99 stopped at nprobe 128 and 0.943.
TARGET_RECALL = 0.975
QUERY_NOISE = 1.5
CALIBRATION_QUERIES = 200


class FaissVectorStore:
    """Inner-product search with id mapping, so ids survive deletes."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        exact_max: int = EXACT_MAX,
        target_recall: float = TARGET_RECALL,
        seed: int = 0,
    ) -> FaissVectorStore:
        """An index for these vectors: exact up to ``exact_max`` of them, IVF above."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = vectors.shape[1]
        if len(vectors) <= exact_max:
            store = cls(dimension)
            store.add(ids, vectors)
            return store
        n_lists = int(min(4 * math.sqrt(len(vectors)), len(vectors) / 39))
        quantizer = faiss.IndexFlatIP(dimension)
        ivf = faiss.IndexIVFFlat(quantizer, dimension, n_lists, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = vectors[np.sort(rng.choice(len(vectors), min(len(vectors), n_lists * 40), replace=False))]
        ivf.train(sample)
        # A hash direct map, so vectors(ids) can read any stored vector back and deletes still work.
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        store = cls(dimension, ivf)  # IVF keeps the ids in its lists: no id map needed
        store.add(ids, vectors)
        ivf.nprobe = calibrate_nprobe(ivf, np.asarray(ids, dtype=np.int64), vectors, target_recall, rng)
        return store

    @property
    def kind(self) -> str:
        ivf = faiss.try_extract_index_ivf(self._index)
        return f"ivf{ivf.nlist},nprobe={ivf.nprobe}" if ivf is not None else "exact"

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = checked_rows(ids, vectors, self.dimension)
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
            ivf = faiss.try_extract_index_ivf(self._index)
            if ivf is not None:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
                if len(allowed_ids) <= ivf.nlist:
                    # A few documents' chunks: their vectors may lie in lists nprobe never visits.
                    params.nprobe = ivf.nlist
            else:
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

    def nbytes(self) -> int:
        """Memory held for searching: the vectors, the id maps and the IVF centroids."""
        ivf = faiss.try_extract_index_ivf(self._index)
        centroids = ivf.nlist * self.dimension * 4 if ivf is not None else 0
        # the vector and its id, plus the id maps: reverse hash (exact) or direct-map hash (IVF)
        return self.count() * (self.dimension * 4 + 8 + 32) + centroids

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissVectorStore:
        index = faiss.read_index(str(path))
        return cls(index.d, index)


def calibrate_nprobe(
    ivf: faiss.IndexIVF, ids: np.ndarray, vectors: np.ndarray, target_recall: float, rng: np.random.Generator
) -> int:
    """The smallest nprobe (in steps of x1.5) whose recall@10 against exact search reaches the target."""
    queries = vectors[rng.choice(len(vectors), min(CALIBRATION_QUERIES, len(vectors)), replace=False)]
    noise = rng.standard_normal(queries.shape).astype(np.float32)
    noise *= QUERY_NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
    queries = queries + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, exact = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    exact = ids[exact]
    nprobe = 1
    while nprobe < ivf.nlist:
        ivf.nprobe = nprobe
        _, found = ivf.search(queries, 10)
        if recall_at_k(found, exact) >= target_recall:
            return nprobe
        nprobe = math.ceil(nprobe * 1.5)
    return ivf.nlist


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k ids found, over all queries (-1 marks an empty slot)."""
    hits = sum(len(set(f[f >= 0]) & set(e[e >= 0])) for f, e in zip(found, exact, strict=True))
    return hits / max(1, int((exact >= 0).sum()))
