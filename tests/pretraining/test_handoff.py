"""Hand-off to supervised models: explicit, verified weight copy; freezing; staged unfreezing."""

import keras
import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits

from tests.conftest import to_numpy
from tiedae.pretraining import (
    ReconstructionModel,
    StackedDenoisingAutoencoder,
    copy_encoder_layer,
    fit_with_unfreezing,
    pretrained_layers,
    unroll,
)


@pytest.fixture(scope="module")
def stack():
    # One stack for the module: these tests only read it (every hand-off copies
    # its weights into new layers), and each pretraining costs a compilation.
    x = load_digits().data[:256].astype(np.float32) / 16.0
    return StackedDenoisingAutoencoder([16, 8], epochs=1, batch_size=64, seed=4, verbose=0).pretrain(x)


def kernels_and_biases(layers):
    return [(to_numpy(layer.kernel), to_numpy(layer.bias)) for layer in layers]


def pretrained_arrays(sda):
    ae = sda.autoencoder_
    return [
        (to_numpy(ae.kernels[k]), to_numpy(ae.encoder_biases[k])) for k in range(len(sda.layer_sizes))
    ]


class RecordAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = kernels_and_biases(pretrained_layers(self.model))


def test_classifier_starts_training_from_exactly_the_pretrained_weights(stack, digits):
    x, y = digits[0][:256], digits[1][:256]
    model = stack.to_classifier(10)
    dense = pretrained_layers(model)
    assert [type(layer) for layer in dense] == [keras.layers.Dense] * 2
    assert [layer.units for layer in dense] == [16, 8]
    recorder = RecordAtStart()
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[recorder])
    for (kernel, bias), (ref_kernel, ref_bias) in zip(recorder.weights, pretrained_arrays(stack)):
        np.testing.assert_array_equal(kernel, ref_kernel)
        np.testing.assert_array_equal(bias, ref_bias)
    # Training then moves them (nothing is frozen by default).
    assert not np.array_equal(to_numpy(dense[0].kernel), pretrained_arrays(stack)[0][0])


def test_classifier_output_is_the_softmax_head_on_the_pretrained_codes(stack, digits):
    x = digits[0][:32]
    model = stack.to_classifier(3, compile=False)
    head = model.get_layer("classifier")
    logits = stack.transform(x) @ to_numpy(head.kernel) + to_numpy(head.bias)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(to_numpy(model(x)), expected, atol=1e-5)


def test_random_init_control_has_the_same_architecture_and_other_weights(stack):
    pretrained = stack.to_classifier(10)
    control = stack.to_classifier(10, pretrained=False)
    assert [w.shape for w in control.weights] == [w.shape for w in pretrained.weights]
    assert [layer.name for layer in control.layers] == [layer.name for layer in pretrained.layers]
    assert not np.array_equal(
        to_numpy(pretrained_layers(control)[0].kernel), pretrained_arrays(stack)[0][0]
    )


def test_a_copy_that_does_not_reproduce_the_values_raises(stack):
    # A float16 layer cannot hold the float32 kernel exactly: the check must notice.
    dense = keras.layers.Dense(16, dtype="float16")
    dense.build((None, 64))
    with pytest.raises(RuntimeError, match="did not reproduce"):
        copy_encoder_layer(stack.autoencoder_, 0, dense)
    wrong = keras.layers.Dense(5)
    wrong.build((None, 64))
    with pytest.raises(ValueError, match=r"shape \(64, 16\)"):
        copy_encoder_layer(stack.autoencoder_, 0, wrong)


def test_frozen_layers_keep_the_pretrained_weights_while_the_head_trains(stack, digits):
    x, y = digits[0][:128], digits[1][:128]
    model = stack.to_classifier(10, freeze=True, dropout=0.2)
    assert [layer.trainable for layer in pretrained_layers(model)] == [False, False]
    assert len(model.trainable_weights) == 2  # the head's kernel and bias
    head_before = to_numpy(model.get_layer("classifier").kernel)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    for (kernel, bias), (ref_kernel, ref_bias) in zip(
        kernels_and_biases(pretrained_layers(model)), pretrained_arrays(stack)
    ):
        np.testing.assert_array_equal(kernel, ref_kernel)
        np.testing.assert_array_equal(bias, ref_bias)
    assert not np.array_equal(to_numpy(model.get_layer("classifier").kernel), head_before)


