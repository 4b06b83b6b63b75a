"""Greedy layer-wise pretraining: what each layer is fitted on, what it learns, what it hands on."""

import pickle

import keras
import numpy as np
import pytest
import scipy.sparse as sp

from tests.conftest import to_numpy
from tiedae.layers import DenseLayerAutoencoder
from tiedae.pretraining import LayerwiseTiedAutoencoder, StackedDenoisingAutoencoder
from tiedae.pretraining import data as data_module
from tiedae.pretraining.data import SparseBatches
from tiedae.pretraining.stacked import LOGITS_BACKENDS


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def bce(target, output, eps=1e-7):
    output = np.clip(output, eps, 1 - eps)
    return float(np.mean(-(target * np.log(output) + (1 - target) * np.log(1 - output))))


def layer_weights(sda, k):
    ae = sda.autoencoder_
    return (
        to_numpy(ae.kernels[k]).astype(np.float64),
        to_numpy(ae.encoder_biases[k]).astype(np.float64),
        to_numpy(ae.decoder_biases[k]).astype(np.float64),
    )


def numpy_codes(sda, x, depth):
    """Clean codes of the first `depth` layers (sigmoid stacks), computed in NumPy."""
    h = x.astype(np.float64)
    for k in range(depth):
        kernel, bias, _ = layer_weights(sda, k)
        h = sigmoid(h @ kernel + bias)
    return h


