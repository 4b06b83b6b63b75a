"""SoftClusterAssignment: DEC's Student's t soft assignment, its centres, config and saving."""

import keras
import numpy as np
import pytest

import tiedae  # noqa: F401  (registers the layers for load_model)
from tests.conftest import np_soft_assignment, to_numpy
from tiedae import SoftClusterAssignment


def layer_with(centres, alpha=1.0, **kwargs):
    return SoftClusterAssignment(
        len(centres), alpha=alpha,
        clusters_initializer=keras.initializers.Constant(np.asarray(centres, np.float32)),
        **kwargs,
    )


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_output_matches_numpy(rng, alpha):
    centres = rng.normal(size=(4, 3)).astype("float32")
    z = rng.normal(scale=1.5, size=(11, 3)).astype("float32")
    layer = layer_with(centres, alpha=alpha)
    q = to_numpy(layer(z))
    assert q.shape == (11, 4) and q.dtype == np.float32
    np.testing.assert_allclose(q, np_soft_assignment(z, centres, alpha), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-6)
    assert (q > 0).all()


def test_alpha_changes_the_output(rng):
    # The two reference values differ, so the parametrised test above tells alphas apart.
    centres = rng.normal(size=(3, 2)).astype("float32")
    z = rng.normal(scale=2.0, size=(5, 2)).astype("float32")
    one, other = to_numpy(layer_with(centres, 1.0)(z)), to_numpy(layer_with(centres, 2.5)(z))
    assert np.abs(one - other).max() > 1e-3
    np.testing.assert_allclose(other, np_soft_assignment(z, centres, 2.5), rtol=1e-5, atol=1e-6)


def test_code_at_a_centre_is_most_likely_there():
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]], "float32")
    q = to_numpy(layer_with(centres)(centres))
    np.testing.assert_array_equal(q.argmax(axis=1), [0, 1, 2])
    assert (np.diag(q) > 0.9).all()


def test_output_shape_and_one_trainable_variable():
    layer = SoftClusterAssignment(5)
    assert layer.compute_output_shape((None, 7)) == (None, 5)
    assert layer.compute_output_shape((3, 7)) == (3, 5)
    inputs = keras.Input((7,))
    outputs = layer(inputs)
    assert tuple(outputs.shape) == (None, 5)
    assert len(layer.weights) == len(layer.trainable_weights) == 1
    assert len(layer.non_trainable_weights) == 0
    assert tuple(layer.clusters.shape) == (5, 7)
    assert layer.trainable_weights[0] is layer.clusters
    assert keras.Model(inputs, outputs).count_params() == 35
    # The default (Glorot) initializer: not all zero, not all equal.
    values = to_numpy(layer.clusters)
    assert np.unique(values).size == values.size


def test_constant_initializer_puts_the_given_centres(rng):
    centres = rng.normal(size=(3, 4)).astype("float32")
    layer = layer_with(centres)
    layer.build((None, 4))
    np.testing.assert_array_equal(to_numpy(layer.clusters), centres)


def test_config_round_trip(rng):
    centres = rng.normal(size=(3, 4)).astype("float32")
    layer = layer_with(centres, alpha=2.5, name="assign")
    z = rng.normal(size=(6, 4)).astype("float32")
    q = to_numpy(layer(z))
    config = layer.get_config()
    assert config["n_clusters"] == 3 and config["alpha"] == 2.5 and config["name"] == "assign"
    clone = SoftClusterAssignment.from_config(config)
    assert clone.n_clusters == 3 and clone.alpha == 2.5
    assert isinstance(clone.clusters_initializer, keras.initializers.Constant)
    # The clone is initialised from the serialised centres: the same output before any copy.
    np.testing.assert_allclose(to_numpy(clone(z)), q, rtol=1e-6, atol=1e-7)
    assert clone.get_config() == config
    # And through the generic serializer (registered name).
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(again) is SoftClusterAssignment
    np.testing.assert_allclose(to_numpy(again(z)), q, rtol=1e-6, atol=1e-7)


def test_save_and_load_model(rng, tmp_path):
    centres = rng.normal(size=(3, 2)).astype("float32")
    inputs = keras.Input((5,))
    code = keras.layers.Dense(2, name="encoder")(inputs)
    model = keras.Model(inputs, layer_with(centres, alpha=2.5, name="assign")(code))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.KLDivergence())
    x = rng.normal(size=(16, 5)).astype("float32")
    target = np.eye(3, dtype="float32")[rng.integers(0, 3, size=16)]
    model.fit(x, target, batch_size=16, epochs=1, verbose=0)  # centres no longer the initial ones
    trained = to_numpy(model.get_layer("assign").clusters)
    assert not np.allclose(trained, centres)

    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("assign")
    assert isinstance(layer, SoftClusterAssignment) and layer.alpha == 2.5
    np.testing.assert_array_equal(to_numpy(layer.clusters), trained)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_clusters=0), "n_clusters"),
    (dict(n_clusters=-2), "n_clusters"),
    (dict(n_clusters=2.5), "n_clusters"),
    (dict(n_clusters=3, alpha=-1), "alpha"),
    (dict(n_clusters=3, alpha=0), "alpha"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SoftClusterAssignment(**kwargs)


def test_unknown_code_width_is_refused():
    with pytest.raises(ValueError, match="code width"):
        SoftClusterAssignment(3)(keras.Input((None,)))


def test_rank3_input_is_refused(rng):
    with pytest.raises(ValueError, match="expected ndim=2, found ndim=3"):
        SoftClusterAssignment(3)(keras.Input((4, 2)))
    with pytest.raises(ValueError, match="expected ndim=2, found ndim=3"):
        SoftClusterAssignment(3)(rng.normal(size=(2, 4, 2)).astype("float32"))


def test_built_layer_refuses_another_code_width():
    layer = SoftClusterAssignment(3)
    layer(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="axis -1 of input shape to have value 4"):
        layer(np.zeros((2, 5), "float32"))


def test_training_moves_the_centres(rng):
    # Codes pass through unchanged: the only trainable variable is the centres,
    # so a loss that moves anything must reach them through the gradient.
    centres = np.array([[0.0, 0.0], [1.0, 1.0]], "float32")
    inputs = keras.Input((2,))
    layer = layer_with(centres)
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.KLDivergence())
    z = np.array([[3.0, 3.0], [-2.0, -2.0]], "float32")
    # Sample 0 (near centre 1) is told it belongs to centre 0, and vice versa.
    target = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    loss_before = model.evaluate(z, target, verbose=0)
    model.fit(z, target, batch_size=2, epochs=5, verbose=0)
    moved = to_numpy(layer.clusters)
    assert np.abs(moved - centres).max() > 1e-2
    assert model.evaluate(z, target, verbose=0) < loss_before
    # Centre 0 moved towards (3, 3), centre 1 towards (-2, -2).
    assert moved[0].sum() > 0 and moved[1].sum() < 2.0
