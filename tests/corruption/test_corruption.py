"""Corruption layers: statistics, inactive at inference, resampled every step, seedable."""

import keras
import numpy as np
import pytest

from tests.conftest import to_numpy
from tiedae import AdditiveGaussianNoise, DenseLayerAutoencoder, MaskingNoise, SaltAndPepperNoise
from tiedae.corruption import CORRUPTION_KINDS, get_corruption

SHAPE = (200, 500)  # 1e5 entries: the binomial std of a fraction is < 0.0016


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_masking_fraction_and_no_rescaling(rng, rate):
    x = rng.uniform(1.0, 2.0, size=SHAPE).astype("float32")  # no zeros to begin with
    y = to_numpy(MaskingNoise(rate, seed=3)(x, training=True))
    masked = y == 0
    assert abs(masked.mean() - rate) < 0.01
    # Survivors keep their exact value: no division by (1 - rate) as in Dropout.
    np.testing.assert_array_equal(y[~masked], x[~masked])


def test_salt_and_pepper_fraction_and_values(rng):
    rate, low, high = 0.3, -1.0, 2.0
    x = rng.uniform(0.0, 1.0, size=SHAPE).astype("float32")
    y = to_numpy(SaltAndPepperNoise(rate, low=low, high=high, seed=5)(x, training=True))
    pepper, salt = y == low, y == high
    kept = ~(pepper | salt)
    assert abs((pepper | salt).mean() - rate) < 0.01
    assert abs(pepper.mean() - rate / 2) < 0.01
    assert abs(salt.mean() - rate / 2) < 0.01
    np.testing.assert_array_equal(y[kept], x[kept])


def test_salt_and_pepper_defaults_are_zero_and_one(rng):
    x = rng.uniform(0.2, 0.8, size=(100, 100)).astype("float32")
    y = to_numpy(SaltAndPepperNoise(0.5, seed=1)(x, training=True))
    changed = y != x
    assert set(np.unique(y[changed])) == {0.0, 1.0}


@pytest.mark.parametrize("stddev", [0.1, 1.5])
def test_gaussian_mean_and_std(rng, stddev):
    x = rng.uniform(-1.0, 1.0, size=SHAPE).astype("float32")
    noise = to_numpy(AdditiveGaussianNoise(stddev, seed=7)(x, training=True)) - x
    assert abs(noise.std() / stddev - 1.0) < 0.02
    assert abs(noise.mean()) < 0.02 * stddev
    # Every entry is perturbed (not a fraction of them).
    assert np.mean(noise == 0) < 1e-3


@pytest.mark.parametrize(
    "layer",
    [
        lambda: MaskingNoise(0.5, seed=1),
        lambda: SaltAndPepperNoise(0.5, seed=1),
        lambda: AdditiveGaussianNoise(1.0, seed=1),
    ],
    ids=["masking", "salt_and_pepper", "gaussian"],
)
def test_identity_at_inference(rng, layer):
    layer = layer()
    x = rng.uniform(0.1, 0.9, size=(32, 16)).astype("float32")
    np.testing.assert_array_equal(to_numpy(layer(x)), x)
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)), x)
    model = keras.Sequential([keras.Input((16,)), layer])
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    np.testing.assert_array_equal(to_numpy(model(x)), x)
    # ...and active in training, so the identity above is not vacuous.
    assert not np.array_equal(to_numpy(layer(x, training=True)), x)


def test_zero_level_is_identity_in_training(rng):
    x = rng.uniform(size=(8, 8)).astype("float32")
    for layer in (MaskingNoise(0.0), SaltAndPepperNoise(0.0), AdditiveGaussianNoise(0.0)):
        np.testing.assert_array_equal(to_numpy(layer(x, training=True)), x)


@pytest.mark.parametrize("cls", [MaskingNoise, SaltAndPepperNoise, AdditiveGaussianNoise])
def test_successive_calls_draw_new_noise(rng, cls):
    layer = cls(0.3, seed=11)
    x = rng.uniform(0.1, 0.9, size=(16, 64)).astype("float32")
    first = to_numpy(layer(x, training=True))
    second = to_numpy(layer(x, training=True))
    assert not np.array_equal(first, second)
    # Masking/salt-and-pepper: the corrupted positions differ, not only the values.
    if cls is not AdditiveGaussianNoise:
        assert not np.array_equal(first == x, second == x)


