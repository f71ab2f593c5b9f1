"""Small retrieval and answer metrics, each a pure function."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def hit_at(relevant: Sequence[bool], k: int) -> float:
    """1.0 when one of the first k results is relevant."""
    return float(any(relevant[:k]))


def reciprocal_rank(relevant: Sequence[bool], k: int = 10) -> float:
    for rank, is_relevant in enumerate(relevant[:k], start=1):
        if is_relevant:
            return 1.0 / rank
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float, float]:
    """Precision and recall of the positive class (here: 'abstain')."""
    true_positive = sum(p and a for p, a in zip(predicted, actual, strict=True))
    predicted_positive, actual_positive = sum(predicted), sum(actual)
    precision = true_positive / predicted_positive if predicted_positive else 1.0
    recall = true_positive / actual_positive if actual_positive else 1.0
    return precision, recall
