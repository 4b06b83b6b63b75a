"""Runs that are interrupted (SIGINT), killed (SIGKILL) or diverge lose no finished layer."""

import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tiedae.pretraining import PretrainingCheckpoint, StackedDenoisingAutoencoder
from tiedae.pretraining.interrupt import (
    PretrainingInterrupted,
    StopOnInterrupt,
    TrainingDiverged,
    graceful_interrupt,
)

CONFIG = dict(layer_sizes=[12, 6], epochs=2, batch_size=50, seed=7, verbose=0)


def _data(digits):
    x, _ = digits
    return x[:300]


def _weights(sda):
    return [keras.ops.convert_to_numpy(v) for v in sda.autoencoder_.weights]


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for left, right in zip(a, b):
        np.testing.assert_allclose(left, right, rtol=1e-6, atol=1e-6)


class AtBatch(keras.callbacks.Callback):
    """Calls `action()` at the end of batch `batch` of greedy layer `layer` (0-based)."""

    def __init__(self, layer, batch, action):
        super().__init__()
        self.layer, self.batch, self.action = layer, batch, action

    def on_train_batch_end(self, batch, logs=None):
        if self.model.name == f"greedy_layer_{self.layer}" and batch == self.batch:
            self.action()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from tests.conftest import digits_scaled

    x = digits_scaled()[0][:300]
    sda = StackedDenoisingAutoencoder(**CONFIG).pretrain(x, run_dir=tmp_path_factory.mktemp("full"))
    return _weights(sda)


def test_sigint_stops_after_the_batch_keeps_finished_layers_and_resumes_exactly(digits, tmp_path, uninterrupted):
    x = _data(digits)
    ctrl_c = AtBatch(layer=1, batch=1, action=lambda: signal.raise_signal(signal.SIGINT))
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when run as a background job
    with graceful_interrupt(), pytest.raises(PretrainingInterrupted):
        StackedDenoisingAutoencoder(**CONFIG).pretrain(x, run_dir=tmp_path, callbacks=[ctrl_c, StopOnInterrupt()])
    assert PretrainingCheckpoint(tmp_path).read_manifest()["completed_layers"] == 1
    assert signal.getsignal(signal.SIGINT) == handler_before  # handler restored

    resumed = StackedDenoisingAutoencoder(**CONFIG).pretrain(x, run_dir=tmp_path, resume=True)
    _assert_same_weights(_weights(resumed), uninterrupted)


def test_divergence_names_layer_and_epoch_and_saves_no_diverged_layer(digits, tmp_path):
    x = _data(digits)
    sda = StackedDenoisingAutoencoder(
        [8, 4], activation="relu", loss="mse", optimizer="sgd", learning_rate=1e30, epochs=2,
        batch_size=50, seed=0, verbose=0,
    )
    with pytest.raises(TrainingDiverged, match=r"layer 1 diverged: the loss became (nan|inf) in epoch 1"):
        sda.pretrain(x, run_dir=tmp_path / "bad")  # StopOnDivergence is always on
    manifest = PretrainingCheckpoint(tmp_path / "bad").read_manifest()
    assert manifest["completed_layers"] == 0  # the diverged layer was not recorded
    assert not (PretrainingCheckpoint(tmp_path / "bad").layer_path(0)).exists()


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import keras, numpy as np
    from sklearn.datasets import load_digits
    from tiedae.pretraining import StackedDenoisingAutoencoder

    run_dir, layer, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    x = (load_digits().data[:300] / 16.0).astype(np.float32)

    class Kill(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if batch < 0 and self.model.name == f"greedy_layer_{layer}":
                os.kill(os.getpid(), signal.SIGKILL)  # between layers: layer-1 checkpoint written
        def on_train_batch_end(self, b, logs=None):
            if self.model.name == f"greedy_layer_{layer}" and b == batch:
                os.kill(os.getpid(), signal.SIGKILL)  # in the middle of a layer

    StackedDenoisingAutoencoder(**CONFIG).pretrain(x, run_dir=run_dir, callbacks=[Kill()])
    """
).replace("**CONFIG", ", ".join(f"{k}={v!r}" for k, v in CONFIG.items()))


@pytest.mark.parametrize("layer, batch", [(0, 2), (1, -1), (1, 3)], ids=["mid-layer-1", "between-layers", "mid-layer-2"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(digits, tmp_path, uninterrupted, layer, batch):
    x = _data(digits)
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path), str(layer), str(batch)],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    manifest = PretrainingCheckpoint(tmp_path).read_manifest()
    assert manifest["completed_layers"] == layer
    assert not [p for p in os.listdir(PretrainingCheckpoint(tmp_path).directory) if ".tmp" in p]

    resumed = StackedDenoisingAutoencoder(**CONFIG).pretrain(x, run_dir=tmp_path, resume=True)
    _assert_same_weights(_weights(resumed), uninterrupted)
