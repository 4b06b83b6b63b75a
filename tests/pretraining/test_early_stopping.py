"""Early stopping: the best epoch's weights are kept, epochs run are recorded, resume still matches."""

import json

import keras
import numpy as np
import pytest

from tests.conftest import to_numpy
from tiedae.pretraining import PretrainingCheckpoint, StackedDenoisingAutoencoder
from tiedae.pretraining.early_stopping import BestEpochStopping, validation_rows

from tests.pretraining.test_checkpoint import CountFits, interrupt_at_layer, weights

CONFIG = dict(layer_sizes=[16, 8], batch_size=64, corruption_level=0.25, verbose=0, seed=3)


class RecordWeights(keras.callbacks.Callback):
    """Keeps a copy of the model's weights at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.per_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.per_epoch.append([np.array(w) for w in self.model.get_weights()])


def reference_stopping(val_loss, patience, tol, mode="min"):
    """(epochs run, epoch kept) by the rule, in NumPy terms: an epoch improves when its loss is
    below the best so far minus tol (with mode="max": its score above the best plus tol); stop
    once `patience` epochs in a row did not."""
    sign = 1.0 if mode == "min" else -1.0
    best, kept, wait = np.inf, 0, 0
    for epoch, value in enumerate(val_loss, start=1):
        if sign * value < best - tol:
            best, kept, wait = sign * value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, kept
    return len(val_loss), kept


def test_the_callback_restores_the_best_epoch_and_records_it():
    # A scripted validation loss: best at epoch 3, then three epochs without improvement.
    losses = [1.0, 0.8, 0.5, 0.6, 0.55, 0.7, 0.4]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    record = RecordWeights()

    class ScriptedValLoss(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = losses[epoch]

    stopper = BestEpochStopping(patience=3)
    x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    history = model.fit(x, x[:, :1], epochs=len(losses), verbose=0,
                        callbacks=[record, ScriptedValLoss(), stopper])
    assert len(history.history["loss"]) == 6  # stopped after epoch 6, never saw 0.4
    assert stopper.best_epoch_ == 3 and stopper.stopped_ and stopper.best_ == 0.5
    for kept, best in zip(model.get_weights(), record.per_epoch[2]):
        np.testing.assert_array_equal(kept, best)
    assert stopper.summary(6) == {"epochs_run": 6, "best_epoch": 3, "stopped_early": True}


def test_the_callback_maximises_a_score_and_keeps_the_first_of_equal_ones():
    scores = [0.5, 0.7, 0.7, 0.69, 0.7, 0.9]  # ties with the best are no improvement
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")

    class ScriptedScore(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_accuracy"] = scores[epoch]

    stopper = BestEpochStopping(patience=3, monitor="val_accuracy", mode="max")
    x = np.zeros((8, 2), "float32")
    history = model.fit(x, x[:, :1], epochs=len(scores), verbose=0,
                        callbacks=[ScriptedScore(), stopper])
    assert len(history.history["loss"]) == 5 and stopper.best_epoch_ == 2
    assert (5, 2) == reference_stopping(scores, patience=3, tol=0.0, mode="max")
    with pytest.raises(ValueError, match="'min' or 'max'"):
        BestEpochStopping(3, mode="up")


def test_the_callback_refuses_to_run_without_the_monitored_loss():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 2), "float32")
    with pytest.raises(ValueError, match="pass validation data"):
        model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[BestEpochStopping(2)])


def test_stacked_layers_stop_early_and_keep_the_best_validation_epoch(digits):
    x = digits[0][:600]
    sda = StackedDenoisingAutoencoder(
        **CONFIG, epochs=200, early_stopping=True, n_iter_no_change=2, tol=1e-3,
        finetune_epochs=200,
    ).pretrain(x)
    assert len(sda.n_iter_) == 2 and len(sda.best_epoch_) == 2
    for history, run, best in zip(sda.history_, sda.n_iter_, sda.best_epoch_):
        assert run == len(history["loss"]) == len(history["val_loss"]) < 200
        assert (run, best) == reference_stopping(history["val_loss"], patience=2, tol=1e-3)
    assert sda.finetune_n_iter_ == len(sda.finetune_history_["loss"]) < 200
    assert sda.finetune_n_iter_ - sda.finetune_best_epoch_ == 2


def test_held_out_rows_are_not_trained_on(digits):
    """Without validation_data, a seeded validation_fraction of x is held out (and the
    stack trains on the rest): the same as passing those rows explicitly."""
    x = digits[0][:300]
    config = dict(CONFIG, epochs=3, early_stopping=True, n_iter_no_change=5, validation_fraction=0.2)
    auto = StackedDenoisingAutoencoder(**config).pretrain(x)
    train, val = validation_rows(300, 0.2, seed=CONFIG["seed"])
    assert len(val) == 60 and len(np.intersect1d(train, val)) == 0
    explicit = StackedDenoisingAutoencoder(**config).pretrain(x[train], validation_data=x[val])
    assert auto.history_ == explicit.history_
    for a, b in zip(weights(auto), weights(explicit)):
        np.testing.assert_array_equal(a, b)


def test_without_early_stopping_every_epoch_runs_and_the_last_is_kept(digits):
    sda = StackedDenoisingAutoencoder(**CONFIG, epochs=[2, 3]).pretrain(digits[0][:128])
    assert sda.n_iter_ == [2, 3] and sda.best_epoch_ == [2, 3]
    assert sda.finetune_n_iter_ is None


def test_resume_with_early_stopping_equals_an_uninterrupted_run(digits, tmp_path):
    x = digits[0][:400]
    config = dict(CONFIG, layer_sizes=[16, 8, 4], epochs=40, early_stopping=True,
                  n_iter_no_change=2, tol=1e-3, finetune_epochs=30)
    reference = StackedDenoisingAutoencoder(**config).pretrain(x, run_dir=tmp_path / "a")
    interrupt_at_layer(2, x, config, tmp_path / "b")
    manifest = PretrainingCheckpoint(tmp_path / "b").read_manifest()
    assert [s["epochs_run"] for s in manifest["stopping"]] == reference.n_iter_[:2]
    counter = CountFits()
    resumed = StackedDenoisingAutoencoder(**config).pretrain(
        x, run_dir=tmp_path / "b", resume=True, callbacks=[counter]
    )
    assert counter.fits == 2  # layer 2 and the fine-tuning
    assert resumed.history_ == reference.history_
    assert resumed.n_iter_ == reference.n_iter_ and resumed.best_epoch_ == reference.best_epoch_
    assert resumed.finetune_best_epoch_ == reference.finetune_best_epoch_
    for a, b in zip(weights(resumed), weights(reference)):
        np.testing.assert_array_equal(a, b)


def test_save_and_load_keep_the_stopping_record(digits, tmp_path):
    sda = StackedDenoisingAutoencoder(
        **CONFIG, epochs=30, early_stopping=True, n_iter_no_change=2, tol=1e-3
    ).pretrain(digits[0][:300])
    sda.save(tmp_path / "s.keras")
    loaded = StackedDenoisingAutoencoder.load(tmp_path / "s.keras")
    assert loaded.n_iter_ == sda.n_iter_ and loaded.best_epoch_ == sda.best_epoch_
    assert loaded.get_config()["early_stopping"] is True
    np.testing.assert_array_equal(loaded.transform(digits[0][:10]), sda.transform(digits[0][:10]))


def test_streamed_data_needs_explicit_validation_data(digits, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, digits[0][:200])
    x = np.load(path, mmap_mode="r")
    sda = StackedDenoisingAutoencoder(**CONFIG, epochs=2, early_stopping=True)
    with pytest.raises(ValueError, match="needs validation_data"):
        sda.pretrain(x)
    sda.pretrain(x, validation_data=digits[0][200:260])
    assert sda.n_iter_ == [2, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_iter_no_change=0), "n_iter_no_change"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(validation_fraction=0.0), "validation_fraction"),
        (dict(tol=-1.0), "tol"),
        (dict(early_stopping="yes"), "early_stopping"),
    ],
)
def test_bad_early_stopping_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StackedDenoisingAutoencoder([4], **kwargs)


def test_a_fraction_that_leaves_a_side_empty_is_refused():
    with pytest.raises(ValueError, match="leaves no validation rows"):
        validation_rows(5, 0.05, seed=0)
    with pytest.raises(ValueError, match="leaves no training rows"):
        validation_rows(2, 0.9, seed=0)


def test_stratified_rows_keep_every_class_on_both_sides():
    y = np.array([0] * 50 + [1] * 5 + [2] * 2)
    train, val = validation_rows(len(y), 0.1, seed=0, y=y)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    for label in (0, 1, 2):
        assert (y[val] == label).sum() >= 1 and (y[train] == label).sum() >= 1
    assert (y[val] == 0).sum() == 5
    with pytest.raises(ValueError, match="class 'b' has only one labelled row"):
        validation_rows(3, 0.5, seed=0, y=np.array(["a", "a", "b"]))


def test_an_older_checkpoint_without_the_options_resumes(digits, tmp_path):
    x = digits[0][:128]
    config = dict(CONFIG, epochs=1)
    interrupt_at_layer(1, x, config, tmp_path)
    checkpoint = PretrainingCheckpoint(tmp_path)
    manifest = checkpoint.read_manifest()
    for key in ("early_stopping", "validation_fraction", "n_iter_no_change", "tol"):
        del manifest["config"][key]
    del manifest["stopping"]
    checkpoint.write_manifest(manifest)
    resumed = StackedDenoisingAutoencoder(**config).pretrain(x, run_dir=tmp_path, resume=True)
    assert resumed.n_iter_ == [1, 1]
    assert json.loads(json.dumps(resumed.get_config()))["tol"] == 1e-4
