"""DenseLayerAutoencoder: forward pass against NumPy, the weight tie, dropout, sub-models."""

import io
from contextlib import redirect_stdout

import keras
import numpy as np
import pytest

from tests.conftest import to_numpy
from tiedae import DenseLayerAutoencoder

NP_ACTIVATIONS = {
    None: lambda x: x,
    "linear": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
}


def np_weights(ae):
    kernels = [to_numpy(w).astype(np.float64) for w in ae.kernels]
    enc = [to_numpy(b).astype(np.float64) for b in ae.encoder_biases]
    dec = [to_numpy(b).astype(np.float64) for b in ae.decoder_biases]
    return kernels, enc, dec


def np_encode(ae, x, activation, l2_normalize=False):
    """Reference encoder from the layer's own (current) weights."""
    kernels, enc, _ = np_weights(ae)
    h = np.asarray(x, np.float64)
    for k, w in enumerate(kernels):
        h = h @ w + (enc[k] if enc else 0.0)
        h = NP_ACTIVATIONS[activation](h)
    if l2_normalize:
        norm = np.sqrt(np.sum(h**2, axis=-1, keepdims=True))
        h = h / np.maximum(norm, 1e-6)
    return h


def np_decode(ae, z, activation, output_activation):
    """Reference decoder: the encoder kernels transposed, in reverse order."""
    kernels, _, dec = np_weights(ae)
    h = np.asarray(z, np.float64)
    for k in reversed(range(len(kernels))):
        h = h @ kernels[k].T + (dec[k] if dec else 0.0)
        act = output_activation if k == 0 else activation
        h = NP_ACTIVATIONS[act](h)
    return h


def random_bias_ae(layer_sizes, **kwargs):
    # Non-zero biases so that a bias mix-up (encoder vs decoder) shows.
    return DenseLayerAutoencoder(layer_sizes, bias_initializer="random_normal", **kwargs)


