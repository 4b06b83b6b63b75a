"""Checkpoints after every layer, atomic writes, and resume == uninterrupted run."""

import json
import os

import keras
import numpy as np
import pytest

from tests.conftest import to_numpy
from tiedae.pretraining import PretrainingCheckpoint, StackedDenoisingAutoencoder
from tiedae.io import atomic as atomic_module
from tiedae.io.atomic import save_npz

CONFIG = dict(layer_sizes=[16, 8, 4], epochs=2, batch_size=64, corruption_level=0.25, verbose=0)
# Exact equality: on CPU, the same seeds give bit-identical training on all
# three backends, so a resumed run must match to the last bit.


class Interrupted(Exception):
    pass


class InterruptAtLayer(keras.callbacks.Callback):
    """Raises as soon as training of layer `layer` begins (counting `fit` calls)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.fits = 0

    def on_train_begin(self, logs=None):
        if self.fits == self.layer:
            raise Interrupted(f"stopped at layer {self.layer}")
        self.fits += 1


class CountFits(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.fits = 0

    def on_train_begin(self, logs=None):
        self.fits += 1


def interrupt_at_layer(layer, x, config, run_dir):
    """Pretrain until `layer` starts, then interrupt: the earlier layers are checkpointed."""
    with pytest.raises(Interrupted):
        StackedDenoisingAutoencoder(**config).pretrain(
            x, run_dir=run_dir, callbacks=[InterruptAtLayer(layer)]
        )


def weights(sda):
    return [to_numpy(v) for v in sda.autoencoder_.weights]


def test_resume_after_an_interruption_equals_an_uninterrupted_run(digits, tmp_path):
    x = digits[0][:256]
    config = dict(CONFIG, layer_sizes=[16, 8, 4], epochs=[1, 1, 2], seed=11, finetune_epochs=1)
    reference = StackedDenoisingAutoencoder(**config).pretrain(x, run_dir=tmp_path / "a")

    # Interrupted while starting layer 2: layers 0 and 1 are on disk.
    interrupt_at_layer(2, x, config, tmp_path / "b")
    manifest = PretrainingCheckpoint(tmp_path / "b").read_manifest()
    assert manifest["completed_layers"] == 2
    assert manifest["history"] == reference.history_[:2]
    assert sorted(os.listdir(tmp_path / "b" / "checkpoint")) == [
        "layer_0.weights.npz", "layer_1.weights.npz", "manifest.json"
    ]

    counter = CountFits()
    resumed = StackedDenoisingAutoencoder(**config).pretrain(
        x, run_dir=tmp_path / "b", resume=True, callbacks=[counter]
    )
    # Only layer 2 and the fine-tuning trained again.
    assert counter.fits == 2
    assert resumed.history_ == reference.history_
    assert resumed.finetune_history_ == reference.finetune_history_
    for a, b in zip(weights(resumed), weights(reference)):
        np.testing.assert_array_equal(a, b)

    # Resuming a finished run trains nothing and restores the same (fine-tuned) weights.
    counter = CountFits()
    again = StackedDenoisingAutoencoder(**config).pretrain(
        x, run_dir=tmp_path / "b", resume=True, callbacks=[counter]
    )
    assert counter.fits == 0
    for a, b in zip(weights(again), weights(resumed)):
        np.testing.assert_array_equal(a, b)


def test_resume_without_a_seed_reuses_the_recorded_one(digits, tmp_path):
    x = digits[0][:128]
    config = dict(CONFIG, layer_sizes=[8, 4], epochs=1)
    interrupt_at_layer(1, x, config, tmp_path)
    seed = PretrainingCheckpoint(tmp_path).read_manifest()["seed"]
    resumed = StackedDenoisingAutoencoder(**config).pretrain(x, run_dir=tmp_path, resume=True)
    assert resumed.seed_ == seed
    reference = StackedDenoisingAutoencoder(**dict(config, seed=seed)).pretrain(x)
    for a, b in zip(weights(resumed), weights(reference)):
        np.testing.assert_array_equal(a, b)


def test_resume_refuses_a_different_config_or_data(digits, tmp_path):
    x = digits[0][:128]
    config = dict(CONFIG, layer_sizes=[8, 4], epochs=1, seed=0)
    interrupt_at_layer(1, x, config, tmp_path)
    with pytest.raises(ValueError, match=r"configuration differs \(corruption_level: checkpoint 0.25 vs now 0.5"):
        StackedDenoisingAutoencoder(**dict(config, corruption_level=0.5)).pretrain(
            x, run_dir=tmp_path, resume=True
        )
    with pytest.raises(ValueError, match="data differ"):
        StackedDenoisingAutoencoder(**config).pretrain(x[::-1], run_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="pass resume=True"):
        StackedDenoisingAutoencoder(**config).pretrain(x, run_dir=tmp_path)
    with pytest.raises(ValueError, match="needs the `run_dir`"):
        StackedDenoisingAutoencoder(**config).pretrain(x, resume=True)
    # verbose does not change the result, so it may differ.
    StackedDenoisingAutoencoder(**dict(config, verbose=2)).pretrain(
        x, run_dir=tmp_path, resume=True
    )
    assert PretrainingCheckpoint(tmp_path).read_manifest()["completed_layers"] == 2


def test_a_checkpoint_older_than_an_option_resumes_under_its_default(digits, tmp_path):
    x = digits[0][:128]
    config = dict(CONFIG, layer_sizes=[8, 4], epochs=1, seed=0)
    interrupt_at_layer(1, x, config, tmp_path)
    # A manifest written before these options existed.
    path = tmp_path / "checkpoint" / "manifest.json"
    manifest = json.loads(path.read_text())
    for key in StackedDenoisingAutoencoder.LATER_OPTIONS:
        del manifest["config"][key]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"reconstruction_activation: checkpoint 'auto' vs now 'linear'"):
        StackedDenoisingAutoencoder(**dict(config, reconstruction_activation="linear")).pretrain(
            x, run_dir=tmp_path, resume=True
        )
    resumed = StackedDenoisingAutoencoder(**config).pretrain(x, run_dir=tmp_path, resume=True)
    assert len(resumed.history_) == 2
    assert PretrainingCheckpoint(tmp_path).read_manifest()["completed_layers"] == 2


def test_resume_on_an_empty_run_dir_starts_a_new_run(digits, tmp_path):
    x = digits[0][:64]
    sda = StackedDenoisingAutoencoder(**dict(CONFIG, layer_sizes=[4], epochs=1, seed=0))
    sda.pretrain(x, run_dir=tmp_path / "new", resume=True)
    manifest = json.loads((tmp_path / "new" / "checkpoint" / "manifest.json").read_text())
    assert manifest["completed_layers"] == 1 and manifest["seed"] == 0
    assert manifest["losses"] == ["binary_crossentropy"]
    assert manifest["history"] == sda.history_
    with np.load(tmp_path / "new" / "checkpoint" / "layer_0.weights.npz") as layer:
        np.testing.assert_array_equal(layer["kernel"], to_numpy(sda.autoencoder_.kernels[0]))
        np.testing.assert_array_equal(
            layer["decoder_bias"], to_numpy(sda.autoencoder_.decoder_biases[0])
        )


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "layer_0.weights.npz"
    save_npz(path, {"kernel": np.ones(3)})

    def broken_savez(file, **arrays):
        file.write(b"half a file")  # an open handle on the temporary file
        raise OSError("disk full")

    monkeypatch.setattr(atomic_module.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_npz(path, {"kernel": np.zeros(3)})
    assert os.listdir(tmp_path) == ["layer_0.weights.npz"]
    with np.load(path) as data:
        np.testing.assert_array_equal(data["kernel"], np.ones(3))


def test_a_damaged_checkpoint_is_reported(digits, tmp_path):
    x = digits[0][:64]
    config = dict(CONFIG, layer_sizes=[4, 2], epochs=1, seed=0)
    interrupt_at_layer(1, x, config, tmp_path)
    os.remove(tmp_path / "checkpoint" / "layer_0.weights.npz")
    with pytest.raises(ValueError, match="missing.*damaged"):
        StackedDenoisingAutoencoder(**config).pretrain(x, run_dir=tmp_path, resume=True)
