"""Numerical safety: binary cross-entropy on exact 0/1 data with saturated sigmoids gives no NaN."""

import keras
import numpy as np

from tiedae import DenseLayerAutoencoder
from tiedae.pretraining import StackedDenoisingAutoencoder


def test_bce_with_exact_binary_targets_and_saturated_sigmoid_stays_finite(rng):
    x = (rng.random((32, 10)) > 0.5).astype("float32")  # inputs exactly 0 or 1
    layer = DenseLayerAutoencoder([4], activation="sigmoid", output_activation="sigmoid")
    inputs = keras.Input((10,))
    model = keras.Model(inputs, layer(inputs))
    # Saturate: decoder pre-activations of +-200 give sigmoid outputs of exactly 1.0 or 0.0 in float32,
    # wrong for half of the targets, which is where an unclipped log would return -inf.
    layer.decoder_biases[0].assign(np.where(np.arange(10) % 2 == 0, 200.0, -200.0).astype("float32"))
    reconstruction = keras.ops.convert_to_numpy(model(x))
    assert set(np.unique(reconstruction)) <= {0.0, 1.0}
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    loss = model.train_on_batch(x, x)
    assert np.isfinite(loss) and loss > 1.0  # large but finite
    for weight in model.weights:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(weight)))


def test_greedy_pretraining_on_binary_data_has_finite_losses(rng):
    x = (rng.random((120, 16)) > 0.7).astype("float32")
    sda = StackedDenoisingAutoencoder([8, 4], epochs=2, batch_size=40, seed=0, verbose=0).pretrain(x)
    assert sda.losses_ == ["binary_crossentropy", "binary_crossentropy"]
    assert all(np.all(np.isfinite(h["loss"])) for h in sda.history_)
    assert np.all(np.isfinite(sda.transform(x)))
