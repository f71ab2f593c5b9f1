"""Small retrieval and answer metrics, each a pure function.

Rankings are lists of ids, best first; relevance is a mapping id -> grade
(grade > 0 is relevant), as in TREC qrels.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np


def hit_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """1.0 when one of the first k results is relevant."""
    return float(any(relevant.get(item, 0) > 0 for item in ranking[:k]))


def reciprocal_rank(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    for rank, item in enumerate(ranking[:k], start=1):
        if relevant.get(item, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Normalised DCG with linear gains (grade / log2(rank + 1)), as trec_eval's ndcg_cut."""
    dcg = sum(relevant.get(item, 0) / math.log2(rank + 1) for rank, item in enumerate(ranking[:k], start=1))
    ideal_grades = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal_grades, start=1))
    return dcg / ideal if ideal > 0 else 0.0


def distinct(items: Sequence[str]) -> list[str]:
    """First occurrences, in order: passages of one document rank the document once."""
    return list(dict.fromkeys(items))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float, float]:
    """Precision and recall of the positive class (here: 'abstain'); NaN where undefined."""
    true_positive = sum(p and a for p, a in zip(predicted, actual, strict=True))
    predicted_positive, actual_positive = sum(predicted), sum(actual)
    precision = true_positive / predicted_positive if predicted_positive else float("nan")
    recall = true_positive / actual_positive if actual_positive else float("nan")
    return precision, recall


def char_f1(predicted: str, gold: str) -> float:
    """Character-level F1 of two strings (SQuAD's token F1 with characters as the tokens of Chinese)."""
    predicted, gold = "".join(predicted.split()), "".join(gold.split())
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def best_char_f1(predicted: str | None, golds: Sequence[str]) -> float:
    """The F1 against the closest of several acceptable answers; 0 when nothing was predicted."""
    if not predicted or not golds:
        return 0.0
    return max(char_f1(predicted, gold) for gold in golds)


class ReliabilityBin(NamedTuple):
    low: float
    high: float
    count: int
    mean_confidence: float
    accuracy: float  # the share of its predictions that came true


def reliability_bins(confidences: Sequence[float], outcomes: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """The non-empty bins of ``bins`` equal-width bins over [0, 1], lowest first.

    Bin i holds the confidences c with i / bins <= c < (i + 1) / bins (the last one 1.0 too).
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    if len(confidences) != len(outcomes):
        raise ValueError(f"{len(confidences)} confidences but {len(outcomes)} outcomes")
    if not all(0.0 <= c <= 1.0 for c in confidences):  # NaN fails this too
        raise ValueError("confidences must lie in [0, 1]")
    members: dict[int, list[int]] = {}
    for i, c in enumerate(confidences):
        members.setdefault(min(int(c * bins), bins - 1), []).append(i)
    return [
        ReliabilityBin(
            b / bins,
            (b + 1) / bins,
            len(rows),
            float(np.mean([confidences[i] for i in rows])),
            float(np.mean([float(outcomes[i]) for i in rows])),
        )
        for b, rows in sorted(members.items())
    ]


def expected_calibration_error(
    confidences: Sequence[float], outcomes: Sequence[bool], bins: int = 10, weights: Sequence[float] | None = None
) -> float:
    """ECE: the gap between mean confidence and accuracy in each bin, weighted by the bin's share; NaN when empty.

    ``weights`` count each question as that many (a mix reweighted to another share of unanswerable ones).
    """
    if weights is not None:
        return _weighted_calibration_error(
            np.asarray(confidences), np.asarray(outcomes, float), np.asarray(weights), bins
        )
    table = reliability_bins(confidences, outcomes, bins)
    total = sum(b.count for b in table)
    if not total:
        return float("nan")
    return sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in table)


def _weighted_calibration_error(confidences: np.ndarray, outcomes: np.ndarray, weights: np.ndarray, bins: int) -> float:
    if not len(confidences) or weights.sum() <= 0:
        return float("nan")
    members = np.minimum((confidences * bins).astype(int), bins - 1)
    error = 0.0
    for b in np.unique(members):
        w = weights[members == b]
        gap = np.average(outcomes[members == b], weights=w) - np.average(confidences[members == b], weights=w)
        error += w.sum() / weights.sum() * abs(gap)
    return float(error)
