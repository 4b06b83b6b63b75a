"""TiedEncoder / TiedDecoder: views on a DenseLayerAutoencoder that share its variables."""

import os

import keras
import numpy as np
import pytest

from tests.conftest import to_numpy
from tiedae import DenseLayerAutoencoder, TiedDecoder, TiedEncoder


def test_views_compute_encode_and_decode(rng):
    ae = DenseLayerAutoencoder([5, 2], activation="tanh", bias_initializer="random_normal")
    ae.build((None, 7))
    x = rng.normal(size=(3, 7)).astype("float32")
    z = rng.normal(size=(3, 2)).astype("float32")
    np.testing.assert_array_equal(to_numpy(TiedEncoder(ae)(x)), to_numpy(ae.encode(x)))
    np.testing.assert_array_equal(to_numpy(TiedDecoder(ae)(z)), to_numpy(ae.decode(z)))
    assert TiedEncoder(ae).compute_output_shape((None, 7)) == (None, 2)
    assert TiedDecoder(ae).compute_output_shape((None, 2)) == (None, 7)


# The decoder biases are not read by the encoder: Keras warns, as it should.
@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_view_model_trains_the_autoencoder_variables(rng):
    ae = DenseLayerAutoencoder([3], bias_initializer="random_normal")
    ae.build((None, 5))
    encoder = ae.encoder_model()
    before = to_numpy(ae.kernels[0])
    encoder.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = rng.normal(size=(8, 5)).astype("float32")
    encoder.fit(x, np.ones((8, 3), "float32"), batch_size=8, epochs=1, verbose=0)
    assert not np.allclose(before, to_numpy(ae.kernels[0]))
    np.testing.assert_allclose(
        encoder.predict(x, verbose=0),
        x @ to_numpy(ae.kernels[0]) + to_numpy(ae.encoder_biases[0]),
        atol=1e-5,
    )


def test_tie_survives_save_and_load_when_the_view_comes_first(rng, tmp_path):
    ae = DenseLayerAutoencoder([4, 2], activation="tanh", bias_initializer="random_normal", name="ae")
    ae.build((None, 6))
    inputs = keras.Input((6,))
    code = TiedEncoder(ae, name="encoder_view")(inputs)
    model = keras.Model(inputs, [code, ae(inputs)])
    assert [layer.name for layer in model.layers][-2:] == ["encoder_view", "ae"]
    path = os.path.join(tmp_path, "view_first.keras")
    model.save(path)

    loaded = keras.models.load_model(path)
    assert loaded.get_layer("encoder_view").autoencoder is loaded.get_layer("ae")
    assert loaded.count_params() == model.count_params()
    x = rng.normal(size=(3, 6)).astype("float32")
    for want, got in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(got, want)
