"""Shared test set-up. The backend comes from KERAS_BACKEND (`make test` runs each)."""

import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# precision="auto" (the CLI's default) sees no bfloat16 engine in tests, whatever the CI
# machine (AMX or not): the same float32 numbers everywhere. tests/test_precision.py opts in.
os.environ["TIEDAE_BF16_ENGINE"] = "none"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

BACKEND = keras.backend.backend()


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}"


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with the same seeds, float32 policy and no leftover names."""
    keras.utils.set_random_seed(1234)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session(free_memory=False)  # a full gc per test costs ~0.4 s


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def np_soft_assignment(z, centres, alpha=1.0):
    """DEC's q_ij = (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha + 1) / 2), normalised over j (NumPy)."""
    z = np.asarray(z, np.float64)
    centres = np.asarray(centres, np.float64)
    squared = ((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1)
    kernel = (1.0 + squared / alpha) ** (-(alpha + 1.0) / 2.0)
    return kernel / kernel.sum(axis=1, keepdims=True)


@functools.lru_cache(maxsize=1)
def digits_scaled():
    """scikit-learn's digits (1,797 x 64) scaled to [0, 1], with their labels."""
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int32)


@pytest.fixture
def digits():
    x, y = digits_scaled()
    return x.copy(), y.copy()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The tests train on tiny tensors: with PyTorch, a thread pool on 2 shared
    cores costs far more in synchronisation than it saves, so use one thread
    (and restore the setting afterwards)."""
    if BACKEND != "torch":
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
