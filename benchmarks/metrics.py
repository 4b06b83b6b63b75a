"""Pure metric helpers (no Keras): clustering accuracy with Hungarian matching."""

import numpy as np
from scipy.optimize import linear_sum_assignment


def contingency(y_true, y_pred):
    """Counts `C[i, j]` of samples in cluster `i` (rows) with label `j` (columns)."""
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape} vs {y_pred.shape}.")
    if y_true.size == 0:
        raise ValueError("y_true and y_pred are empty.")
    _, labels = np.unique(y_true, return_inverse=True)
    _, clusters = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    return counts


def clustering_accuracy(y_true, y_pred):
    """Accuracy of the best one-to-one mapping of clusters to labels (Hungarian).

    Clusters left without a label (more clusters than labels) count as wrong,
    as in the usual definition (e.g. Xie et al. 2016, DEC).
    """
    counts = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum()) / float(counts.sum())
