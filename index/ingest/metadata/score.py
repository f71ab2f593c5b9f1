"""Precision and recall of extracted fields against expected values, for the fixtures test and the benchmark.

A scalar field scores one hit when it equals the expectation, a false alarm when it holds anything else, and a
miss when an expected value was not produced; a tuple field (issuers, repeals) scores each item the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from index.ingest.metadata.fields import TUPLE_FIELDS, DocumentMetadata

logger = logging.getLogger(__name__)

DATE_FIELDS = ("written_date", "published_date", "effective_date", "expiry_date")


@dataclass
class FieldScore:
    hits: int = 0
    false_alarms: int = 0
    misses: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        produced = self.hits + self.false_alarms
        return self.hits / produced if produced else 1.0

    @property
    def recall(self) -> float:
        expected = self.hits + self.misses
        return self.hits / expected if expected else 1.0

    def summary(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "hits": self.hits,
            "false_alarms": self.false_alarms,
            "misses": self.misses,
        }


def _as_set(value: Any) -> set[str]:
    if value is None:
        return set()
    return {value} if isinstance(value, str) else set(value)


def score_document(
    scores: dict[str, FieldScore], meta: DocumentMetadata, expected: Mapping[str, Any], *, label: str
) -> None:
    """Add one document's outcome to ``scores``; fields absent from ``expected`` are not scored."""
    for name, wanted in expected.items():
        if not hasattr(meta, name):
            continue
        got = set(meta.values(name)) if name in TUPLE_FIELDS else _as_set(meta.value(name))
        want = _as_set(wanted)
        for key in (name, "date") if name in DATE_FIELDS else (name,):
            score = scores.setdefault(key, FieldScore())
            score.hits += len(got & want)
            score.false_alarms += len(got - want)
            score.misses += len(want - got)
            if got != want and key == name:
                score.examples.append({"document": label, "expected": sorted(want), "extracted": sorted(got)})


def score_all(results: Iterable[tuple[str, DocumentMetadata, Mapping[str, Any]]]) -> dict[str, FieldScore]:
    scores: dict[str, FieldScore] = {}
    for label, meta, expected in results:
        score_document(scores, meta, expected, label=label)
    return scores
