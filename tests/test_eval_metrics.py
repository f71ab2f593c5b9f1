"""Metric functions against hand-worked cases and against trec_eval (pytrec_eval)."""

from __future__ import annotations

import math
import random

import pytest

from index.quality.metrics import distinct, hit_at, mean, ndcg_at, percentile, precision_recall, reciprocal_rank

QRELS = {"d1": 2, "d2": 1, "d3": 0}
RANKING = ["d3", "d1", "d4", "d2"]


def test_hit_at_counts_only_graded_documents():
    assert hit_at(RANKING, QRELS, 1) == 0.0  # d3 is judged, but not relevant
    assert hit_at(RANKING, QRELS, 2) == 1.0
    assert hit_at([], QRELS, 5) == 0.0


def test_reciprocal_rank_by_hand():
    assert reciprocal_rank(RANKING, QRELS) == 0.5
    assert reciprocal_rank(["x"] * 10 + ["d1"], QRELS, k=10) == 0.0


def test_ndcg_by_hand():
    # DCG = 0/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5); ideal = 2/log2(2) + 1/log2(3)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 2 / 1 + 1 / math.log2(3)
    assert ndcg_at(RANKING, QRELS, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at(["d1", "d2"], QRELS, 10) == pytest.approx(1.0)
    assert ndcg_at(RANKING, {}, 10) == 0.0


def test_distinct_keeps_first_occurrences():
    assert distinct(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_precision_recall_and_undefined_cases():
    assert precision_recall([True, True, False, False], [True, False, True, False]) == (0.5, 0.5)
    precision, recall = precision_recall([False, False], [False, False])
    assert math.isnan(precision) and math.isnan(recall)


def test_mean_and_percentile_of_nothing_are_nan():
    assert math.isnan(mean([])) and math.isnan(percentile([], 50))
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5


def test_agree_with_trec_eval_on_random_runs():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    documents = [f"d{i}" for i in range(30)]
    qrels, runs = {}, {}
    for q in range(40):
        judged = rng.sample(documents, 8)
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        ranked = rng.sample(documents, 15)
        runs[f"q{q}"] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)}
    measures = {"ndcg_cut_10", "recip_rank", "success_1", "success_5"}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(runs)
    for q, scores in runs.items():
        ranking = sorted(scores, key=scores.get, reverse=True)
        expected = reference[q]
        assert ndcg_at(ranking, qrels[q], 10) == pytest.approx(expected["ndcg_cut_10"], abs=1e-9)
        assert hit_at(ranking, qrels[q], 1) == expected["success_1"]
        assert hit_at(ranking, qrels[q], 5) == expected["success_5"]
        # trec_eval's recip_rank has no cut-off; ours stops at 10.
        ours = reciprocal_rank(ranking, qrels[q], k=len(ranking))
        assert ours == pytest.approx(expected["recip_rank"], abs=1e-9)
