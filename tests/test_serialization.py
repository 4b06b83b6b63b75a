"""Serialization: get_config round trips, .keras save/load, and loading under the other backends."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import BACKEND
from tiedae import (
    AdditiveGaussianNoise,
    DenseLayerAutoencoder,
    DenseTranspose,
    MaskingNoise,
    SaltAndPepperNoise,
    TiedDecoder,
    TiedEncoder,
)

BACKENDS = ("jax", "tensorflow", "torch")


def plain(config):
    return json.loads(json.dumps(config))


def full_autoencoder():
    """A DenseLayerAutoencoder with every constructor argument away from its default."""
    return DenseLayerAutoencoder(
        [8, 4],
        activation="relu",
        output_activation="sigmoid",
        use_bias=False,
        kernel_initializer=keras.initializers.HeNormal(seed=1),
        bias_initializer="ones",
        kernel_regularizer=keras.regularizers.L1L2(l1=1e-3, l2=1e-4),
        bias_regularizer=keras.regularizers.L2(1e-2),
        activity_regularizer=keras.regularizers.L1(1e-5),
        kernel_constraint=keras.constraints.MaxNorm(2.0),
        bias_constraint=keras.constraints.NonNeg(),
        dropout=0.25,
        l2_normalize=True,
        name="full_ae",
    )


def test_autoencoder_config_round_trips_every_argument():
    ae = full_autoencoder()
    config = ae.get_config()
    clone = DenseLayerAutoencoder.from_config(config)
    assert clone.get_config() == config

    assert clone.layer_sizes == [8, 4]
    assert clone.activation is keras.activations.relu
    assert clone.output_activation is keras.activations.sigmoid
    assert clone.use_bias is False
    assert isinstance(clone.kernel_initializer, keras.initializers.HeNormal)
    assert clone.kernel_initializer.seed == 1
    assert isinstance(clone.bias_initializer, keras.initializers.Ones)
    assert isinstance(clone.kernel_regularizer, keras.regularizers.L1L2)
    np.testing.assert_allclose([clone.kernel_regularizer.l1, clone.kernel_regularizer.l2], [1e-3, 1e-4])
    np.testing.assert_allclose(clone.bias_regularizer.l2, 1e-2)
    np.testing.assert_allclose(clone.activity_regularizer.l1, 1e-5)
    assert isinstance(clone.kernel_constraint, keras.constraints.MaxNorm)
    assert clone.kernel_constraint.max_value == 2.0
    assert isinstance(clone.bias_constraint, keras.constraints.NonNeg)
    assert clone.dropout == 0.25
    assert clone.l2_normalize is True
    assert clone.name == "full_ae"


@pytest.mark.parametrize(
    "output_activation, expected",
    [("same", "same"), (None, "linear"), ("tanh", "tanh")],
)
def test_output_activation_default_follows_activation(output_activation, expected):
    ae = DenseLayerAutoencoder([3], activation="relu", output_activation=output_activation)
    config = ae.get_config()
    assert config["output_activation"] == expected
    clone = DenseLayerAutoencoder.from_config(config)
    wanted = {"same": keras.activations.relu, "linear": keras.activations.linear, "tanh": keras.activations.tanh}
    assert clone.output_activation is wanted[expected]


def test_default_arguments_round_trip():
    ae = DenseLayerAutoencoder(5)
    config = ae.get_config()
    assert config["layer_sizes"] == [5]
    assert config["dropout"] == 0.0 and config["l2_normalize"] is False
    assert DenseLayerAutoencoder.from_config(config).get_config() == config


def test_registered_names_deserialize():
    for layer in (
        full_autoencoder(),
        MaskingNoise(0.3, seed=1),
        SaltAndPepperNoise(0.2, low=-1.0, high=3.0, seed=2),
        AdditiveGaussianNoise(0.5, seed=3),
    ):
        serialized = keras.saving.serialize_keras_object(layer)
        assert serialized["registered_name"] == f"tiedae>{type(layer).__name__}"
        clone = keras.saving.deserialize_keras_object(serialized)
        assert type(clone) is type(layer)
        assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "layer, attributes",
    [
        (MaskingNoise(0.3, seed=1, name="m"), {"rate": 0.3, "seed": 1}),
        (SaltAndPepperNoise(0.2, low=-1.0, high=3.0, seed=2), {"rate": 0.2, "low": -1.0, "high": 3.0, "seed": 2}),
        (AdditiveGaussianNoise(0.5, seed=None), {"stddev": 0.5, "seed": None}),
    ],
    ids=["masking", "salt_and_pepper", "gaussian"],
)
def test_corruption_config_round_trips(layer, attributes):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    for name, value in attributes.items():
        assert getattr(clone, name) == value


def test_dense_transpose_config_round_trips_every_argument():
    dense = keras.layers.Dense(4, name="enc")
    layer = DenseTranspose(
        dense,
        activation="sigmoid",
        use_bias=False,
        bias_initializer="ones",
        bias_regularizer=keras.regularizers.L2(0.1),
        activity_regularizer=keras.regularizers.L1(0.2),
        bias_constraint=keras.constraints.NonNeg(),
        name="dec",
    )
    config = layer.get_config()
    clone = DenseTranspose.from_config(config)
    assert clone.get_config() == config
    assert clone.activation is keras.activations.sigmoid
    assert clone.use_bias is False
    assert isinstance(clone.bias_initializer, keras.initializers.Ones)
    np.testing.assert_allclose(clone.bias_regularizer.l2, 0.1)
    np.testing.assert_allclose(clone.activity_regularizer.l1, 0.2)
    assert isinstance(clone.bias_constraint, keras.constraints.NonNeg)
    # Outside a model's save scope the bound layer comes back as an equal Dense.
    assert isinstance(clone.dense, keras.layers.Dense)
    assert clone.dense.get_config() == dense.get_config()


def every_layer_model():
    """One small model with every layer type of the package in it."""
    inputs = keras.Input((12,), name="x")
    h = MaskingNoise(0.2, seed=1)(inputs)
    h = SaltAndPepperNoise(0.1, low=-1.0, high=1.0, seed=2)(h)
    h = AdditiveGaussianNoise(0.05, seed=3)(h)
    ae = DenseLayerAutoencoder(
        [8, 4],
        activation="tanh",
        output_activation="linear",
        bias_initializer="random_normal",
        kernel_regularizer=keras.regularizers.L2(1e-3),
        dropout=0.1,
        l2_normalize=True,
        name="ae",
    )
    h = ae(h)
    dense = keras.layers.Dense(5, activation="tanh", bias_initializer="random_normal", name="enc")
    reconstruction = DenseTranspose(dense, bias_initializer="random_normal", name="dec")(dense(h))
    code = TiedEncoder(ae, name="encoder_view")(inputs)
    decoded = TiedDecoder(ae, name="decoder_view")(code)
    return keras.Model(inputs, [reconstruction, code, decoded])


def n_params(ae_sizes=(12, 8, 4), dense=(12, 5)):
    kernels = sum(a * b for a, b in zip(ae_sizes[:-1], ae_sizes[1:]))
    biases = sum(ae_sizes[1:]) + sum(ae_sizes[:-1])
    return kernels + biases + dense[0] * dense[1] + dense[1] + dense[0]


def test_every_layer_model_counts_each_variable_once():
    model = every_layer_model()
    assert model.count_params() == n_params()
    assert len(model.trainable_weights) == len({id(w) for w in model.trainable_weights}) == 9


def test_keras_save_load_identical_outputs_and_settings(rng, tmp_path):
    model = every_layer_model()
    model.compile(optimizer="adam", loss=["mse", None, "mse"])
    x = rng.uniform(-1, 1, size=(16, 12)).astype("float32")
    model.fit(x, [x, x], batch_size=8, epochs=1, verbose=0)
    path = os.path.join(tmp_path, "every_layer.keras")
    model.save(path)

    loaded = keras.models.load_model(path)
    for a, b in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)
    assert loaded.count_params() == model.count_params()
    ae = loaded.get_layer("ae")
    # The ancestor's get_config dropped these two, silently resetting them on load.
    assert ae.dropout == 0.1 and ae.l2_normalize is True
    assert loaded.get_layer("encoder_view").autoencoder is ae
    assert loaded.get_layer("decoder_view").autoencoder is ae
    assert loaded.get_layer("dec").dense is loaded.get_layer("enc")
    assert loaded.get_layer("masking_noise").seed == 1
    for original, restored in zip(model.layers, loaded.layers):
        # Through JSON: a saved build_config holds lists where the original has tuples.
        assert plain(original.get_config()) == plain(restored.get_config())


@pytest.mark.parametrize("which", ["encoder", "decoder"])
def test_sub_models_save_and_load(rng, tmp_path, which):
    ae = DenseLayerAutoencoder([6, 3], activation="tanh", bias_initializer="random_normal")
    ae.build((None, 9))
    model = ae.encoder_model() if which == "encoder" else ae.decoder_model()
    x = rng.normal(size=(4, 9 if which == "encoder" else 3)).astype("float32")
    path = os.path.join(tmp_path, f"{which}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.count_params() == ae.count_params()


# Run by a fresh interpreter with another KERAS_BACKEND: load, predict, report.
_LOAD_SCRIPT = """
import json, sys
import numpy as np
import keras
import tiedae  # what a user writes: registers every layer for load_model

