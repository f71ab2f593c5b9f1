"""Fusion functions, checked against cases worked by hand."""

import numpy as np
import pytest

from index.answering.fusion import FUSIONS, RRF_K, reciprocal_rank_fusion, weighted_sum


def test_rrf_k_is_60():
    assert RRF_K == 60


def test_rrf_sums_reciprocal_ranks_of_both_lists():
    dense = np.array([0.9, 0.1, 0.5])  # ranks 1, 3, 2
    lexical = np.array([1.0, 3.0, 2.0])  # ranks 3, 1, 2
    fused = reciprocal_rank_fusion(dense, lexical)
    expected = [1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 1 / 62 + 1 / 62]
    assert fused.dtype == np.float32
    np.testing.assert_allclose(fused, expected, rtol=1e-6)
    # 1/61 + 1/63 > 2/62: a first and a third place beat two second places.
    assert fused[0] > fused[2]


def test_rrf_agreeing_lists_keep_their_order():
    dense = np.array([0.3, 0.8, 0.1, 0.5])
    lexical = np.array([2.0, 9.0, 0.5, 4.0])
    fused = reciprocal_rank_fusion(dense, lexical)
    np.testing.assert_allclose(fused, [2 / 63, 2 / 61, 2 / 64, 2 / 62], rtol=1e-6)
    assert np.argsort(-fused).tolist() == [1, 3, 0, 2]


def test_rrf_ignores_dense_weight_and_raw_score_scale():
    dense = np.array([0.9, 0.1, 0.5])
    lexical = np.array([1.0, 3.0, 2.0])
    base = reciprocal_rank_fusion(dense, lexical)
    np.testing.assert_array_equal(reciprocal_rank_fusion(dense, lexical, dense_weight=0.9), base)
    np.testing.assert_array_equal(reciprocal_rank_fusion(dense * 100, lexical * 3), base)


def test_rrf_single_and_empty_candidates():
    np.testing.assert_allclose(reciprocal_rank_fusion(np.array([0.4]), np.array([7.0])), [2 / 61], rtol=1e-6)
    assert len(reciprocal_rank_fusion(np.zeros(0), np.zeros(0))) == 0


def test_weighted_sum_min_max_normalises_each_list():
    dense = np.array([0.2, 0.6, 1.0])  # -> 0, 0.5, 1
    lexical = np.array([10.0, 0.0, 5.0])  # -> 1, 0, 0.5
    fused = weighted_sum(dense, lexical)
    assert fused.dtype == np.float32
    np.testing.assert_allclose(fused, [0.5, 0.25, 0.75], atol=1e-6)
    np.testing.assert_allclose(weighted_sum(dense, lexical, dense_weight=0.8), [0.2, 0.4, 0.9], atol=1e-6)


def test_weighted_sum_handles_negative_cosines():
    dense = np.array([-0.5, 0.5, 0.0])  # -> 0, 1, 0.5
    lexical = np.array([4.0, 2.0, 3.0])  # -> 1, 0, 0.5
    np.testing.assert_allclose(weighted_sum(dense, lexical, dense_weight=0.25), [0.75, 0.25, 0.5], atol=1e-6)


def test_weighted_sum_all_equal_scores():
    # Equal positive scores normalise to 1, equal zero (or negative) scores to 0.
    np.testing.assert_allclose(weighted_sum(np.array([0.7, 0.7]), np.array([0.0, 0.0])), [0.5, 0.5])
    np.testing.assert_allclose(weighted_sum(np.array([0.7, 0.7]), np.array([3.0, 3.0])), [1.0, 1.0])
    np.testing.assert_allclose(weighted_sum(np.array([-0.2, -0.2]), np.array([0.0, 0.0])), [0.0, 0.0])
    # An all-equal list adds the same to every candidate, so the other list decides the order.
    fused = weighted_sum(np.array([0.7, 0.7, 0.7]), np.array([1.0, 3.0, 2.0]), dense_weight=0.5)
    np.testing.assert_allclose(fused, [0.5, 1.0, 0.75], atol=1e-6)


def test_weighted_sum_empty():
    assert len(weighted_sum(np.zeros(0), np.zeros(0))) == 0


@pytest.mark.parametrize("dense_weight", [0.0, 1.0])
def test_weighted_sum_extreme_weights_reduce_to_one_list(dense_weight):
    dense = np.array([0.1, 0.9, 0.4, 0.7, 0.2])
    lexical = np.array([5.0, 0.0, 8.0, 1.0, 3.0])
    fused = weighted_sum(dense, lexical, dense_weight=dense_weight)
    chosen = dense if dense_weight == 1.0 else lexical
    assert np.argsort(-fused, kind="stable").tolist() == np.argsort(-chosen, kind="stable").tolist()
    low, high = chosen.min(), chosen.max()
    np.testing.assert_allclose(fused, (chosen - low) / (high - low), atol=1e-6)


def test_fusions_maps_both_names():
    assert sorted(FUSIONS) == ["rrf", "weighted"]
    assert FUSIONS["rrf"] is reciprocal_rank_fusion
    assert FUSIONS["weighted"] is weighted_sum


def test_rrf_gives_no_lexical_credit_without_a_word_match():
    dense = np.array([0.9, 0.8, 0.7])
    lexical = np.array([0.0, 0.0, 2.0])
    fused = reciprocal_rank_fusion(dense, lexical)
    np.testing.assert_allclose(fused, [1 / 61, 1 / 62, 1 / 63 + 1 / 61], rtol=1e-6)
