"""mixed_bfloat16: float32 variables, bfloat16 compute, close to the float32 results.

The autouse fixture in conftest resets the policy to float32 after each test.
"""

import keras
import numpy as np

from tests.conftest import to_numpy
from tiedae import AdditiveGaussianNoise, DenseLayerAutoencoder, DenseTranspose, MaskingNoise, SaltAndPepperNoise

BF16_ATOL = 3e-2  # bfloat16 keeps 8 significant bits: ~4e-3 relative per op


def dtype_of(x):
    return keras.backend.standardize_dtype(x.dtype)


def autoencoder_model(**kwargs):
    ae = DenseLayerAutoencoder([8, 4], activation="tanh", output_activation="sigmoid", **kwargs)
    return keras.Sequential([keras.Input((12,)), ae]), ae


def test_autoencoder_variables_float32_outputs_bfloat16(rng):
    x = rng.uniform(size=(32, 12)).astype("float32")
    reference, ref_ae = autoencoder_model(bias_initializer="random_normal", l2_normalize=True)
    ref_out = to_numpy(reference(x))
    ref_code = to_numpy(ref_ae.encode(x))

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model, ae = autoencoder_model(l2_normalize=True)
    model.set_weights(reference.get_weights())
    assert ae.compute_dtype == "bfloat16" and ae.variable_dtype == "float32"
    assert all(dtype_of(w) == "float32" for w in ae.weights)
    out, code = model(x), ae.encode(x)
    assert dtype_of(out) == dtype_of(code) == "bfloat16"
    assert dtype_of(ae.decode(code)) == "bfloat16"
    out32 = to_numpy(keras.ops.cast(out, "float32"))
    code32 = to_numpy(keras.ops.cast(code, "float32"))
    np.testing.assert_allclose(out32, ref_out, atol=BF16_ATOL)
    np.testing.assert_allclose(code32, ref_code, atol=BF16_ATOL)
    np.testing.assert_allclose(np.linalg.norm(code32, axis=-1), 1.0, atol=BF16_ATOL)


def test_autoencoder_fit_lowers_the_loss(rng):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model, ae = autoencoder_model(dropout=0.1)
    corrupted = keras.Sequential([keras.Input((12,)), MaskingNoise(0.2, seed=1), model])
    corrupted.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    # Low-rank data in (0, 1) that a 4-unit code can capture.
    x = 1 / (1 + np.exp(-(rng.normal(size=(64, 3)) @ rng.normal(size=(3, 12)))))
    x = x.astype("float32")
    model.compile(loss="binary_crossentropy")  # only to evaluate the clean loss
    before = model.evaluate(x, x, verbose=0)
    history = corrupted.fit(x, x, batch_size=16, epochs=15, verbose=0)
    after = model.evaluate(x, x, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert after < 0.9 * before
    # Training kept the master weights in float32, the tie intact.
    assert all(dtype_of(w) == "float32" for w in ae.weights)
    assert len(ae.kernels) == 2


def test_dense_transpose_under_mixed_precision(rng):
    x = rng.uniform(size=(16, 10)).astype("float32")

    def build():
        inputs = keras.Input((10,))
        dense = keras.layers.Dense(4, activation="sigmoid")
        decoder = DenseTranspose(dense, activation="sigmoid", bias_initializer="random_normal")
        return keras.Model(inputs, decoder(dense(inputs))), dense, decoder

    reference, _, _ = build()
    ref_out = to_numpy(reference(x))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model, dense, decoder = build()
    model.set_weights(reference.get_weights())
    assert all(dtype_of(w) == "float32" for w in model.weights)
    assert decoder.kernel is dense.kernel
    out = model(x)
    assert dtype_of(out) == "bfloat16"
    np.testing.assert_allclose(to_numpy(keras.ops.cast(out, "float32")), ref_out, atol=BF16_ATOL)

    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    before = model.evaluate(x, x, verbose=0)
    model.fit(x, x, batch_size=16, epochs=10, verbose=0)
    assert model.evaluate(x, x, verbose=0) < before
    assert dtype_of(dense.kernel) == "float32" and decoder.kernel is dense.kernel


def test_corruption_keeps_bfloat16(rng):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    x = keras.ops.cast(rng.uniform(0.1, 0.9, size=(100, 100)).astype("float32"), "bfloat16")
    for layer, check in (
        (MaskingNoise(0.5, seed=1), lambda y: abs(np.mean(y == 0) - 0.5) < 0.02),
        (SaltAndPepperNoise(0.5, seed=1), lambda y: abs(np.mean((y == 0) | (y == 1)) - 0.5) < 0.02),
        (AdditiveGaussianNoise(0.5, seed=1), lambda y: abs(np.std(y - x_np) / 0.5 - 1) < 0.05),
    ):
        x_np = to_numpy(keras.ops.cast(x, "float32"))
        y = layer(x, training=True)
        assert dtype_of(y) == "bfloat16", type(layer).__name__
        assert check(to_numpy(keras.ops.cast(y, "float32"))), type(layer).__name__
        np.testing.assert_array_equal(to_numpy(keras.ops.cast(layer(x), "float32")), x_np)
