"""The one interface every embedding backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Encodes questions and passages into L2-normalised float32 vectors.

    Queries and passages are encoded separately because asymmetric models
    (the e5 family) want different prefixes for each.
    """

    name: str  # recorded in a build's manifest; an index is only loaded with the same name
    dimension: int
    max_tokens: int

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Float32 rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