def _spy(monkeypatch, steps):
    records = {"fits": [], "steps": [], "autoencoder_inputs": []}
    original_fit = keras.Model.fit
    original_call = DenseLayerAutoencoder.call
    original_loss = keras.Model.compute_loss

    def fit(self, x=None, y=None, *args, **kwargs):
        records["fits"].append({"model": self, "x": x, "y": y})
        if steps:
            self.run_eagerly = True
        return original_fit(self, x, y, *args, **kwargs)

    def call(self, inputs, training=None):
        if training:
            records["autoencoder_inputs"].append(to_numpy(inputs))
        return original_call(self, inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:
            records["steps"].append({"x": to_numpy(x), "y": to_numpy(y)})
        return original_loss(
            self, x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    monkeypatch.setattr(keras.Model, "fit", fit)
    if steps:
        monkeypatch.setattr(DenseLayerAutoencoder, "call", call)
        monkeypatch.setattr(keras.Model, "compute_loss", compute_loss)
    return records


@pytest.fixture
def spy(monkeypatch):
    """Record what every `fit` receives and what each training step really computes on.

    The training runs eagerly so that the values seen inside the step are
    concrete arrays on every backend.
    """
    return _spy(monkeypatch, steps=True)


@pytest.fixture
def fits(monkeypatch):
    """Record the model, x and y of every `fit` (training itself unchanged)."""
    return _spy(monkeypatch, steps=False)["fits"]


def test_each_layer_is_fitted_on_corrupted_clean_codes_against_the_clean_codes(digits, spy):
    x = digits[0][:120]
    sda = StackedDenoisingAutoencoder(
        [16, 8], corruption="masking", corruption_level=0.3, epochs=2, batch_size=120,
        seed=3, verbose=0,
    )
    sda.pretrain(x)
    assert len(spy["fits"]) == 2
    # One full batch per epoch: steps 0-1 train layer 0, steps 2-3 train layer 1.
    assert len(spy["steps"]) == len(spy["autoencoder_inputs"]) == 4

    # What `fit` is given: the clean input, then the clean codes of layer 0,
    # computed once for the whole layer; no separate target (a ReconstructionModel
    # takes its input as the target, so each batch is handed over once).
    first, second = spy["fits"]
    np.testing.assert_array_equal(first["x"], x)
    assert first["y"] is None and second["y"] is None
    assert second["x"].shape == (120, 16)
    np.testing.assert_allclose(second["x"], numpy_codes(sda, x, 1), atol=1e-6)

    for step, (batch, seen) in enumerate(zip(spy["steps"], spy["autoencoder_inputs"])):
        clean = spy["fits"][step // 2]["x"]
        # The target of the step is the clean batch: rows of the clean codes.
        np.testing.assert_array_equal(batch["y"], batch["x"])
        np.testing.assert_array_equal(
            np.sort(batch["y"], axis=0), np.sort(clean, axis=0)
        )
        # The autoencoder sees that batch with entries zeroed (masking noise).
        assert seen.shape == batch["x"].shape
        np.testing.assert_array_equal(np.where(seen == 0, 0, batch["x"]), seen)
        zeroed = (seen == 0) & (batch["x"] != 0)
        fraction = zeroed.sum() / np.count_nonzero(batch["x"])
        assert 0.2 < fraction < 0.4, fraction

    # Noise is drawn anew at each step: the masks of the same rows differ between epochs.
    for first_step in (0, 2):
        masks = []
        for step in (first_step, first_step + 1):
            rows = spy["steps"][step]["x"]
            order = np.lexsort(rows.T)
            masks.append((spy["autoencoder_inputs"][step] == 0)[order])
        assert not np.array_equal(masks[0], masks[1])


def test_greedy_pretraining_lowers_each_layers_heldout_reconstruction_loss(digits):
    x = digits[0]
    # Whole batches only (a partial last batch would cost JAX another compilation).
    train, held_out = x[:1200], x[1200:1680]
    config = dict(layer_sizes=[24, 12], corruption_level=0.2, batch_size=80, seed=5, verbose=0)
    trained = StackedDenoisingAutoencoder(epochs=3, **config).pretrain(
        train, validation_data=held_out
    )
    untrained = StackedDenoisingAutoencoder(epochs=0, **config).pretrain(train)

    for k in range(2):
        assert len(trained.history_[k]["loss"]) == 3
        assert len(trained.history_[k]["val_loss"]) == 3
        assert untrained.history_[k] == {"loss": []}
        # Layer k's input: held-out codes of the trained layers below it.
        inputs = numpy_codes(trained, held_out, k)
        losses = {}
        for name, sda in (("trained", trained), ("untrained", untrained)):
            kernel, bias, decoder_bias = layer_weights(sda, k)
            reconstruction = sigmoid(sigmoid(inputs @ kernel + bias) @ kernel.T + decoder_bias)
            losses[name] = bce(inputs, reconstruction)
        assert losses["trained"] < losses["untrained"] - 0.01, (k, losses)
    # The untrained stack starts from the same seeded initialisation.
    assert not np.array_equal(layer_weights(trained, 0)[0], layer_weights(untrained, 0)[0])


def test_autoencoder_carries_each_layers_weights_and_encodes_like_the_stack(digits, fits):
    x = digits[0][:200]
    sda = StackedDenoisingAutoencoder([12, 6], epochs=1, batch_size=100, seed=1, verbose=0)
    sda.pretrain(x)
    assert isinstance(sda.autoencoder_, DenseLayerAutoencoder)
    assert sda.autoencoder_.layer_sizes == [12, 6]
    for k, record in enumerate(fits):
        dae = [layer for layer in record["model"].layers if isinstance(layer, DenseLayerAutoencoder)]
        assert len(dae) == 1 and dae[0].layer_sizes == [sda.layer_sizes[k]]
        for mine, theirs in (
            (sda.autoencoder_.kernels[k], dae[0].kernels[0]),
            (sda.autoencoder_.encoder_biases[k], dae[0].encoder_biases[0]),
            (sda.autoencoder_.decoder_biases[k], dae[0].decoder_biases[0]),
        ):
            np.testing.assert_array_equal(to_numpy(mine), to_numpy(theirs))

    codes = sda.transform(x)
    np.testing.assert_allclose(codes, numpy_codes(sda, x, 2), atol=1e-5)
    encoder = sda.encoder()
    np.testing.assert_allclose(to_numpy(encoder(x)), codes, atol=1e-6)
    assert {id(v) for v in encoder.weights} == {id(v) for v in sda.autoencoder_.weights}

    # Reconstruction = the stacked decoders (sigmoid, since every layer used BCE).
    kernels = [layer_weights(sda, k) for k in range(2)]
    h = numpy_codes(sda, x, 2)
    for kernel, _, decoder_bias in reversed(kernels):
        h = sigmoid(h @ kernel.T + decoder_bias)
    np.testing.assert_allclose(sda.reconstruct(x), h, atol=1e-5)
    np.testing.assert_allclose(sda.decode(codes), h, atol=1e-5)


def test_auto_loss_uses_bce_on_unit_interval_inputs_and_mse_otherwise(digits, fits):
    x = digits[0][:100]
    sda = StackedDenoisingAutoencoder([8, 4], activation="tanh", epochs=1, seed=0, verbose=0)
    sda.pretrain(x)
    # Layer 0 sees pixels in [0, 1]; layer 1 sees tanh codes, which go negative.
    assert sda.losses_ == ["binary_crossentropy", "mse"]
    # Binary cross-entropy trains on the logits (a linear training output, from_logits)
    # on PyTorch and TensorFlow, on the sigmoid's probabilities on JAX.
    bce, mse = (record["model"].loss for record in fits)
    daes = [record["model"].get_layer(f"dae_{k}") for k, record in enumerate(fits)]
    if keras.backend.backend() in LOGITS_BACKENDS:
        assert isinstance(bce, keras.losses.BinaryCrossentropy) and bce.get_config()["from_logits"]
        assert daes[0].output_activation is keras.activations.linear
    else:
        assert bce == "binary_crossentropy"
        assert daes[0].output_activation is keras.activations.sigmoid
    assert mse == "mse"
    assert daes[1].output_activation is keras.activations.linear
    assert sda.autoencoder_.decoder_activations == [
        keras.activations.sigmoid, keras.activations.linear
    ]

    standardized = (x - x.mean(0)) / (x.std(0) + 1e-3)
    sda = StackedDenoisingAutoencoder([8], epochs=1, seed=0, verbose=0).pretrain(standardized)
    assert sda.losses_ == ["mse"]
    # An explicit per-layer choice wins, and an impossible one is refused.
    sda = StackedDenoisingAutoencoder([8, 4], loss=["mse", "auto"], epochs=1, seed=0, verbose=0)
    assert sda.pretrain(x).losses_ == ["mse", "binary_crossentropy"]
    with pytest.raises(ValueError, match=r"binary_crossentropy.*\[0, 1\]"):
        StackedDenoisingAutoencoder([8], loss="binary_crossentropy", verbose=0).pretrain(
            standardized
        )


def test_per_layer_settings_reach_each_layer(digits, fits):
    x = digits[0][:64]
    sda = StackedDenoisingAutoencoder(
        [8, 6, 4], activation=["relu", "sigmoid", "tanh"],
        corruption=["masking", "gaussian", "none"], corruption_level=[0.1, 0.5, 0.0],
        epochs=[1, 2, 0], seed=0, verbose=0,
    )
    sda.pretrain(x)
    # Layer 2 has 0 epochs, so it is never fitted.
    assert len(fits) == 2
    assert [len(h["loss"]) for h in sda.history_] == [1, 2, 0]
    first, second = (record["model"] for record in fits)
    assert first.get_layer("corruption_0").rate == 0.1
    assert second.get_layer("corruption_1").stddev == 0.5
    assert first.get_layer("dae_0").activation is keras.activations.relu
    assert sda.autoencoder_.activations == [
        keras.activations.relu, keras.activations.sigmoid, keras.activations.tanh
    ]
    # Relu codes are unbounded, so layer 1 uses MSE; sigmoid codes give BCE.
    assert sda.losses_ == ["binary_crossentropy", "mse", "binary_crossentropy"]


@pytest.mark.parametrize("denoising", [True, False])
def test_finetuning_corrupts_the_input_only_when_denoising(digits, denoising):
    x = digits[0][:120]
    sda = StackedDenoisingAutoencoder(
        [12, 6], epochs=60, learning_rate=0.02, batch_size=len(x), corruption_level=0.5, seed=4,
        verbose=0,
        finetune_denoising=denoising,
    ).pretrain(x)
    clean_loss = bce(x, sda.reconstruct(x))
    # One full batch: the epoch's reported loss is the loss before the single update.
    sda.finetune(x, epochs=1)
    reported = sda.finetune_history_["loss"][0]
    if denoising:  # half the pixels masked: worse than the clean reconstruction
        assert reported > clean_loss * 1.01
    else:
        assert reported == pytest.approx(clean_loss, rel=1e-4)
    assert sda.get_config()["finetune_denoising"] is denoising


def test_finetune_denoising_must_be_a_boolean():
    with pytest.raises(ValueError, match="finetune_denoising"):
        StackedDenoisingAutoencoder([4], finetune_denoising="no")

def test_finetuning_updates_the_shared_deep_autoencoder(digits):
    x = digits[0][:200]
    sda = StackedDenoisingAutoencoder(
        [12, 6], epochs=1, finetune_epochs=2, batch_size=50, seed=2, verbose=0
    )
    sda.pretrain(x)
    assert len(sda.finetune_history_["loss"]) == 2
    pretrained_only = StackedDenoisingAutoencoder(
        [12, 6], epochs=1, batch_size=50, seed=2, verbose=0
    ).pretrain(x)
    assert pretrained_only.finetune_history_ is None
    encoder = pretrained_only.encoder()
    before = to_numpy(encoder(x[:5]))
    np.testing.assert_array_equal(before, pretrained_only.transform(x[:5]))
    pretrained_only.finetune(x, epochs=2)
    # Same seeds: fine-tuning after the fact equals fine-tuning inside pretrain.
    for a, b in zip(pretrained_only.autoencoder_.weights, sda.autoencoder_.weights):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-6)
    # The encoder built before fine-tuning shares the updated variables.
    after = to_numpy(encoder(x[:5]))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, pretrained_only.transform(x[:5]), atol=1e-6)


def test_cross_entropy_trained_on_logits_is_the_cross_entropy_of_the_reconstruction(digits):
    # Where the training models output logits (from_logits=True), the validation loss
    # Keras reports must still be binary cross-entropy of the sigmoid reconstruction; and the
    # fine-tuned weights must come back from the training twin into autoencoder_.
    x, x_val = digits[0][:200], digits[0][200:260]
    sda = StackedDenoisingAutoencoder(
        [12], epochs=2, finetune_epochs=2, batch_size=50, seed=4, verbose=0,
        early_stopping=False,
    )
    sda.pretrain(x, validation_data=(x_val,))
    kernel, bias, decoder_bias = layer_weights(sda, 0)
    reconstruction = sigmoid(sigmoid(x_val @ kernel + bias) @ kernel.T + decoder_bias)
    assert sda.finetune_history_["val_loss"][-1] == pytest.approx(
        bce(x_val, reconstruction), rel=1e-4)
    np.testing.assert_allclose(sda.reconstruct(x_val), reconstruction, atol=1e-5)
    greedy = StackedDenoisingAutoencoder(
        [12], epochs=2, batch_size=50, seed=4, verbose=0, early_stopping=False,
    ).pretrain(x, validation_data=(x_val,))
    kernel, bias, decoder_bias = layer_weights(greedy, 0)
    reconstruction = sigmoid(sigmoid(x_val @ kernel + bias) @ kernel.T + decoder_bias)
    assert greedy.history_[0]["val_loss"][-1] == pytest.approx(
        bce(x_val, reconstruction), rel=1e-4)


def test_save_load_and_pickle_round_trip(digits, tmp_path):
    x = digits[0][:100]
    sda = StackedDenoisingAutoencoder([8, 4], epochs=1, seed=0, verbose=0).pretrain(
        x, validation_data=x[:20]
    )
    path = tmp_path / "stack.keras"
    sda.save(path)
    for restored in (
        StackedDenoisingAutoencoder.load(path),
        pickle.loads(pickle.dumps(sda)),
    ):
        assert restored.get_config() == sda.get_config()
        assert restored.history_ == sda.history_ and restored.losses_ == sda.losses_
        np.testing.assert_array_equal(restored.transform(x), sda.transform(x))
        np.testing.assert_array_equal(restored.reconstruct(x), sda.reconstruct(x))
    # The file is also an ordinary Keras model: input -> reconstruction.
    model = keras.saving.load_model(path)
    assert isinstance(model.layers[-1], LayerwiseTiedAutoencoder)
    np.testing.assert_allclose(to_numpy(model(x)), sda.reconstruct(x), atol=1e-6)


def test_an_interrupted_save_leaves_the_earlier_file(digits, tmp_path, monkeypatch):
    x = digits[0][:60]
    sda = StackedDenoisingAutoencoder([4], epochs=1, seed=0, verbose=0).pretrain(x)
    path = tmp_path / "stack.keras"
    sda.save(path)
    before = path.read_bytes()

    def fail(archive, *args, **kwargs):
        raise KeyboardInterrupt  # as Ctrl-C halfway through writing the archive

    monkeypatch.setattr("zipfile.ZipFile.writestr", fail)
    with pytest.raises(KeyboardInterrupt):
        sda.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.keras"]  # no temporary left


def test_sparse_input_small_is_densified_once_and_large_per_batch(digits, monkeypatch):
    x = digits[0][:150]
    config = dict(layer_sizes=[8], epochs=2, batch_size=50, seed=0, verbose=0)
    dense = StackedDenoisingAutoencoder(**config).pretrain(x)
    small = StackedDenoisingAutoencoder(**config).pretrain(sp.csr_matrix(x))
    for a, b in zip(small.autoencoder_.weights, dense.autoencoder_.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))

    # Above the limit, fit gets batches densified one at a time.
    monkeypatch.setattr(data_module, "DENSIFY_LIMIT", 0)
    seen = []
    original_fit = keras.Model.fit

    def fit(self, x=None, *args, **kwargs):
        seen.append(x)
        return original_fit(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    sda = StackedDenoisingAutoencoder(**config)
    sda.pretrain(sp.csr_matrix(x), validation_data=sp.csr_matrix(x[:30]))
    assert isinstance(seen[0], SparseBatches) and len(seen[0]) == 3
    (batch,) = seen[0][0]  # the input alone: the model takes it as the target
    assert isinstance(batch, np.ndarray) and batch.shape == (50, 64)
    assert len(sda.history_[0]["loss"]) == 2 and np.isfinite(sda.history_[0]["val_loss"]).all()
    np.testing.assert_array_equal(sda.transform(sp.csr_matrix(x)), sda.transform(x))


def test_bad_data_raises_one_clear_value_error():
    cases = [
        (np.zeros(10, np.float32), "must be 2-D"),
        (np.zeros((0, 4), np.float32), "empty"),
        (np.array([[1.0, np.nan], [np.inf, 2.0], [np.nan, 0.0]]), "contains 3 NaN or infinite"),
        (np.array([["a", "b"]]), "real numbers"),
        (np.ones((3, 2), np.complex64), "real numbers"),
    ]
    sda = StackedDenoisingAutoencoder([4], epochs=1, verbose=0)
    for x, message in cases:
        with pytest.raises(ValueError, match=message):
            sda.pretrain(x)


def test_bad_arguments_raise_value_errors_naming_them():
    cases = [
        (dict(layer_sizes=[]), "layer_sizes"),
        (dict(layer_sizes=[4, -1]), "layer_sizes"),
        (dict(layer_sizes=[4, 2], epochs=[1]), "`epochs` has 1 entries"),
        (dict(layer_sizes=[4], corruption="dropout"), "corruption"),
        (dict(layer_sizes=[4], corruption_level=1.5), "corruption_level"),
        (dict(layer_sizes=[4], corruption="gaussian", corruption_level=-1.0), "corruption_level"),
        (dict(layer_sizes=[4], loss="hinge"), "loss"),
        (dict(layer_sizes=[4], activation="nope"), "activation"),
        (dict(layer_sizes=[4], optimizer="nope"), "optimizer"),
        (dict(layer_sizes=[4], learning_rate=0), "learning_rate"),
        (dict(layer_sizes=[4], batch_size=0), "batch_size"),
        (dict(layer_sizes=[4], epochs=-1), "epochs"),
        (dict(layer_sizes=[4], seed=-3), "seed"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            StackedDenoisingAutoencoder(**kwargs)


def test_methods_need_a_pretrained_stack_and_matching_features(digits):
    sda = StackedDenoisingAutoencoder([4], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="call `pretrain"):
        sda.transform(digits[0])
    sda.pretrain(digits[0][:50])
    with pytest.raises(ValueError, match="has 10 features but the model was trained on 64"):
        sda.transform(np.zeros((3, 10), np.float32))
    with pytest.raises(ValueError, match="validation_data"):
        sda.pretrain(digits[0][:50], validation_data=np.zeros((3, 10), np.float32))


def test_layerwise_autoencoder_config_round_trips_and_matches_numpy(rng):
    ae = LayerwiseTiedAutoencoder(
        [5, 3], activations=["relu", "tanh"], decoder_activations=["sigmoid", "linear"],
        name="layerwise",
    )
    x = rng.random((4, 6)).astype(np.float32)
    out = to_numpy(ae(x))
    config = ae.get_config()
    assert config["activations"] == ["relu", "tanh"]
    assert config["decoder_activations"] == ["sigmoid", "linear"]
    assert "activation" not in config and "output_activation" not in config
    clone = LayerwiseTiedAutoencoder.from_config(config)
    assert clone.get_config() == config

    w = [to_numpy(k).astype(np.float64) for k in ae.kernels]
    b = [to_numpy(v).astype(np.float64) for v in ae.encoder_biases]
    c = [to_numpy(v).astype(np.float64) for v in ae.decoder_biases]
    code = np.tanh(np.maximum(x @ w[0] + b[0], 0) @ w[1] + b[1])
    expected = sigmoid((code @ w[1].T + c[1]) @ w[0].T + c[0])
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError, match="`activations` has 3 entries"):
        LayerwiseTiedAutoencoder([5, 3], activations=["relu"] * 3)
    with pytest.raises(ValueError, match="not `activation`"):
        LayerwiseTiedAutoencoder([5], activation="relu")


def test_nan_in_the_input_is_counted_and_located(digits):
    x = digits[0][:50].copy()
    x[7, 3] = np.nan
    x[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"contains 2 NaN or infinite values \(first at row 7, column 3\)"):
        StackedDenoisingAutoencoder([4], epochs=1, verbose=0).pretrain(x)


# ------------------------------------------- optimizer, decoder activation, initializer

SGD_MOMENTUM = {"class_name": "SGD", "config": {"momentum": 0.9, "learning_rate": 0.5}}
DEC_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1 / 3, "mode": "fan_in", "distribution": "uniform"},
}


