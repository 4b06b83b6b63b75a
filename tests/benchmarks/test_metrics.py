"""The benchmarks' clustering accuracy against hand-computed cases (no timing)."""

import numpy as np
import pytest

from benchmarks.metrics import clustering_accuracy, contingency


def test_permuted_clusters_score_one():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_accuracy(y, np.array([2, 2, 0, 0, 1, 1])) == 1.0


def test_hand_computed_case():
    # Cluster 0 holds labels {0, 0, 1}, cluster 1 holds {1, 1, 0}, cluster 2 holds {2, 0}.
    # Best matching: 0->0 (2), 1->1 (2), 2->2 (1): 5 correct of 8.
    y_true = np.array([0, 0, 1, 1, 1, 0, 2, 0])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(contingency(y_true, y_pred), [[2, 1, 0], [1, 2, 0], [1, 0, 1]])
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(5 / 8)


def test_matching_is_one_to_one_not_majority_vote():
    y_true = np.array([0, 0, 0, 1, 0])
    y_pred = np.array([0, 0, 1, 1, 1])
    # Majority vote: 4/5; one-to-one: cluster 0->0 (2) + cluster 1->1 (1) = 3/5.
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(3 / 5)


def test_extra_clusters_count_as_errors():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 2, 3])
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(2 / 4)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        clustering_accuracy([0, 1], [0])