model_path, x_path, out_path = sys.argv[1:4]
model = keras.models.load_model(model_path)
# A direct call, not predict(): predict() would also import TensorFlow (slow).
outputs = model(np.load(x_path), training=False)
dec, enc = model.get_layer("dec"), model.get_layer("enc")
np.savez(out_path, *[keras.ops.convert_to_numpy(o) for o in outputs])
print(json.dumps({
    "backend": keras.backend.backend(),
    "count_params": model.count_params(),
    "tied": dec.dense is enc and dec.kernel is enc.kernel,
}))
"""


def test_loads_under_the_other_backends(rng, tmp_path):
    model = every_layer_model()
    model.compile(optimizer="adam", loss=["mse", None, "mse"])
    x = rng.uniform(-1, 1, size=(16, 12)).astype("float32")
    model.fit(x, [x, x], batch_size=8, epochs=1, verbose=0)
    model_path = os.path.join(tmp_path, "model.keras")
    x_path = os.path.join(tmp_path, "x.npy")
    model.save(model_path)
    np.save(x_path, x)
    expected = model.predict(x, verbose=0)

    # Both other backends at once: each run is mostly import time.
    runs = {}
    for backend in BACKENDS:
        if backend == BACKEND:
            continue
        out_path = os.path.join(tmp_path, f"out_{backend}.npz")
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        runs[backend] = (
            out_path,
            subprocess.Popen(
                [sys.executable, "-c", _LOAD_SCRIPT, model_path, x_path, out_path],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    for backend, (out_path, process) in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{backend} failed:\n{stderr[-3000:]}"
        report = json.loads(stdout.strip().splitlines()[-1])
        assert report == {"backend": backend, "count_params": n_params(), "tied": True}
        with np.load(out_path) as loaded:
            outputs = [loaded[f"arr_{i}"] for i in range(len(expected))]
        for want, got in zip(expected, outputs):
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=backend)