def lr_of(optimizer):
    return float(to_numpy(optimizer.learning_rate))


def test_optimizer_dict_configures_every_fresh_optimizer(digits, fits):
    x = digits[0][:64]
    sda = StackedDenoisingAutoencoder(
        [8, 4], optimizer=SGD_MOMENTUM, learning_rate=0.05, epochs=1, finetune_epochs=1,
        batch_size=64, seed=0, verbose=0,
    ).pretrain(x)
    # Two greedy layers and the fine-tuning: each gets its own SGD with momentum 0.9
    # at `learning_rate` (which replaces the config's 0.5).
    optimizers = [record["model"].optimizer for record in fits]
    assert len(optimizers) == 3 and len({id(o) for o in optimizers}) == 3
    for optimizer in optimizers:
        assert isinstance(optimizer, keras.optimizers.SGD)
        assert optimizer.momentum == pytest.approx(0.9)
        assert lr_of(optimizer) == pytest.approx(0.05)
        assert int(to_numpy(optimizer.iterations)) == 1
    # The hand-off to a classifier uses the same description.
    classifier = sda.to_classifier(3, learning_rate=0.02)
    assert isinstance(classifier.optimizer, keras.optimizers.SGD)
    assert classifier.optimizer.momentum == pytest.approx(0.9)
    assert lr_of(classifier.optimizer) == pytest.approx(0.02)
    assert lr_of(sda.to_classifier(3).optimizer) == pytest.approx(0.05)
    # A name still works.
    adam = StackedDenoisingAutoencoder([4], optimizer="adam", learning_rate=0.01, verbose=0)
    adam.pretrain(x)
    assert isinstance(fits[-1]["model"].optimizer, keras.optimizers.Adam)
    assert lr_of(fits[-1]["model"].optimizer) == pytest.approx(0.01)


