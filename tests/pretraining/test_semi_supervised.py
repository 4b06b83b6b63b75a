"""Semi-supervised fine-tuning: the masked loss, the shared two-output model, the training."""

import keras
import numpy as np
import pytest

from tests.conftest import to_numpy
from tiedae.pretraining import (
    StackedDenoisingAutoencoder,
    fit_semi_supervised,
    masked_sparse_categorical_crossentropy,
    to_semi_supervised,
)
from tiedae.pretraining.semi_supervised import (
    UNLABELED,
    masked_sparse_categorical_accuracy,
    mix_labeled_and_unlabeled,
)


@pytest.fixture(scope="module")
def stack():
    from tests.conftest import digits_scaled

    x, _ = digits_scaled()
    return StackedDenoisingAutoencoder(
        [32, 16], epochs=15, batch_size=64, learning_rate=5e-3, seed=0, verbose=0
    ).pretrain(x[:1200])


def test_masked_cross_entropy_is_the_mean_over_labelled_rows(rng):
    probs = rng.dirichlet(np.ones(4), size=6).astype("float32")
    labels = np.array([2, UNLABELED, 0, UNLABELED, 3, 1])
    per_row = to_numpy(masked_sparse_categorical_crossentropy(labels, probs))
    labelled = labels >= 0
    reference = -np.log(probs[np.flatnonzero(labelled), labels[labelled]])
    # Keras averages the per-row values over the batch: that must be the labelled mean.
    assert per_row.mean() == pytest.approx(reference.mean(), rel=1e-5)
    np.testing.assert_array_equal(per_row[~labelled], 0.0)
    none = to_numpy(masked_sparse_categorical_crossentropy(np.full(6, UNLABELED), probs))
    np.testing.assert_array_equal(none, 0.0)


def test_masked_accuracy_counts_the_labelled_rows_only(rng):
    probs = rng.dirichlet(np.ones(4), size=6).astype("float32")
    labels = np.array([2, UNLABELED, 0, UNLABELED, 3, 1])
    per_row = to_numpy(masked_sparse_categorical_accuracy(labels, probs))
    labelled = labels >= 0
    reference = probs[labelled].argmax(axis=1) == labels[labelled]
    assert per_row.mean() == pytest.approx(reference.mean(), rel=1e-6)
    np.testing.assert_array_equal(per_row[~labelled], 0.0)


def test_mixing_repeats_the_labelled_rows_to_the_requested_share(rng):
    x_lab, y_lab = rng.random((10, 3)), np.arange(10) % 3
    x_unlab = rng.random((300, 3))
    x, y = mix_labeled_and_unlabeled(x_lab, y_lab, x_unlab, labeled_fraction=0.25)
    assert len(x) == len(y) == 100 + 300  # 10 rows x 10 repeats, then the 300
    assert np.mean(y >= 0) == pytest.approx(0.25)
    np.testing.assert_array_equal(x[:10], x_lab)
    np.testing.assert_array_equal(y[:10], y_lab)
    np.testing.assert_array_equal(x[100:], x_unlab)
    assert np.all(y[100:] == UNLABELED)
    # Many labelled rows: each still appears at least once.
    x, y = mix_labeled_and_unlabeled(x_unlab, np.zeros(300, int), x_lab, labeled_fraction=0.25)
    assert len(x) == 310 and np.sum(y >= 0) == 300


