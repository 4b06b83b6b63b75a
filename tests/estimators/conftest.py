"""Small data for these tests (scikit-learn's digits scaled to [0, 1]) and a torch setting."""

import functools

import keras
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


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These tests train on tiny tensors: with PyTorch, a thread pool on 2 shared
    cores costs far more in synchronisation than it saves, so use one thread here
    (and restore the setting afterwards)."""
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
