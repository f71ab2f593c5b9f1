"""Fusing dense and lexical scores of one candidate set; pure functions picked by name."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RRF_K = 60


def reciprocal_rank_fusion(dense: np.ndarray, lexical: np.ndarray, *, dense_weight: float = 0.5) -> np.ndarray:
    """Sum of 1 / (k + rank) over both rankings of the candidates (ranks from 1).

    A candidate that matches no word of the query (BM25 score 0) is not in
    the lexical ranking at all, so it earns no lexical credit.
    """
    del dense_weight  # RRF weighs both lists alike
    lexical_credit = np.where(lexical > 0, 1.0 / (RRF_K + _ranks(lexical)), 0.0)
    return (1.0 / (RRF_K + _ranks(dense)) + lexical_credit).astype(np.float32)


def weighted_sum(dense: np.ndarray, lexical: np.ndarray, *, dense_weight: float = 0.5) -> np.ndarray:
    """Convex combination of min-max normalised scores."""
    return (dense_weight * min_max(dense) + (1.0 - dense_weight) * min_max(lexical)).astype(np.float32)


def _ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def min_max(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return scores
    low, high = scores.min(), scores.max()
    if high - low < 1e-9:
        return np.where(high > 0, 1.0, 0.0) * np.ones_like(scores)
    return (scores - low) / (high - low)


FUSIONS: dict[str, Callable[..., np.ndarray]] = {"rrf": reciprocal_rank_fusion, "weighted": weighted_sum}
