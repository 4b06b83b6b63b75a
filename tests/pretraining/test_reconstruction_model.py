"""ReconstructionModel: `fit(x)` trains exactly like `fit(x, x)` on a plain model."""

import keras
import numpy as np
import pytest

from tests.conftest import to_numpy
from tiedae import DenseLayerAutoencoder, MaskingNoise, ReconstructionModel


def _build(model_class, corrupt=False):
    keras.utils.set_random_seed(7)  # the same initial weights for both classes
    inputs = keras.Input(shape=(12,))
    h = MaskingNoise(0.3, seed=3)(inputs) if corrupt else inputs
    outputs = DenseLayerAutoencoder([5], activation="sigmoid")(h)
    model = model_class(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy",
                  metrics=["mae"])
    return model


@pytest.fixture
def x(rng):
    return rng.random((64, 12)).astype(np.float32)


@pytest.mark.parametrize("corrupt", [False, True])
def test_fit_without_targets_equals_fit_with_the_input_as_target(x, corrupt):
    plain, own = _build(keras.Model, corrupt), _build(ReconstructionModel, corrupt)
    for a, b in zip(plain.get_weights(), own.get_weights()):
        np.testing.assert_array_equal(a, b)
    keras.utils.set_random_seed(11)
    h_plain = plain.fit(x, x, batch_size=16, epochs=3, shuffle=False, verbose=0,
                        validation_data=(x[:16], x[:16])).history
    keras.utils.set_random_seed(11)
    h_own = own.fit(x, batch_size=16, epochs=3, shuffle=False, verbose=0,
                    validation_data=(x[:16],)).history
    assert set(h_own) == {"loss", "mae", "val_loss", "val_mae"}
    for key in h_own:
        np.testing.assert_allclose(h_own[key], h_plain[key], rtol=1e-5)
    for a, b in zip(plain.get_weights(), own.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_loss_and_metrics_use_the_clean_input_or_explicit_targets(x):
    model = _build(ReconstructionModel, corrupt=True)
    recon = np.clip(to_numpy(model(x, training=False)), 1e-7, 1 - 1e-7)

    def bce(target):
        return float(np.mean(-(target * np.log(recon) + (1 - target) * np.log(1 - recon))))

    loss, mae = model.evaluate(x, batch_size=64, verbose=0)
    assert loss == pytest.approx(bce(x), rel=1e-4)
    assert mae == pytest.approx(float(np.mean(np.abs(recon - x))), rel=1e-4)
    # Explicit targets win over the input.
    y = np.zeros_like(x)
    loss_y, mae_y = model.evaluate(x, y, batch_size=64, verbose=0)
    assert loss_y == pytest.approx(bce(y), rel=1e-4)
    assert mae_y == pytest.approx(float(np.mean(recon)), rel=1e-4)


def test_save_load_round_trip_keeps_the_class_and_the_outputs(x, tmp_path):
    model = _build(ReconstructionModel)
    model.fit(x, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ReconstructionModel)
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))
    # Still needs no targets after loading.
    assert loaded.evaluate(x, verbose=0)[0] == pytest.approx(model.evaluate(x, verbose=0)[0], rel=1e-6)
