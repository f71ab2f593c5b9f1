"""What every vector store returns and accepts: hits best first, and rows checked before they are added."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class VectorHits(NamedTuple):
    ids: np.ndarray  # int64, best first
    scores: np.ndarray  # float32 cosine similarities


def checked_rows(ids: np.ndarray, vectors: np.ndarray, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ids, float32 matrix) of rows to add; ValueError unless they are ids.shape == (n,) and (n, dimension)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise ValueError(f"expected vectors of dimension {dimension}, got {vectors.shape}")
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if ids.shape != (len(vectors),):
        raise ValueError(f"expected {len(vectors)} ids, got shape {ids.shape}")
    return ids, vectors
