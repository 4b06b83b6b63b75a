"""Layers that expose one half of a tied autoencoder layer as a layer of its own.

They work with any autoencoder layer of this package (`DenseLayerAutoencoder`,
`MaskedLayerAutoencoder`, `Conv2DLayerAutoencoder`): one with `encode`,
`decode`, `compute_code_shape` and either `compute_decoded_shape` or
`input_dim`.

They hold the autoencoder as a tracked sub-layer, so a model built from a view
shares (not copies) the autoencoder's variables, and saving such a model saves
the autoencoder with it.
"""

import keras

from tiedae.layers._sharing import serialize_shared_layer


class _AutoencoderView(keras.layers.Layer):
    def __init__(self, autoencoder, **kwargs):
        super().__init__(**kwargs)
        self.autoencoder = autoencoder

    def build(self, input_shape):
        if not self.autoencoder.built:
            raise ValueError(
                f"Layer '{self.name}' wraps autoencoder '{self.autoencoder.name}', "
                "which is not built yet. Build or call the autoencoder first."
            )
        self.built = True

    def get_config(self):
        config = super().get_config()
        # By reference when saving a model, whether the view or the
        # autoencoder itself comes first in it.
        config["autoencoder"] = serialize_shared_layer(self.autoencoder)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["autoencoder"] = keras.saving.deserialize_keras_object(config["autoencoder"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tiedae")
class TiedEncoder(_AutoencoderView):
    """The encoder half of a tied autoencoder layer, sharing its variables.

    Args:
        autoencoder: A built tied autoencoder layer, e.g. a `DenseLayerAutoencoder`.

    Input shape:
        `(batch_size, ..., input_dim)`.

    Output shape:
        `(batch_size, ..., layer_sizes[-1])`.
    """

    def call(self, inputs, training=None):
        return self.autoencoder.encode(inputs, training=training)

    def build(self, input_shape):
        if not self.autoencoder.built:
            self.autoencoder.build(input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.autoencoder.compute_code_shape(input_shape)


@keras.saving.register_keras_serializable(package="tiedae")
class TiedDecoder(_AutoencoderView):
    """The decoder half of a tied autoencoder layer, sharing its variables.

    Args:
        autoencoder: A built tied autoencoder layer, e.g. a `DenseLayerAutoencoder`.

    Input shape:
        `(batch_size, ..., layer_sizes[-1])`.

    Output shape:
        `(batch_size, ..., input_dim)`.
    """

    def call(self, inputs, training=None):
        return self.autoencoder.decode(inputs, training=training)

    def compute_output_shape(self, input_shape):
        # Autoencoders whose output is not (..., input_dim), e.g. convolutional ones.
        if hasattr(self.autoencoder, "compute_decoded_shape"):
            return self.autoencoder.compute_decoded_shape(input_shape)
        return tuple(input_shape[:-1]) + (self.autoencoder.input_dim,)
