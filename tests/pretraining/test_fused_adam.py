"""FusedAdam (PyTorch backend): the same update as Keras's Adam, in one fused pass."""

import keras
import numpy as np
import pytest

from tests.conftest import BACKEND, to_numpy
from tiedae.layers import DenseLayerAutoencoder
from tiedae.pretraining.optimizers import make_optimizer

pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="PyTorch backend only")


def _trained(optimizer, x, dtype="float32"):
    keras.utils.set_random_seed(7)
    inputs = keras.Input((x.shape[1],))
    model = keras.Model(inputs, DenseLayerAutoencoder([16, 8], activation="sigmoid", dtype=dtype)(inputs))
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    model.fit(x, x, batch_size=32, epochs=3, shuffle=False, verbose=0)
    return [to_numpy(w) for w in model.weights], int(to_numpy(optimizer.iterations))


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_fused_adam_matches_keras_adam(rng, dtype):
    from tiedae.pretraining.fused_adam import FusedAdam

    x = rng.uniform(size=(256, 24)).astype("float32")
    fused = make_optimizer({"class_name": "Adam", "config": {"beta_2": 0.99, "epsilon": 1e-3}},
                           0.01, fused=True)
    assert isinstance(fused, FusedAdam)
    plain = make_optimizer({"class_name": "Adam", "config": {"beta_2": 0.99, "epsilon": 1e-3}}, 0.01)
    assert not isinstance(plain, FusedAdam)
    got, steps = _trained(fused, x, dtype)
    want, plain_steps = _trained(plain, x, dtype)
    assert steps == plain_steps == 24
    moved = max(np.abs(w - w0).max() for w, w0 in zip(want, _initial(x, dtype)))
    assert moved > 1e-2  # the comparison below is not between two untrained models
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def _initial(x, dtype):
    keras.utils.set_random_seed(7)
    layer = DenseLayerAutoencoder([16, 8], activation="sigmoid", dtype=dtype)
    layer.build((None, x.shape[1]))
    return [to_numpy(w) for w in layer.weights]


@pytest.mark.parametrize("config", [{"amsgrad": True}, {"weight_decay": 0.01}, {"clipnorm": 1.0}])
def test_options_the_fused_step_leaves_out_keep_keras_adam(config):
    from tiedae.pretraining.fused_adam import FusedAdam

    made = make_optimizer({"class_name": "Adam", "config": config}, 0.01, fused=True)
    assert not isinstance(made, FusedAdam)
    assert not isinstance(make_optimizer("sgd", 0.01, fused=True), FusedAdam)
