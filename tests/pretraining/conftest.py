"""Small data for the pretraining tests: scikit-learn's digits scaled to [0, 1]."""

import functools

import numpy as np
import pytest
from sklearn.datasets import load_digits


@functools.lru_cache(maxsize=1)
def _digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int32)


@pytest.fixture
def digits():
    x, y = _digits()
    return x.copy(), y.copy()