@pytest.mark.parametrize(
    "activation, output_activation, use_bias",
    [
        ("tanh", "same", True),
        ("relu", "sigmoid", True),
        ("sigmoid", "linear", False),
        (None, "same", True),
    ],
)
def test_forward_matches_numpy(rng, activation, output_activation, use_bias):
    ae = random_bias_ae(
        [7, 5, 3],
        activation=activation,
        output_activation=output_activation,
        use_bias=use_bias,
    )
    x = rng.normal(size=(6, 9)).astype("float32")
    y = to_numpy(ae(x))
    out_act = activation if output_activation == "same" else output_activation

    code = np_encode(ae, x, activation)
    np.testing.assert_allclose(to_numpy(ae.encode(x)), code, atol=1e-5)
    z = rng.normal(size=(6, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(ae.decode(z)), np_decode(ae, z, activation, out_act), atol=1e-5)
    np.testing.assert_allclose(y, np_decode(ae, code, activation, out_act), atol=1e-5)
    assert len(ae.encoder_biases) == len(ae.decoder_biases) == (3 if use_bias else 0)


def test_l2_normalize_gives_unit_norm_codes(rng):
    ae = random_bias_ae([6, 4], activation="tanh", l2_normalize=True)
    x = rng.normal(size=(8, 10)).astype("float32")
    ae.build(x.shape)
    code = to_numpy(ae.encode(x))
    np.testing.assert_allclose(np.linalg.norm(code, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(code, np_encode(ae, x, "tanh", l2_normalize=True), atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(ae(x)), np_decode(ae, code, "tanh", "tanh"), atol=1e-5
    )


def test_l2_normalize_zero_code_stays_zero_with_finite_gradient():
    # Zero input and zero encoder biases give a zero pre-normalisation code:
    # x / ||x|| would be NaN here (the ancestor's bug).
    ae = DenseLayerAutoencoder([5, 3], activation="tanh", l2_normalize=True)
    x = np.zeros((4, 8), "float32")
    ae.build(x.shape)
    code = to_numpy(ae.encode(x))
    np.testing.assert_array_equal(code, np.zeros((4, 3), "float32"))

    model = keras.Sequential([keras.Input((8,)), ae])
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    target = np.full((4, 8), 0.5, "float32")
    history = model.fit(x, target, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    for w in ae.weights:
        assert np.all(np.isfinite(to_numpy(w))), w.path
    # The gradient did flow: the decoder output bias moved towards the target.
    assert not np.allclose(to_numpy(ae.decoder_biases[0]), 0.0)


def test_rank3_inputs_act_on_last_axis(rng):
    ae = random_bias_ae([5, 2], activation="tanh", output_activation="linear")
    x = rng.normal(size=(2, 3, 7)).astype("float32")
    y = to_numpy(ae(x))
    assert y.shape == (2, 3, 7)
    code = to_numpy(ae.encode(x))
    assert code.shape == (2, 3, 2)
    ref_code = np_encode(ae, x.reshape(6, 7), "tanh")
    np.testing.assert_allclose(code.reshape(6, 2), ref_code, atol=1e-5)
    np.testing.assert_allclose(
        y.reshape(6, 7), np_decode(ae, ref_code, "tanh", "linear"), atol=1e-5
    )
    # Symbolic shapes agree with the eager ones.
    inputs = keras.Input((3, 7))
    assert tuple(ae(inputs).shape) == (None, 3, 7)
    assert ae.compute_code_shape((None, 3, 7)) == (None, 3, 2)


class SubclassedAutoencoderModel(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.autoencoder = random_bias_ae([6, 3], activation="tanh", output_activation="sigmoid")

    def call(self, inputs, training=None):
        return self.autoencoder(inputs, training=training)


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_in_every_model_kind(rng, kind):
    if kind == "sequential":
        ae = random_bias_ae([6, 3], activation="tanh", output_activation="sigmoid")
        model = keras.Sequential([keras.Input((10,)), ae])
    elif kind == "functional":
        ae = random_bias_ae([6, 3], activation="tanh", output_activation="sigmoid")
        inputs = keras.Input((10,))
        model = keras.Model(inputs, ae(inputs))
    else:
        model = SubclassedAutoencoderModel()
        model(np.zeros((1, 10), "float32"))
        ae = model.autoencoder
    x = rng.normal(size=(5, 10)).astype("float32")
    ref = np_decode(ae, np_encode(ae, x, "tanh"), "tanh", "sigmoid")
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, atol=1e-5)
    assert len(model.trainable_weights) == 6
    # It trains in each kind and stays tied: the output still matches the reference.
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(x, np.clip(x, 0, 1), batch_size=5, epochs=1, verbose=0)
    ref = np_decode(ae, np_encode(ae, x, "tanh"), "tanh", "sigmoid")
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, atol=1e-5)


def test_parameter_count_and_tie_1000_100_50_20():
    inputs = keras.Input((1000,))
    ae = DenseLayerAutoencoder([100, 50, 20], activation="tanh")
    outputs = ae(inputs)
    model = keras.Model(inputs, outputs)

    kernel_params = 1000 * 100 + 100 * 50 + 50 * 20
    encoder_bias = 100 + 50 + 20
    decoder_bias = 1000 + 100 + 50
    expected = kernel_params + encoder_bias + decoder_bias
    assert model.count_params() == expected == 107320
    assert tuple(outputs.shape) == (None, 1000)
    assert len(ae.kernels) == 3
    assert [tuple(k.shape) for k in ae.kernels] == [(1000, 100), (100, 50), (50, 20)]
    assert [tuple(b.shape) for b in ae.encoder_biases] == [(100,), (50,), (20,)]
    assert [tuple(b.shape) for b in ae.decoder_biases] == [(1000,), (100,), (50,)]
    kernels = [w for w in model.weights if len(w.shape) == 2]
    assert len(kernels) == 3
    assert sum(int(np.prod(w.shape)) for w in kernels) == kernel_params
    assert len({id(w) for w in model.weights}) == len(model.weights) == 9
    assert ae.input_dim == 1000 and ae.code_size == 20

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        model.summary(line_length=120)
    assert "107,320" in buffer.getvalue()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_tie_holds_after_an_optimizer_step(rng, optimizer):
    ae = random_bias_ae([6, 4], activation="tanh", output_activation="linear")
    model = keras.Sequential([keras.Input((8,)), ae])
    optimizer = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": 0.1}})
    model.compile(optimizer=optimizer, loss="mse")
    x = rng.normal(size=(16, 8)).astype("float32")
    kernels_before = [to_numpy(k) for k in ae.kernels]
    variables_before = list(ae.kernels)
    model.fit(x, x, batch_size=16, epochs=1, verbose=0, shuffle=False)

    assert all(a is b for a, b in zip(ae.kernels, variables_before))
    for before, after in zip(kernels_before, ae.kernels):
        assert not np.allclose(before, to_numpy(after))
    # decode() uses exactly the updated kernels, transposed.
    z = rng.normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(ae.decode(z)), np_decode(ae, z, "tanh", "linear"), atol=1e-5
    )
    np.testing.assert_allclose(
        model.predict(x, verbose=0),
        np_decode(ae, np_encode(ae, x, "tanh"), "tanh", "linear"),
        atol=1e-5,
    )


# The encoder bias is not read by a decoder-only loss: Keras warns, as it should.
@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_decoder_only_loss_reaches_the_shared_kernel(rng):
    # A loss that reads only decode(z) for constant z must update the kernel that
    # the encoder uses, by exactly the SGD step of the transposed kernel.
    ae = DenseLayerAutoencoder([3], bias_initializer="random_normal")
    ae.build((None, 5))
    decoder = ae.decoder_model()
    encoder = ae.encoder_model()
    w0 = to_numpy(ae.kernels[0]).astype(np.float64)
    c0 = to_numpy(ae.decoder_biases[0]).astype(np.float64)
    b0 = to_numpy(ae.encoder_biases[0])
    z = rng.normal(size=(4, 3)).astype("float32")
    t = rng.normal(size=(4, 5)).astype("float32")

    lr = 0.1
    decoder.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    decoder.fit(z, t, batch_size=4, epochs=1, verbose=0, shuffle=False)

    y = z @ w0.T + c0
    dy = 2.0 * (y - t) / y.size  # mse: mean over features and batch
    expected_w = w0 - lr * dy.T @ z
    np.testing.assert_allclose(to_numpy(ae.kernels[0]), expected_w, atol=1e-5)
    np.testing.assert_allclose(to_numpy(ae.decoder_biases[0]), c0 - lr * dy.sum(0), atol=1e-5)
    # The encoder bias is not read by the loss; the encoder sees the new kernel.
    np.testing.assert_array_equal(to_numpy(ae.encoder_biases[0]), b0)
    x = rng.normal(size=(2, 5)).astype("float32")
    np.testing.assert_allclose(
        encoder.predict(x, verbose=0), x @ expected_w + b0, atol=1e-5
    )


def test_sub_models_share_variables(rng):
    ae = random_bias_ae([6, 4], activation="tanh")
    ae.build((None, 9))
    encoder, decoder = ae.encoder_model(), ae.decoder_model()
    ids = {id(w) for w in ae.weights}
    assert {id(w) for w in encoder.weights} == ids
    assert {id(w) for w in decoder.weights} == ids
    assert encoder.count_params() == decoder.count_params() == ae.count_params()
    assert tuple(encoder.output.shape) == (None, 4)
    assert tuple(decoder.output.shape) == (None, 9)

    # A change made in the layer shows in the sub-models.
    ae.kernels[0].assign(to_numpy(ae.kernels[0]) * 2.0)
    ae.decoder_biases[1].assign(np.ones(6, "float32"))
    x = rng.normal(size=(3, 9)).astype("float32")
    z = rng.normal(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(encoder.predict(x, verbose=0), np_encode(ae, x, "tanh"), atol=1e-5)
    np.testing.assert_allclose(
        decoder.predict(z, verbose=0), np_decode(ae, z, "tanh", "tanh"), atol=1e-5
    )


def test_dropout_never_touches_the_code_at_inference(rng):
    ae = random_bias_ae([8, 6, 4], activation="tanh", dropout=0.5)
    x = rng.normal(size=(32, 10)).astype("float32")
    ae.build(x.shape)
    ref_code = np_encode(ae, x, "tanh")
    ref_out = np_decode(ae, ref_code, "tanh", "tanh")
    np.testing.assert_allclose(to_numpy(ae.encode(x)), ref_code, atol=1e-5)
    np.testing.assert_allclose(to_numpy(ae.encode(x, training=False)), ref_code, atol=1e-5)
    np.testing.assert_allclose(to_numpy(ae(x)), ref_out, atol=1e-5)
    np.testing.assert_allclose(to_numpy(ae(x, training=False)), ref_out, atol=1e-5)
    # In training the hidden units are dropped, so the reconstruction changes.
    assert not np.allclose(to_numpy(ae(x, training=True)), ref_out, atol=1e-3)


def test_dropout_is_never_applied_to_the_returned_code(rng):
    # With one encoder layer there is no hidden layer before the code, so even
    # in training encode() must equal the dropout-free reference...
    ae = random_bias_ae([6], activation="tanh", dropout=0.5)
    x = rng.normal(size=(32, 10)).astype("float32")
    ae.build(x.shape)
    ref_code = np_encode(ae, x, "tanh")
    np.testing.assert_allclose(to_numpy(ae.encode(x, training=True)), ref_code, atol=1e-5)
    # ...while the code is dropped on its way into the decoder.
    ref_out = np_decode(ae, ref_code, "tanh", "tanh")
    assert not np.allclose(to_numpy(ae(x, training=True)), ref_out, atol=1e-3)


def test_kernel_regularizer_counted_once_per_tied_kernel():
    ae = DenseLayerAutoencoder([5, 3], kernel_regularizer=keras.regularizers.L2(0.1))
    ae.build((None, 7))
    assert len(ae.losses) == 2
    expected = sum(0.1 * np.sum(to_numpy(k).astype(np.float64) ** 2) for k in ae.kernels)
    np.testing.assert_allclose(float(to_numpy(keras.ops.sum(ae.losses))), expected, rtol=1e-5)


def test_kernel_constraint_applied_to_shared_kernel(rng):
    ae = DenseLayerAutoencoder([4], kernel_constraint="non_neg", kernel_initializer="random_normal")
    model = keras.Sequential([keras.Input((6,)), ae])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = rng.normal(size=(8, 6)).astype("float32")
    model.fit(x, x, batch_size=8, epochs=1, verbose=0)
    assert np.all(to_numpy(ae.kernels[0]) >= 0)


def test_encode_and_decode_accept_lists_and_float64(rng):
    ae = random_bias_ae([4, 2], activation="tanh")
    ae.build((None, 5))
    x = rng.normal(size=(3, 5))  # float64
    code = ae.encode(x.tolist())
    assert keras.backend.standardize_dtype(code.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(code), np_encode(ae, x, "tanh"), atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(ae.decode(to_numpy(code).tolist())),
        to_numpy(ae.decode(code)),
        atol=1e-6,
    )
