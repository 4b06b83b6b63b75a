"""Conv2DLayerAutoencoder: NumPy reference, exact adjoint, shapes, tie, training, saving."""

import itertools

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import tiedae
from tests.conftest import to_numpy
from tiedae import MaskingNoise
from tiedae.layers.conv_autoencoder import Conv2DLayerAutoencoder

NP_ACTIVATIONS = {
    None: lambda x: x,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


# --- NumPy reference, written independently of Keras's padding rules ---------


def np_geometry(size, kernel, stride, padding):
    """Output length and padding before the input (TensorFlow's "same" convention)."""
    if padding == "valid":
        return (size - kernel) // stride + 1, 0
    out = -(-size // stride)
    return out, max((out - 1) * stride + kernel - size, 0) // 2


def np_conv(x, w, strides, padding):
    """Cross-correlation of x (b, h, w, c_in) with w (kh, kw, c_in, c_out), by explicit loops."""
    b, height, width, _ = x.shape
    kh, kw, c_in, c_out = w.shape
    (oh, ph), (ow, pw) = (np_geometry(height, kh, strides[0], padding),
                          np_geometry(width, kw, strides[1], padding))  # fmt: skip
    padded = np.zeros((b, height + 2 * kh + strides[0], width + 2 * kw + strides[1], c_in))
    padded[:, ph:ph + height, pw:pw + width] = x
    out = np.zeros((b, oh, ow, c_out))
    for i in range(oh):
        for j in range(ow):
            patch = padded[:, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw]
            out[:, i, j] = np.einsum("bhwc,hwcd->bd", patch, w)
    return out


def np_conv_transpose(y, w, strides, padding, size):
    """The transpose of `np_conv` onto an image of spatial `size`: scatter-add every kernel copy."""
    b, oh, ow, _ = y.shape
    kh, kw, c_in, _ = w.shape
    (_, ph), (_, pw) = (np_geometry(size[0], kh, strides[0], padding),
                        np_geometry(size[1], kw, strides[1], padding))  # fmt: skip
    padded = np.zeros((b, size[0] + 2 * kh + strides[0] * (oh + 1), size[1] + 2 * kw + strides[1] * (ow + 1), c_in))
    for i in range(oh):
        for j in range(ow):
            padded[:, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw] += np.einsum(
                "bd,hwcd->bhwc", y[:, i, j], w
            )
    return padded[:, ph:ph + size[0], pw:pw + size[1]]


def np_autoencoder(layer, x, activation, output_activation):
    kernels = [to_numpy(w).astype(np.float64) for w in layer.kernels]
    enc = [to_numpy(b).astype(np.float64) for b in layer.encoder_biases]
    dec = [to_numpy(b).astype(np.float64) for b in layer.decoder_biases]
    act, out = NP_ACTIVATIONS[activation], NP_ACTIVATIONS[output_activation]
    h, sizes = np.asarray(x, np.float64), []
    for w, b in zip(kernels, enc):
        sizes.append(h.shape[1:3])
        h = act(np_conv(h, w, layer.strides, layer.padding) + b)
    code = h
    for k in reversed(range(len(kernels))):
        h = np_conv_transpose(h, kernels[k], layer.strides, layer.padding, sizes[k]) + dec[k]
        h = out(h) if k == 0 else act(h)
    return code, h


# --- tests --------------------------------------------------------------------

CASES = [
    ((8, 8), 3, 2, "same"),
    ((7, 5), 3, 2, "same"),  # odd sizes: uneven "same" padding
    ((6, 9), (3, 2), (2, 1), "same"),
    ((7, 6), (3, 2), (2, 1), "valid"),  # rows left over by the stride
    ((9, 9), 2, 3, "valid"),  # stride larger than the kernel
]


@pytest.mark.parametrize("size, kernel_size, strides, padding", CASES)
def test_forward_matches_numpy_reference(rng, size, kernel_size, strides, padding):
    layer = Conv2DLayerAutoencoder(
        [3, 2], kernel_size=kernel_size, strides=strides, padding=padding,
        activation="tanh", output_activation="sigmoid", bias_initializer="random_normal",
    )  # fmt: skip
    x = rng.normal(size=(2, *size, 2)).astype(np.float32)
    y = to_numpy(layer(x))
    code, reconstruction = np_autoencoder(layer, x, "tanh", "sigmoid")
    assert y.shape == x.shape
    np.testing.assert_allclose(y, reconstruction, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(layer.encode(x)), code, rtol=1e-5, atol=1e-5)
    assert tuple(layer.code_shape) == code.shape[1:]


@pytest.mark.parametrize("size, kernel_size, strides, padding", [CASES[1], CASES[3], CASES[4]])
def test_linear_decoder_is_the_exact_adjoint_of_the_encoder(rng, size, kernel_size, strides, padding):
    # <encode(x), y> == <x, decode(y)> for a linear layer without biases: the tie is a true transpose.
    layer = Conv2DLayerAutoencoder([4], kernel_size=kernel_size, strides=strides, padding=padding, use_bias=False)
    x = rng.normal(size=(3, *size, 2)).astype(np.float32)
    layer.build(x.shape)
    code = to_numpy(layer.encode(x))
    y = rng.normal(size=code.shape).astype(np.float32)
    lhs = np.sum(code.astype(np.float64) * y)
    rhs = np.sum(x.astype(np.float64) * to_numpy(layer.decode(y)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4)


def test_output_shape_equals_input_shape_for_every_accepted_combination():
    accepted = refused = 0
    h, w = 6, 7
    for k, s, padding in itertools.product([2, 3], [1, 2, 3], ["same", "valid"]):
        layer = Conv2DLayerAutoencoder([1, 1], kernel_size=k, strides=s, padding=padding)
        try:
            layer.build((None, h, w, 1))
        except ValueError as error:
            assert padding == "valid" and "needs at least the kernel's size" in str(error)
            refused += 1
            continue
        accepted += 1
        assert tuple(to_numpy(layer(np.ones((1, h, w, 1), np.float32))).shape) == (1, h, w, 1)
    assert accepted == 10 and refused == 2  # "valid", 3x3 kernels, strides 2-3: too small


def test_refuses_inputs_that_cannot_round_trip_and_bad_arguments():
    with pytest.raises(ValueError, match=r"convolution 1 receives spatial size \(2, 2\).*padding='valid'"):
        Conv2DLayerAutoencoder([2, 2], kernel_size=3, strides=3, padding="valid").build((None, 8, 8, 1))
    with pytest.raises(ValueError, match="needs known height, width and channels"):
        keras.Model(inputs := keras.Input(shape=(None, None, 1)), Conv2DLayerAutoencoder([2])(inputs))
    with pytest.raises(ValueError, match="padding"):
        Conv2DLayerAutoencoder([2], padding="causal")
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2DLayerAutoencoder([2], kernel_size=(3, 3, 3))
    with pytest.raises(ValueError, match="strides"):
        Conv2DLayerAutoencoder([2], strides=0)
    with pytest.raises(ValueError, match="filters"):
        Conv2DLayerAutoencoder([])
    layer = Conv2DLayerAutoencoder([2], strides=2)
    layer.build((None, 6, 6, 1))
    with pytest.raises(ValueError, match=r"built for codes of shape \(batch, 3, 3, 2\)"):
        layer.decode(np.zeros((1, 4, 4, 2), np.float32))


def test_one_kernel_variable_per_convolution_and_separate_biases():
    layer = Conv2DLayerAutoencoder([32, 64], kernel_size=3, strides=2)
    layer.build((None, 28, 28, 1))
    assert [tuple(w.shape) for w in layer.kernels] == [(3, 3, 1, 32), (3, 3, 32, 64)]
    assert [tuple(b.shape) for b in layer.encoder_biases] == [(32,), (64,)]
    assert [tuple(b.shape) for b in layer.decoder_biases] == [(1,), (32,)]
    assert len(layer.trainable_weights) == 6 and not layer.non_trainable_weights
    assert layer.count_params() == 3 * 3 * 1 * 32 + 3 * 3 * 32 * 64 + (32 + 64) + (1 + 32)
    assert layer.code_shape == (7, 7, 64)


def test_trains_end_to_end_on_digits_behind_masking_noise():
    digits = load_digits().data[:256].astype(np.float32) / 16.0
    x = digits.reshape(-1, 8, 8, 1)
    inputs = keras.Input(shape=(8, 8, 1))
    layer = Conv2DLayerAutoencoder(
        [4, 8], kernel_size=3, strides=2, activation="relu", output_activation="sigmoid"
    )
    model = keras.Model(inputs, layer(MaskingNoise(0.25, seed=0)(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    kernels_before = [to_numpy(w).copy() for w in layer.kernels]
    losses = model.fit(x, x, batch_size=32, epochs=5, verbose=0).history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    for w, w0 in zip(layer.kernels, kernels_before):
        assert not np.allclose(to_numpy(w), w0)


def full_layer():
    return Conv2DLayerAutoencoder(
        [3, 2],
        kernel_size=(3, 2),
        strides=(2, 1),
        padding="valid",
        activation="relu",
        output_activation="sigmoid",
        use_bias=True,
        kernel_initializer=keras.initializers.HeNormal(seed=1),
        bias_initializer="random_normal",
        kernel_regularizer=keras.regularizers.L2(1e-3),
        bias_regularizer=keras.regularizers.L1(1e-2),
        activity_regularizer=keras.regularizers.L1(1e-5),
        kernel_constraint=keras.constraints.MaxNorm(2.0),
        bias_constraint=keras.constraints.NonNeg(),
        name="full_conv",
    )


def test_config_round_trips_every_argument():
    layer = full_layer()
    config = layer.get_config()
    clone = Conv2DLayerAutoencoder.from_config(config)
    assert clone.get_config() == config
    assert clone.filters == [3, 2] and clone.kernel_size == (3, 2) and clone.strides == (2, 1)
    assert clone.padding == "valid" and clone.use_bias is True
    assert clone.activation is keras.activations.relu
    assert clone.output_activation is keras.activations.sigmoid
    assert isinstance(clone.kernel_constraint, keras.constraints.MaxNorm)
    assert isinstance(clone.bias_constraint, keras.constraints.NonNeg)
    assert clone.kernel_regularizer.l2 == pytest.approx(1e-3)
    assert clone.name == "full_conv"
    assert tiedae.Conv2DLayerAutoencoder is Conv2DLayerAutoencoder
    same = Conv2DLayerAutoencoder([2], activation="tanh")
    assert Conv2DLayerAutoencoder.from_config(same.get_config()).output_activation is keras.activations.tanh


def test_save_and_load_give_identical_outputs(rng, tmp_path):
    inputs = keras.Input(shape=(9, 7, 2))
    layer = full_layer()
    model = keras.Model(inputs, layer(MaskingNoise(0.1, seed=0)(inputs)))
    x = rng.random((3, 9, 7, 2)).astype(np.float32)
    path = tmp_path / "conv.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))
    restored = loaded.get_layer("full_conv")
    assert restored.get_config() == layer.get_config()
    assert len(restored.kernels) == 2 and restored.code_shape == layer.code_shape


def test_sub_models_share_variables_and_compose_to_the_layer(rng):
    layer = Conv2DLayerAutoencoder([3, 4], strides=2, activation="tanh")
    x = rng.normal(size=(2, 7, 6, 1)).astype(np.float32)
    layer(x)
    encoder, decoder = layer.encoder_model(), layer.decoder_model()
    ids = {id(v) for v in layer.weights}
    assert {id(v) for v in encoder.weights} == ids == {id(v) for v in decoder.weights}
    assert tuple(encoder.output.shape) == (None, 2, 2, 4)
    assert tuple(decoder.output.shape) == (None, 7, 6, 1)
    # Plain lists and float64 arrays are accepted by encode/decode.
    codes = to_numpy(encoder(x))
    np.testing.assert_allclose(to_numpy(layer.encode(x.astype(np.float64).tolist())), codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(layer.decode(codes.tolist())), to_numpy(decoder(codes)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(decoder(encoder(x))), to_numpy(layer(x)), rtol=1e-5, atol=1e-6)