def _masks_seen_by_one_step_each(layer, n_steps, n_features=64):
    """Run `n_steps` separate one-batch fits and return which inputs each step saw.

    With all-ones inputs, a bias-free Dense(1) and a far-away target, SGD
    changes weight i iff input i survived the corruption, so the weight change
    reveals the mask used inside the compiled training step.
    """
    dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
    model = keras.Sequential([keras.Input((n_features,)), layer, dense])
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    x = np.ones((1, n_features), "float32")
    y = np.full((1, 1), 100.0, "float32")
    masks = []
    for _ in range(n_steps):
        before = to_numpy(dense.kernel)[:, 0]
        model.fit(x, y, batch_size=1, epochs=1, verbose=0)
        masks.append(to_numpy(dense.kernel)[:, 0] != before)
    return masks


def test_resampled_at_every_training_step_inside_fit():
    masks = _masks_seen_by_one_step_each(MaskingNoise(0.5, seed=2), n_steps=3)
    for mask in masks:
        assert 0 < mask.sum() < mask.size  # some dropped, some kept
    assert not np.array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[1], masks[2])


def _train_denoiser(global_seed, layer_seed, x):
    keras.utils.set_random_seed(global_seed)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            MaskingNoise(0.3, seed=layer_seed),
            SaltAndPepperNoise(0.1, seed=layer_seed),
            AdditiveGaussianNoise(0.1, seed=layer_seed),
            # Its dropout draws from a generator seeded by set_random_seed.
            DenseLayerAutoencoder([6, 4], activation="sigmoid", dropout=0.2),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(x, x, batch_size=8, epochs=2, verbose=0, shuffle=False)
    return [to_numpy(w) for w in model.trainable_weights]


def test_same_seed_gives_same_weights(rng):
    x = rng.uniform(size=(16, 10)).astype("float32")
    first = _train_denoiser(42, 7, x)
    second = _train_denoiser(42, 7, x)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    # Only the layers' seed differs: the noise, hence the weights, differ.
    other = _train_denoiser(42, 8, x)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_same_layer_seed_gives_same_first_mask(rng):
    x = rng.uniform(0.1, 0.9, size=(8, 32)).astype("float32")
    a = to_numpy(MaskingNoise(0.5, seed=4)(x, training=True))
    b = to_numpy(MaskingNoise(0.5, seed=4)(x, training=True))
    np.testing.assert_array_equal(a, b)


def test_preserves_dtype_and_shape(rng):
    x = rng.uniform(size=(2, 3, 4)).astype("float32")
    for layer in (MaskingNoise(0.5), SaltAndPepperNoise(0.5), AdditiveGaussianNoise(0.5)):
        y = layer(x, training=True)
        assert tuple(y.shape) == (2, 3, 4)
        assert keras.backend.standardize_dtype(y.dtype) == "float32"
        assert layer.compute_output_shape((None, 3, 4)) == (None, 3, 4)


@pytest.mark.parametrize("kind", sorted(CORRUPTION_KINDS))
def test_get_corruption_builds_each_kind(kind):
    layer = get_corruption(kind, 0.25, seed=3)
    assert isinstance(layer, CORRUPTION_KINDS[kind])
    assert layer.seed == 3
    level = layer.stddev if kind == "gaussian" else layer.rate
    assert level == 0.25


def test_get_corruption_none_and_zero_level():
    assert get_corruption("none", 0.3) is None
    assert get_corruption(None, 0.3) is None
    # Documented: level 0 means no corruption layer at all.
    for kind in CORRUPTION_KINDS:
        assert get_corruption(kind, 0.0) is None


def test_get_corruption_passes_extra_arguments():
    layer = get_corruption("salt_and_pepper", 0.2, low=-1.0, high=1.0)
    assert (layer.low, layer.high) == (-1.0, 1.0)


def test_gaussian_noise_on_integer_inputs_is_real_valued(rng):
    x = rng.integers(0, 256, size=(50, 40)).astype("uint8")
    layer = AdditiveGaussianNoise(2.0, seed=1)
    y = layer(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    noise = to_numpy(y) - x.astype("float32")
    assert abs(noise.std() / 2.0 - 1.0) < 0.1
    # Masking keeps the integer dtype: it only zeroes entries.
    masked = to_numpy(MaskingNoise(0.5, seed=1)(x, training=True))
    assert masked.dtype == np.uint8
