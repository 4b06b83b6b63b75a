import keras
import numpy as np
import pytest

from tests.conftest import digits_scaled
from tiedae.pretraining.convolutional import pretrain_conv_stack


@pytest.fixture(scope="module")
def images():
    return digits_scaled()[0][:192].reshape(-1, 8, 8, 1)


@pytest.fixture(scope="module")
def pretrained(images):
    return pretrain_conv_stack(images, [4, 6], kernel_size=3, strides=2, epochs=3, batch_size=64,
                               learning_rate=1e-2, seed=1)


def test_each_block_learns_and_the_deep_autoencoder_carries_its_weights(images, pretrained):
    deep, histories = pretrained
    assert len(histories) == 2
    for history in histories:
        assert history["loss"][-1] < history["loss"][0]
    assert [tuple(k.shape) for k in deep.kernels] == [(3, 3, 1, 4), (3, 3, 4, 6)]
    assert deep.compute_output_shape((None, 8, 8, 1)) == (None, 8, 8, 1)
    reconstruction = keras.ops.convert_to_numpy(deep(images[:4]))
    assert reconstruction.shape == (4, 8, 8, 1) and np.all((reconstruction >= 0) & (reconstruction <= 1))


def test_block_one_is_trained_the_same_whatever_comes_after_it(images):
    deep, _ = pretrain_conv_stack(images[:64], [3], epochs=1, batch_size=32, seed=2)
    deep2, _ = pretrain_conv_stack(images[:64], [3, 5], epochs=1, batch_size=32, seed=2)
    # Block 1 is trained identically in both runs (same seed, same data): same kernel.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(deep.kernels[0]),
                                  keras.ops.convert_to_numpy(deep2.kernels[0]))
    first = keras.ops.convert_to_numpy(deep.encode(images[:8]))
    assert first.shape == (8, 4, 4, 3)


def test_bad_arguments(images):
    with pytest.raises(ValueError, match="filters"):
        pretrain_conv_stack(images, [])
    with pytest.raises(ValueError, match="corruption_level"):
        pretrain_conv_stack(images, [2, 3], corruption_level=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"\(n, height, width, channels\)"):
        pretrain_conv_stack(images.reshape(len(images), -1), [2])