def test_the_two_outputs_start_from_the_pretrained_stack_and_share_one_kernel_per_layer(stack, digits):
    x = digits[0][:50]
    train_model, classifier = to_semi_supervised(stack, 10)
    outputs = train_model(x)
    # The tied decoder starts as the pretrained deep autoencoder: same reconstruction.
    np.testing.assert_allclose(to_numpy(outputs["reconstruction"]), stack.reconstruct(x), atol=1e-5)
    np.testing.assert_allclose(to_numpy(classifier(x)), to_numpy(outputs["classifier"]), atol=1e-6)
    dense = [train_model.get_layer(f"pretrained_dense_{k}") for k in range(2)]
    decoders = [train_model.get_layer("reconstruction"), train_model.get_layer("decoder_1")]
    for encoder, decoder in zip(dense, decoders):
        assert decoder.kernel is encoder.kernel
    # Kernels counted once: 64x32 + 32x16 + the heads and biases.
    expected = 64 * 32 + 32 * 16 + (32 + 16) + (64 + 32) + (16 * 10 + 10)
    assert train_model.count_params() == expected
    assert {id(v) for v in classifier.weights} <= {id(v) for v in train_model.weights}


def test_random_init_control_does_not_copy_the_stack(stack, digits):
    x = digits[0][:50]
    train_model, _ = to_semi_supervised(stack, 10, pretrained=False)
    assert not np.allclose(to_numpy(train_model(x)["reconstruction"]), stack.reconstruct(x), atol=1e-3)


def test_semi_supervised_fit_learns_from_few_labels_and_keeps_reconstructing(stack, digits):
    x, y = digits
    rng = np.random.default_rng(0)
    few = rng.choice(1200, size=60, replace=False)
    before = stack.reconstruct(x[1200:])
    classifier, history = fit_semi_supervised(
        stack, x[few], y[few], x[:1200], epochs=20, batch_size=64, learning_rate=1e-2,
        reconstruction_weight=1.0, seed=0,
    )
    accuracy = classifier.evaluate(x[1200:], y[1200:], verbose=0)[1]
    assert accuracy > 0.75  # 10 classes, 60 labels (about 0.8 on every backend)
    assert history["reconstruction_loss"][-1] < history["reconstruction_loss"][0]
    # The classifier trains copies: the stack itself is left as pretrained.
    np.testing.assert_array_equal(before, stack.reconstruct(x[1200:]))


def test_reconstruction_weight_changes_the_result(stack, digits):
    x, y = digits
    few = np.arange(40)
    kwargs = dict(epochs=5, batch_size=64, learning_rate=1e-2, seed=1)
    a, _ = fit_semi_supervised(stack, x[few], y[few], x[:600], reconstruction_weight=0.0, **kwargs)
    b, _ = fit_semi_supervised(stack, x[few], y[few], x[:600], reconstruction_weight=1.0, **kwargs)
    c, _ = fit_semi_supervised(stack, x[few], y[few], x[:600], reconstruction_weight=0.0, **kwargs)
    pa, pb, pc = (to_numpy(m(x[1200:1300])) for m in (a, b, c))
    np.testing.assert_allclose(pa, pc, atol=1e-5)  # same seed, same run
    assert np.abs(pa - pb).max() > 5e-3  # vs < 1e-5 between the two identical runs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(y_labeled=np.arange(3)), "one label per row"),
        (dict(y_labeled=-np.ones(40, int)), "integer labels"),
        (dict(y_labeled=np.linspace(0, 1, 40)), "integer labels"),
        (dict(n_classes=3), "but `n_classes` is 3"),
        (dict(labeled_fraction=1.0), "labeled_fraction"),
        (dict(reconstruction_weight=-1), "reconstruction_weight"),
        (dict(epochs=0), "epochs"),
        (dict(x_unlabeled=np.zeros((5, 7), "float32")), "x_unlabeled"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(stack, digits, kwargs, message):
    x, y = digits
    arguments = dict(x_labeled=x[:40], y_labeled=y[:40], x_unlabeled=x[:100])
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("`", ".")):
        fit_semi_supervised(stack, **arguments)


def test_an_unfitted_stack_is_refused(digits):
    x, y = digits
    with pytest.raises(ValueError, match="not pretrained yet"):
        fit_semi_supervised(StackedDenoisingAutoencoder([4]), x[:10], y[:10], x[:20])
    keras.backend.clear_session()