def test_get_config_is_a_copy_and_round_trips_the_new_settings(digits, tmp_path):
    x = digits[0][:64]
    sda = StackedDenoisingAutoencoder(
        [8, 4], activation="relu", loss="mse", reconstruction_activation=["linear", "relu"],
        kernel_initializer=DEC_INITIALIZER, optimizer=SGD_MOMENTUM, learning_rate=0.01,
        epochs=1, seed=0, verbose=0,
    )
    config = sda.get_config()
    assert config["optimizer"] == SGD_MOMENTUM
    assert config["kernel_initializer"] == DEC_INITIALIZER
    assert config["reconstruction_activation"] == ["linear", "relu"]
    # Mutating the returned config leaves the stack alone.
    config["optimizer"]["config"]["momentum"] = 0.0
    config["optimizer"]["class_name"] = "Adam"
    config["kernel_initializer"]["config"]["scale"] = 100.0
    config["reconstruction_activation"][1] = "tanh"
    fresh = sda.get_config()
    assert fresh["optimizer"] == {
        "class_name": "SGD", "config": {"momentum": 0.9, "learning_rate": 0.5}
    }
    assert fresh["kernel_initializer"]["config"]["scale"] == pytest.approx(1 / 3)
    assert fresh["reconstruction_activation"] == ["linear", "relu"]
    assert sda.optimizer == SGD_MOMENTUM and sda.kernel_initializer == DEC_INITIALIZER

    sda.pretrain(x)
    assert sda.autoencoder_.decoder_activations == [
        keras.activations.linear, keras.activations.relu
    ]
    path = tmp_path / "stack.keras"
    sda.save(path)
    for restored in (StackedDenoisingAutoencoder.load(path), pickle.loads(pickle.dumps(sda))):
        assert restored.get_config() == sda.get_config()
        assert restored.autoencoder_.decoder_activations == sda.autoencoder_.decoder_activations
        np.testing.assert_array_equal(restored.reconstruct(x), sda.reconstruct(x))