def test_staged_unfreezing_trains_the_stack_only_after_unfreeze_after_epochs(stack, digits):
    x, y = digits[0][:128], digits[1][:128]
    model = stack.to_classifier(10)
    snapshots = []
    snapshot = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(
            kernels_and_biases(pretrained_layers(model))
        )
    )
    history = fit_with_unfreezing(
        model, x, y, epochs=3, unfreeze_after=2, batch_size=64, verbose=0,
        callbacks=[snapshot], unfreeze_learning_rate=1e-2,
        compile_kwargs=dict(optimizer="adam", loss="sparse_categorical_crossentropy",
                            metrics=["accuracy"]),
    )
    assert len(history["loss"]) == len(history["accuracy"]) == 3
    reference = pretrained_arrays(stack)
    for epoch in (0, 1):  # frozen
        for (kernel, _), (ref_kernel, _) in zip(snapshots[epoch], reference):
            np.testing.assert_array_equal(kernel, ref_kernel)
    assert not np.array_equal(snapshots[2][0][0], reference[0][0])  # unfrozen
    assert all(layer.trainable for layer in pretrained_layers(model))
    assert float(to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-2)


def test_with_nothing_to_freeze_or_change_the_model_is_fitted_as_compiled(stack, digits):
    # No recompilation (Keras's compile config would import TensorFlow on every backend):
    # the compiled optimizer trains on, and a frozen layer still forces the staged path.
    x, y = digits[0][:128], digits[1][:128]
    model = stack.to_classifier(10)
    optimizer = model.optimizer
    history = fit_with_unfreezing(model, x, y, epochs=2, batch_size=64, verbose=0)
    assert model.optimizer is optimizer and int(to_numpy(optimizer.iterations)) == 4
    assert len(history["loss"]) == 2 and fit_with_unfreezing(model, x, y, epochs=0) == {}
    frozen = stack.to_classifier(10, freeze=True)
    optimizer = frozen.optimizer
    fit_with_unfreezing(frozen, x, y, epochs=1, batch_size=64, verbose=0)
    assert frozen.optimizer is not optimizer
    assert all(layer.trainable for layer in pretrained_layers(frozen))


