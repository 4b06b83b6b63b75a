"""Property tests: every accepted configuration works and round-trips; every rejected one is a ValueError."""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiedae import AdditiveGaussianNoise, DenseLayerAutoencoder, MaskingNoise, SaltAndPepperNoise

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

configs = st.fixed_dictionaries(
    {
        "layer_sizes": st.lists(st.integers(1, 7), min_size=1, max_size=3),
        "activation": st.sampled_from([None, "relu", "tanh", "sigmoid", "elu"]),
        "output_activation": st.sampled_from(["same", "linear", "sigmoid"]),
        "use_bias": st.booleans(),
        "dropout": st.sampled_from([0.0, 0.25]),
        "l2_normalize": st.booleans(),
    }
)
shapes = st.tuples(st.integers(1, 3), st.sampled_from([(), (2,)]), st.integers(1, 6)).map(
    lambda t: (t[0], *t[1], t[2])
)


@SETTINGS
@given(config=configs, shape=shapes)
def test_accepted_configurations_build_run_keep_the_tie_and_round_trip(config, shape, tmp_path):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    layer = DenseLayerAutoencoder(**config)
    inputs = keras.Input(shape=shape[1:])
    model = keras.Model(inputs, layer(inputs))
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == shape and np.all(np.isfinite(y))

    n_layers = len(config["layer_sizes"])
    assert len(layer.kernels) == n_layers  # one variable per kernel: the decoder has none of its own
    widths = [shape[-1], *config["layer_sizes"]]
    expected_params = sum(a * b for a, b in zip(widths, widths[1:]))
    if config["use_bias"]:
        expected_params += sum(widths[1:]) + sum(widths[:-1])
    assert model.count_params() == expected_params

    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), y)
    assert restored.layers[-1].get_config() == layer.get_config()


bad_sizes = st.one_of(
    st.just([]),
    st.lists(st.integers(-5, 0), min_size=1, max_size=3),
    st.lists(st.floats(0.5, 3.5).filter(lambda v: v != int(v)), min_size=1, max_size=2),
    st.lists(st.text(min_size=1, max_size=2), min_size=1, max_size=2),
    st.just([True]),
)


@SETTINGS
@given(layer_sizes=bad_sizes)
def test_rejected_layer_sizes_raise_value_error(layer_sizes):
    with pytest.raises(ValueError, match="layer_sizes"):
        DenseLayerAutoencoder(layer_sizes)


@SETTINGS
@given(rate=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3)))
def test_rates_are_accepted_exactly_in_the_unit_interval(rate):
    accepted = isinstance(rate, (int, float)) and 0 <= rate < 1
    for make in (lambda r: MaskingNoise(r), lambda r: SaltAndPepperNoise(r),
                 lambda r: DenseLayerAutoencoder([2], dropout=r)):
        if accepted:
            make(rate)
        else:
            with pytest.raises(ValueError, match="rate|dropout"):
                make(rate)


@SETTINGS
@given(
    kind=st.sampled_from(["masking", "salt_and_pepper", "gaussian"]),
    level=st.floats(0.0, 0.9),
    shape=shapes,
    seed=st.integers(0, 2**16),
)
def test_corruption_is_identity_at_inference_and_stays_in_range_in_training(kind, level, shape, seed):
    x = np.random.default_rng(seed).random(shape).astype("float32")
    layer = {"masking": MaskingNoise, "salt_and_pepper": SaltAndPepperNoise, "gaussian": AdditiveGaussianNoise}[kind](
        level, seed=seed
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    noisy = keras.ops.convert_to_numpy(layer(x, training=True))
    assert noisy.shape == x.shape
    if kind == "masking":
        assert np.all((noisy == x) | (noisy == 0))
    elif kind == "salt_and_pepper":
        assert np.all((noisy == x) | (noisy == 0) | (noisy == 1))
    else:
        assert np.all(np.isfinite(noisy))


@SETTINGS
@given(n_features=st.integers(1, 6), wrong=st.integers(1, 6))
def test_wrong_feature_count_is_a_value_error(n_features, wrong):
    if wrong == n_features:
        wrong += 1
    layer = DenseLayerAutoencoder([2])
    layer.build((None, n_features))
    with pytest.raises(ValueError, match="features"):
        layer.encode(np.zeros((2, wrong), "float32"))