@pytest.mark.parametrize("optimizer", [
    "nope",
    {"class_name": "Nope"},
    {"class_name": "SGD", "config": {"bogus": 1}},
    {"class_name": "SGD", "config": [0.9]},
    {"name": "sgd"},
    {"class_name": "SGD", "config": {}, "extra": 1},
    3,
    None,
])
def test_bad_optimizer_descriptions_raise_at_construction(optimizer):
    with pytest.raises(ValueError, match="`optimizer`"):
        StackedDenoisingAutoencoder([4], optimizer=optimizer)


def np_activation(name):
    return {
        "linear": lambda z: z,
        "relu": lambda z: np.maximum(z, 0.0),
        "sigmoid": sigmoid,
        "tanh": np.tanh,
    }[name]


def test_reconstruction_activation_reaches_each_greedy_decoder_and_the_deep_autoencoder(
    digits, fits
):
    x = digits[0][:100]
    sda = StackedDenoisingAutoencoder(
        [8, 4], activation=["relu", "linear"], loss="mse",
        reconstruction_activation=["linear", "relu"], epochs=1, seed=0, verbose=0,
    ).pretrain(x)
    daes = [record["model"].get_layer(f"dae_{k}") for k, record in enumerate(fits)]
    assert daes[0].output_activation is keras.activations.linear
    assert daes[1].output_activation is keras.activations.relu
    assert sda.autoencoder_.decoder_activations == [
        keras.activations.linear, keras.activations.relu
    ]
    # The deep reconstruction, in NumPy: relu decoder for layer 1, linear for layer 0.
    (w0, b0, c0), (w1, b1, c1) = (layer_weights(sda, k) for k in range(2))
    code = np.maximum(x @ w0 + b0, 0) @ w1 + b1
    expected = np.maximum(code @ w1.T + c1, 0) @ w0.T + c0
    assert (code @ w1.T + c1 < 0).any()  # the relu does cut something
    np.testing.assert_allclose(sda.reconstruct(x), expected, rtol=1e-5, atol=1e-5)

    # One name for every layer; "auto" in a list follows each layer's loss.
    tanh = StackedDenoisingAutoencoder(
        [8, 4], loss="mse", reconstruction_activation="tanh", epochs=0, verbose=0
    ).pretrain(x)
    assert tanh.autoencoder_.decoder_activations == [keras.activations.tanh] * 2
    mixed = StackedDenoisingAutoencoder(
        [8, 4], activation="relu", reconstruction_activation=["auto", "relu"], epochs=1,
        seed=0, verbose=0,
    ).pretrain(x)
    # Layer 0: pixels in [0, 1] -> BCE -> sigmoid; layer 1: relu codes -> MSE -> relu.
    assert mixed.losses_ == ["binary_crossentropy", "mse"]
    assert mixed.autoencoder_.decoder_activations == [
        keras.activations.sigmoid, keras.activations.relu
    ]
    assert fits[-1]["model"].get_layer("dae_1").output_activation is keras.activations.relu