def test_to_model_accepts_any_head_for_regression(stack, digits):
    x = digits[0][:64]
    target = x.mean(axis=1, keepdims=True)
    model = stack.to_model([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    assert model.output_shape == (None, 1)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, target, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="head"):
        stack.to_model([])


def test_handoff_needs_a_pretrained_stack_and_a_compiled_model(stack):
    with pytest.raises(ValueError, match="call `pretrain"):
        StackedDenoisingAutoencoder([4], verbose=0).to_classifier(3)
    with pytest.raises(ValueError, match="n_classes"):
        stack.to_classifier(0)
    with pytest.raises(ValueError, match="Compile the model"):
        fit_with_unfreezing(stack.to_classifier(3, compile=False), np.zeros((4, 64)), np.zeros(4))


# ------------------------------------------------------------------ unroll


@pytest.fixture(scope="module")
def relu_stack():
    # DEC's kind of stack: relu hidden layer, linear code, MSE, a relu decoder for
    # the code layer and a linear one for the input.
    x = load_digits().data[:256].astype(np.float32) / 16.0
    return StackedDenoisingAutoencoder(
        [16, 8], activation=["relu", "linear"], loss="mse",
        reconstruction_activation=["linear", "relu"], epochs=2, batch_size=64, seed=5,
        verbose=0,
    ).pretrain(x)


def np_act(name):
    return {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0.0),
            "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z))}[name]


def stack_arrays(sda):
    ae = sda.autoencoder_
    return [
        tuple(to_numpy(v).astype(np.float64)
              for v in (ae.kernels[k], ae.encoder_biases[k], ae.decoder_biases[k]))
        for k in range(len(sda.layer_sizes))
    ]


def unrolled_dense(autoencoder, n):
    """The unrolled model's Dense layers: `n` encoder layers, then `n` decoder layers."""
    dense = [layer for layer in autoencoder.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 2 * n
    return dense[:n], dense[n:]


@pytest.mark.parametrize("which, activations, decoders", [
    ("stack", ["sigmoid", "sigmoid"], ["sigmoid", "sigmoid"]),
    ("relu_stack", ["relu", "linear"], ["linear", "relu"]),
])
def test_unrolled_autoencoder_computes_what_the_tied_stack_computes(
    which, activations, decoders, request, digits
):
    sda = request.getfixturevalue(which)
    x = digits[0][:100]
    autoencoder, encoder = sda.unroll()
    assert isinstance(autoencoder, ReconstructionModel)
    assert isinstance(encoder, keras.Model)
    np.testing.assert_allclose(to_numpy(autoencoder(x)), sda.reconstruct(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(encoder(x)), sda.transform(x), rtol=1e-5, atol=1e-5)
    # The same in NumPy, from the stack's weights and its (reconstruction) activations.
    arrays = stack_arrays(sda)
    h = x.astype(np.float64)
    for (kernel, bias, _), act in zip(arrays, activations):
        h = np_act(act)(h @ kernel + bias)
    np.testing.assert_allclose(to_numpy(encoder(x)), h, rtol=1e-5, atol=1e-5)
    for (kernel, _, decoder_bias), act in reversed(list(zip(arrays, decoders))):
        h = np_act(act)(h @ kernel.T + decoder_bias)
    np.testing.assert_allclose(to_numpy(autoencoder(x)), h, rtol=1e-5, atol=1e-5)

    # Encoder: copies of the stack's Dense layers; decoder: one Dense per layer, in
    # reverse order, starting from the transposed kernel and the decoder bias.
    n = len(sda.layer_sizes)
    enc_layers, dec_layers = unrolled_dense(autoencoder, n)
    assert [layer.units for layer in enc_layers] == [16, 8]
    assert [layer.units for layer in dec_layers] == [16, 64]
    for k, layer in enumerate(enc_layers):
        np.testing.assert_array_equal(to_numpy(layer.kernel), to_numpy(sda.autoencoder_.kernels[k]))
        np.testing.assert_array_equal(
            to_numpy(layer.bias), to_numpy(sda.autoencoder_.encoder_biases[k])
        )
    for layer, k in zip(dec_layers, reversed(range(n))):
        np.testing.assert_array_equal(
            to_numpy(layer.kernel), to_numpy(sda.autoencoder_.kernels[k]).T
        )
        np.testing.assert_array_equal(
            to_numpy(layer.bias), to_numpy(sda.autoencoder_.decoder_biases[k])
        )
        assert layer.activation is keras.activations.get(decoders[k])
    # The encoder model shares the autoencoder's encoder layers.
    assert {id(v) for v in encoder.weights} == {id(layer.kernel) for layer in enc_layers} | {
        id(layer.bias) for layer in enc_layers
    }
    # The function form gives the same model.
    same, _ = unroll(sda)
    np.testing.assert_array_equal(to_numpy(same(x)), to_numpy(autoencoder(x)))


def test_training_the_unrolled_autoencoder_unties_it_and_leaves_the_stack_alone(
    relu_stack, digits
):
    sda, x = relu_stack, digits[0][:256]
    before = [to_numpy(w) for w in sda.autoencoder_.weights]
    codes, reconstruction = sda.transform(x), sda.reconstruct(x)
    autoencoder, encoder = sda.unroll()
    # Untied: 4 variables per layer (two kernels, two biases) against the stack's 3,
    # none of them the stack's.
    n = len(sda.layer_sizes)
    assert len(sda.autoencoder_.weights) == 3 * n
    assert len(autoencoder.trainable_weights) == 4 * n
    assert not {id(v) for v in autoencoder.weights} & {id(v) for v in sda.autoencoder_.weights}

    autoencoder.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = autoencoder.fit(x, epochs=2, batch_size=64, verbose=0)
    assert len(history.history["loss"]) == 2
    # The stack's own variables did not move.
    for a, b in zip(before, sda.autoencoder_.weights):
        np.testing.assert_array_equal(a, to_numpy(b))
    np.testing.assert_array_equal(sda.transform(x), codes)
    np.testing.assert_array_equal(sda.reconstruct(x), reconstruction)
    # Encoder and decoder kernels were trained apart.
    enc_layers, dec_layers = unrolled_dense(autoencoder, n)
    for layer, k in zip(dec_layers, reversed(range(n))):
        assert not np.allclose(to_numpy(layer.kernel), to_numpy(enc_layers[k].kernel).T, atol=1e-4)
    # The encoder model follows the trained autoencoder, no longer the stack.
    assert not np.allclose(to_numpy(encoder(x)), codes, atol=1e-4)
    h = x
    for layer in enc_layers:
        h = layer(h)
    np.testing.assert_allclose(to_numpy(encoder(x)), to_numpy(h), rtol=1e-5, atol=1e-5)


def test_fit_reconstruction_trains_a_model_on_the_stacks_data_paths(relu_stack, digits):
    sda, x = relu_stack, digits[0][:256]
    losses = {}
    for kind, data in (("dense", x), ("sparse", scipy.sparse.csr_matrix(x))):
        keras.utils.set_random_seed(0)  # the same order of batches for both
        autoencoder, _ = sda.unroll()
        autoencoder.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        losses[kind] = sda.fit_reconstruction(autoencoder, data, epochs=2)["loss"]
    assert len(losses["dense"]) == 2 and losses["dense"][1] < losses["dense"][0]
    np.testing.assert_allclose(losses["sparse"], losses["dense"], rtol=1e-5)
    assert sda.fit_reconstruction(autoencoder, x, epochs=0) == {"loss": []}
    with pytest.raises(ValueError, match="features"):
        sda.fit_reconstruction(autoencoder, x[:, :10], epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        sda.fit_reconstruction(autoencoder, x, epochs=-1)


def test_unroll_needs_a_pretrained_stack():
    with pytest.raises(ValueError, match="call `pretrain"):
        StackedDenoisingAutoencoder([4], verbose=0).unroll()
    with pytest.raises(ValueError, match="call `pretrain"):
        unroll(StackedDenoisingAutoencoder([4], verbose=0))
