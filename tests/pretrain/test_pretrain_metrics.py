"""AUC / AP / rank metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mdr_graph.pretrain import metrics as M


def test_auc_and_ap_match_hand_computed_values():
    # Positives score 0.35 and 0.8, negatives 0.1 and 0.4: of the 4 (pos, neg) pairs, 3 are ordered right.
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert M.roc_auc(y, s) == pytest.approx(0.75)
    # Ranked: 0.8(+) P=1 R=.5 ; 0.4(-) ; 0.35(+) P=2/3 R=1  ->  AP = .5*1 + .5*2/3
    assert M.average_precision(y, s) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_ties_count_half_and_form_one_precision_step():
    assert M.roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert M.roc_auc([1, 1, 0, 0], [1, 1, 1, 1]) == pytest.approx(0.5)
    # All scores tied: one threshold, precision 2/4 at recall 1.
    assert M.average_precision([1, 1, 0, 0], [3, 3, 3, 3]) == pytest.approx(0.5)
    # pos=2, neg=1 tied with a pos: pairs (p2>n)=1, (p1 vs n) tie=.5 -> 1.5/2
    assert M.roc_auc([1, 1, 0], [0.2, 0.9, 0.2]) == pytest.approx(0.75)


def test_perfect_and_reversed_rankings():
    y = np.array([1, 1, 1, 0, 0])
    s = np.array([5.0, 4, 3, 2, 1])
    assert M.roc_auc(y, s) == 1.0 and M.average_precision(y, s) == 1.0
    assert M.roc_auc(y, -s) == 0.0
    # Reversed: positives at ranks 3,4,5 -> precisions 1/3, 2/4, 3/5 each with recall step 1/3.
    assert M.average_precision(y, -s) == pytest.approx((1 / 3 + 2 / 4 + 3 / 5) / 3)


def test_single_class_gives_nan_and_bad_labels_raise():
    assert math.isnan(M.roc_auc([1, 1], [0.1, 0.2]))
    assert math.isnan(M.average_precision([0, 0], [0.1, 0.2]))
    with pytest.raises(ValueError):
        M.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        M.roc_auc([0, 1, 1], [0.1, 0.2])


def test_average_ranks_share_ties():
    np.testing.assert_allclose(M.average_ranks(np.array([10, 20, 10, 30])), [1.5, 3, 1.5, 4])


def test_true_item_ranks_average_ties_and_summary():
    scores = np.array([[0.9, 0.1, 0.5],     # true item 0 is best -> rank 1
                       [0.2, 0.2, 0.2],     # all tied -> (3+1)/2 = 2
                       [0.3, 0.7, 0.1]])    # true item 2 is worst -> rank 3
    ranks = M.true_item_ranks(scores, np.array([0, 1, 2]))
    np.testing.assert_allclose(ranks, [1, 2, 3])
    summary = M.rank_summary(ranks, ks=(1, 2))
    assert summary["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert summary["hits_at_1"] == pytest.approx(1 / 3) and summary["hits_at_2"] == pytest.approx(2 / 3)


def test_link_metrics_mse_is_on_probabilities():
    m = M.link_metrics([1, 0], [0.0, 0.0])  # sigmoid(0) = .5 for both
    assert m["mse"] == pytest.approx(0.25) and m["auc"] == pytest.approx(0.5)