def test_auto_reconstruction_activation_keeps_the_loss_default(digits):
    x = digits[0][:100]
    config = dict(layer_sizes=[8, 4], activation="tanh", epochs=1, seed=0, verbose=0)
    auto = StackedDenoisingAutoencoder(**config).pretrain(x)
    explicit = StackedDenoisingAutoencoder(
        **config, reconstruction_activation=["sigmoid", "linear"]
    ).pretrain(x)
    assert auto.losses_ == explicit.losses_ == ["binary_crossentropy", "mse"]
    assert auto.autoencoder_.decoder_activations == explicit.autoencoder_.decoder_activations == [
        keras.activations.sigmoid, keras.activations.linear
    ]
    np.testing.assert_allclose(auto.reconstruct(x), explicit.reconstruct(x), atol=1e-6)


def test_bce_needs_a_sigmoid_reconstruction(digits):
    x = digits[0][:64]
    # An explicit BCE loss: refused at construction.
    for loss in ("binary_crossentropy", "bce"):
        with pytest.raises(ValueError, match="Layer 0 uses binary cross-entropy.*'relu'"):
            StackedDenoisingAutoencoder([4], loss=loss, reconstruction_activation="relu")
    with pytest.raises(ValueError, match="Layer 1 uses binary cross-entropy.*'linear'"):
        StackedDenoisingAutoencoder(
            [4, 2], loss=["mse", "binary_crossentropy"], reconstruction_activation="linear"
        )
    # "sigmoid" (or "auto") is fine with BCE.
    StackedDenoisingAutoencoder([4], loss="bce", reconstruction_activation="sigmoid")
    StackedDenoisingAutoencoder(
        [4], loss="bce", reconstruction_activation=keras.activations.sigmoid
    )
    # loss="auto" picks BCE only for a sigmoid decoder: with a chosen relu one it means MSE,
    # on [0, 1] inputs too (it used to pick BCE there and then refuse it mid-pretraining).
    sda = StackedDenoisingAutoencoder([4], reconstruction_activation="relu", epochs=1, verbose=0)
    for data in (x, (x - x.mean(0)) / (x.std(0) + 1e-3)):
        sda.pretrain(data)
        assert sda.losses_ == ["mse"]
        assert sda.autoencoder_.decoder_activations == [keras.activations.relu]
    sigmoid = StackedDenoisingAutoencoder([4], reconstruction_activation="sigmoid", epochs=1,
                                          verbose=0)
    assert sigmoid.pretrain(x).losses_ == ["binary_crossentropy"]


