"""Hand-off to supervised models: explicit, verified weight copy; freezing; staged unfreezing."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.conftest import to_numpy
from tiedae.pretraining import (
    StackedDenoisingAutoencoder,
    copy_encoder_layer,
    fit_with_unfreezing,
    pretrained_layers,
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
