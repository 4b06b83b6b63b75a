"""DenseTranspose: a decoder tied to a Dense layer's kernel, before and after save/load."""

import os

import keras
import numpy as np
import pytest

from tests.conftest import to_numpy
from tiedae import DenseTranspose


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_forward(encoder, decoder, x):
    w = to_numpy(encoder.kernel).astype(np.float64)
    h = sigmoid(x @ w + to_numpy(encoder.bias))
    return sigmoid(h @ w.T + to_numpy(decoder.bias))


def tied_model(n_in=784, units=100):
    inputs = keras.Input((n_in,))
    encoder = keras.layers.Dense(units, activation="sigmoid", bias_initializer="random_normal")
    decoder = DenseTranspose(encoder, activation="sigmoid", bias_initializer="random_normal")
    return keras.Model(inputs, decoder(encoder(inputs))), encoder, decoder


def test_one_kernel_counted_once():
    model, encoder, decoder = tied_model()
    assert model.count_params() == 784 * 100 + 100 + 784
    assert decoder.kernel is encoder.kernel
    assert len(model.weights) == len({id(w) for w in model.weights}) == 3
    # The decoder's only own variable is its bias; the kernel is the Dense one.
    own = [w for w in decoder.trainable_weights if all(w is not v for v in encoder.weights)]
    assert [tuple(w.shape) for w in own] == [(784,)]
    assert tuple(model.output.shape) == (None, 784)


def test_forward_matches_numpy(rng):
    model, encoder, decoder = tied_model(12, 5)
    x = rng.uniform(size=(6, 12)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np_forward(encoder, decoder, x), atol=1e-5)


def test_linear_no_bias_rank3(rng):
    dense = keras.layers.Dense(4, use_bias=False)
    dense.build((None, 7))
    decoder = DenseTranspose(dense, use_bias=False)
    z = rng.normal(size=(2, 3, 4)).astype("float32")
    y = to_numpy(decoder(z))
    assert decoder.bias is None and len(decoder.weights) == 1
    np.testing.assert_allclose(y, z @ to_numpy(dense.kernel).T, atol=1e-5)
    assert decoder.compute_output_shape((None, 3, 4)) == (None, 3, 7)


def test_tie_after_training(rng):
    model, encoder, decoder = tied_model(12, 5)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    x = rng.uniform(size=(16, 12)).astype("float32")
    kernel_before = to_numpy(encoder.kernel)
    model.fit(x, x, batch_size=16, epochs=1, verbose=0)
    assert decoder.kernel is encoder.kernel
    assert not np.allclose(kernel_before, to_numpy(encoder.kernel))
    np.testing.assert_allclose(model.predict(x, verbose=0), np_forward(encoder, decoder, x), atol=1e-5)


def test_tie_survives_save_and_load(rng, tmp_path):
    model, encoder, decoder = tied_model(12, 5)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    x = rng.uniform(size=(16, 12)).astype("float32")
    model.fit(x, x, batch_size=16, epochs=1, verbose=0)
    path = os.path.join(tmp_path, "tied.keras")
    model.save(path)

    loaded = keras.models.load_model(path)
    dense = [layer for layer in loaded.layers if isinstance(layer, keras.layers.Dense)]
    transposes = [layer for layer in loaded.layers if isinstance(layer, DenseTranspose)]
    assert len(dense) == 1 and len(transposes) == 1
    dense, transpose = dense[0], transposes[0]
    assert transpose.dense is dense
    assert transpose.kernel is dense.kernel
    assert loaded.count_params() == model.count_params() == 12 * 5 + 5 + 12
    assert len({id(w) for w in loaded.weights}) == 3
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

    # One step on the reloaded model moves encoder and decoder together.
    kernel_before = to_numpy(dense.kernel)
    loaded.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    loaded.fit(x, x, batch_size=16, epochs=1, verbose=0)
    assert not np.allclose(kernel_before, to_numpy(dense.kernel))
    assert transpose.kernel is dense.kernel
    np.testing.assert_array_equal(to_numpy(transpose.kernel), to_numpy(dense.kernel))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), np_forward(dense, transpose, x), atol=1e-5)


# The Dense bias is not read by the decoder: Keras warns, as it should.
@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_decoder_only_model_trains_and_saves_the_kernel(rng, tmp_path):
    dense = keras.layers.Dense(4, bias_initializer="random_normal")
    dense.build((None, 6))
    decoder = DenseTranspose(dense, bias_initializer="random_normal")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, decoder(inputs))
    # The bound Dense layer is tracked: its kernel is trained and saved from here too.
    assert model.count_params() == 6 * 4 + 4 + 6
    assert any(w is dense.kernel for w in model.trainable_weights)

    w0 = to_numpy(dense.kernel).astype(np.float64)
    c0 = to_numpy(decoder.bias).astype(np.float64)
    z = rng.normal(size=(5, 4)).astype("float32")
    t = rng.normal(size=(5, 6)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(z, t, batch_size=5, epochs=1, verbose=0, shuffle=False)
    # Exact SGD step of a loss that reads only the decoder output.
    dy = 2.0 * (z @ w0.T + c0 - t) / t.size
    np.testing.assert_allclose(to_numpy(dense.kernel), w0 - 0.1 * dy.T @ z, atol=1e-5)

    path = os.path.join(tmp_path, "decoder.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(z, verbose=0), model.predict(z, verbose=0))
    assert loaded.count_params() == model.count_params()


def test_kernel_property_is_not_a_copy():
    dense = keras.layers.Dense(3)
    dense.build((None, 5))
    decoder = DenseTranspose(dense)
    decoder.build((None, 3))
    dense.kernel.assign(np.ones((5, 3), "float32"))
    assert decoder.kernel is dense.kernel
    np.testing.assert_array_equal(to_numpy(decoder(np.ones((1, 3), "float32"))), np.full((1, 5), 3.0))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_activation_applied(rng, activation):
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    decoder = DenseTranspose(dense, activation=activation, bias_initializer="random_normal")
    z = rng.normal(size=(7, 3)).astype("float32")
    y = to_numpy(decoder(z))
    pre = z @ to_numpy(dense.kernel).T + to_numpy(decoder.bias)
    ref = np.maximum(pre, 0) if activation == "relu" else np.tanh(pre)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_tie_survives_save_and_load_when_the_decoder_comes_first(rng, tmp_path):
    # The decoder is the first of the two in the model's layer list, so saving
    # meets the Dense layer inside the decoder's config before its own entry.
    dense = keras.layers.Dense(4, bias_initializer="random_normal", name="enc")
    dense.build((None, 6))
    decoder = DenseTranspose(dense, bias_initializer="random_normal", name="dec")
    z, x = keras.Input((4,), name="z"), keras.Input((6,), name="x")
    model = keras.Model([z, x], [decoder(z), dense(x)])
    assert [layer.name for layer in model.layers][-2:] == ["dec", "enc"]
    path = os.path.join(tmp_path, "decoder_first.keras")
    model.save(path)

    loaded = keras.models.load_model(path)
    assert loaded.get_layer("dec").dense is loaded.get_layer("enc")
    assert loaded.count_params() == model.count_params() == 6 * 4 + 4 + 6
    inputs = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(3, 6)).astype("float32")]
    for want, got in zip(model.predict(inputs, verbose=0), loaded.predict(inputs, verbose=0)):
        np.testing.assert_array_equal(got, want)