@pytest.mark.parametrize("value, message", [
    ("nope", "`reconstruction_activation` 'nope' is not a Keras activation"),
    (["relu", "nope"], "`reconstruction_activation` 'nope' is not a Keras activation"),
    (["relu"], "`reconstruction_activation` has 1 entries"),
    (3, "`reconstruction_activation`"),
])
def test_bad_reconstruction_activations_raise_at_construction(value, message):
    with pytest.raises(ValueError, match=message):
        StackedDenoisingAutoencoder([4, 2], loss="mse", reconstruction_activation=value)


def test_kernel_initializer_dict_is_seeded_per_layer(digits):
    x = digits[0][:64]
    sda = StackedDenoisingAutoencoder(
        [16, 8], kernel_initializer=DEC_INITIALIZER, epochs=0, seed=7, verbose=0
    ).pretrain(x)
    again = StackedDenoisingAutoencoder(
        [16, 8], kernel_initializer=DEC_INITIALIZER, epochs=0, seed=7, verbose=0
    ).pretrain(x)
    glorot = StackedDenoisingAutoencoder([16, 8], epochs=0, seed=7, verbose=0).pretrain(x)
    for k, fan_in in enumerate((64, 16)):
        kernel = to_numpy(sda.autoencoder_.kernels[k])
        # VarianceScaling(1/3, fan_in, uniform): U(-limit, limit), limit = sqrt(1 / fan_in).
        limit = np.sqrt(1.0 / fan_in)
        assert np.abs(kernel).max() <= limit + 1e-7
        assert np.abs(kernel).max() > 0.9 * limit
        assert abs(kernel.mean()) < 0.1 * limit
        # Glorot's limit sqrt(6 / (fan_in + fan_out)) is about twice as wide here.
        glorot_kernel = to_numpy(glorot.autoencoder_.kernels[k])
        assert np.abs(glorot_kernel).max() > 1.5 * limit
        # Seeded: the same seed gives the same kernels; each layer has its own seed.
        np.testing.assert_array_equal(kernel, to_numpy(again.autoencoder_.kernels[k]))
        expected = sda._initializer(sda.seed_ + k)((fan_in, sda.layer_sizes[k]))
        np.testing.assert_array_equal(kernel, to_numpy(expected))
    other = StackedDenoisingAutoencoder(
        [16, 8], kernel_initializer=DEC_INITIALIZER, epochs=0, seed=8, verbose=0
    ).pretrain(x)
    assert not np.array_equal(
        to_numpy(other.autoencoder_.kernels[0]), to_numpy(sda.autoencoder_.kernels[0])
    )
    # A name works too: RandomNormal's default standard deviation is 0.05.
    normal = StackedDenoisingAutoencoder(
        [16], kernel_initializer="random_normal", epochs=0, seed=7, verbose=0
    ).pretrain(x)
    assert 0.04 < to_numpy(normal.autoencoder_.kernels[0]).std() < 0.06


def test_seeded_initializers_leave_pythons_global_generator_alone():
    # An unseeded Keras initializer draws its seed from `random`; the stacks' must not,
    # or building one would change what later unseeded code draws.
    import random

    from tiedae.pretraining.optimizers import make_initializer

    state = random.getstate()
    for spec in ("glorot_uniform", DEC_INITIALIZER, "identity"):
        make_initializer(spec, 3)
    assert random.getstate() == state


def test_deterministic_kernel_initializers_need_no_seed(digits):
    x = digits[0][:64]
    identity = StackedDenoisingAutoencoder(
        [64], kernel_initializer="identity", epochs=0, seed=7, verbose=0
    ).pretrain(x)
    np.testing.assert_array_equal(to_numpy(identity.autoencoder_.kernels[0]), np.eye(64))
    constant = StackedDenoisingAutoencoder(
        [16, 8], kernel_initializer={"class_name": "Constant", "config": {"value": 0.25}},
        epochs=0, seed=7, verbose=0,
    ).pretrain(x)
    for kernel in constant.autoencoder_.kernels:
        np.testing.assert_array_equal(to_numpy(kernel), np.full(kernel.shape, 0.25))


@pytest.mark.parametrize("initializer", [
    "nope",
    "constant",  # its config needs a value
    {"class_name": "Nope"},
    {"class_name": "VarianceScaling", "config": {"bogus": 1}},
    {"class_name": "VarianceScaling", "config": [1]},
    {"config": {"scale": 0.3}},
    {"class_name": "GlorotUniform", "extra": 1},
    3,
    None,
])
def test_bad_kernel_initializers_raise_at_construction(initializer):
    with pytest.raises(ValueError, match="`kernel_initializer`"):
        StackedDenoisingAutoencoder([4], kernel_initializer=initializer)


def test_finetune_uses_the_given_optimizer_instance(digits):
    x = digits[0][:128]
    sda = StackedDenoisingAutoencoder([8, 4], epochs=1, batch_size=64, seed=0, verbose=0)
    sda.pretrain(x)
    before = [to_numpy(w) for w in sda.autoencoder_.weights]
    # Learning rate 0: two epochs of two steps each, and not one weight moves.
    still = keras.optimizers.SGD(learning_rate=0.0)
    sda.finetune(x, epochs=2, optimizer=still)
    assert int(to_numpy(still.iterations)) == 4
    assert len(sda.finetune_history_["loss"]) == 2
    for a, b in zip(before, sda.autoencoder_.weights):
        np.testing.assert_array_equal(a, to_numpy(b))
    # A real optimizer trains them.
    moving = keras.optimizers.Adam(learning_rate=0.01)
    sda.finetune(x, epochs=1, optimizer=moving)
    assert int(to_numpy(moving.iterations)) == 2
    assert not np.array_equal(before[0], to_numpy(sda.autoencoder_.weights[0]))
