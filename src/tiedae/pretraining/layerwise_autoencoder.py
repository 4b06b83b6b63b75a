"""A deep tied autoencoder whose layers each keep their own activation."""

import keras
from keras import activations

from tiedae._validation import check_layer_sizes
from tiedae.layers.dense_autoencoder import DenseLayerAutoencoder


def _per_layer(values, n, name):
    if isinstance(values, (list, tuple)):
        values = list(values)
        if len(values) != n:
            raise ValueError(
                f"`{name}` has {len(values)} entries but there are {n} layers; pass one "
                "value or one per layer."
            )
        return values
    return [values] * n


@keras.saving.register_keras_serializable(package="tiedae")
class LayerwiseTiedAutoencoder(DenseLayerAutoencoder):
    """A `DenseLayerAutoencoder` with one encoder and one decoder activation per layer.

    Greedy pretraining trains each layer as its own one-hidden-layer denoising
    autoencoder, with its own hidden activation and its own reconstruction
    activation (sigmoid for a binary cross-entropy loss, linear for mean
    squared error). Stacking those autoencoders gives this layer: encoder
    layer `k` uses `activations[k]`, and decoder layer `k` (which maps code
    `k` back to code `k - 1`, or to the input for `k = 0`) uses
    `decoder_activations[k]`, the reconstruction activation of autoencoder `k`.
    Everything else (tied kernels, separate decoder biases, `encode`, `decode`,
    the encoder and decoder sub-models) is `DenseLayerAutoencoder`'s.

    Args:
        layer_sizes: Non-empty list of positive integers, the encoder widths.
        activations: One activation, or one per layer, for the encoder layers.
        decoder_activations: One activation, or one per layer, for the decoder
            layers; entry 0 is the activation of the reconstruction. Default:
            `activations`.
        **kwargs: Any other `DenseLayerAutoencoder` argument (except
            `activation` and `output_activation`), and base layer arguments.

    Input shape:
        `(batch_size, ..., input_dim)`.

    Output shape:
        The same as the input.

    Example:

    >>> ae = LayerwiseTiedAutoencoder([64, 16], activations=["relu", "sigmoid"],
    ...                               decoder_activations=["sigmoid", "linear"])
    """

    def __init__(self, layer_sizes, activations="sigmoid", decoder_activations=None, **kwargs):
        for reserved in ("activation", "output_activation"):
            if reserved in kwargs:
                raise ValueError(
                    f"LayerwiseTiedAutoencoder takes `activations` and `decoder_activations`, "
                    f"not `{reserved}`."
                )
        sizes = check_layer_sizes(layer_sizes)
        super().__init__(sizes, **kwargs)
        n = len(sizes)
        self._activations_arg = _per_layer(activations, n, "activations")
        if decoder_activations is None:
            decoder_activations = self._activations_arg
        self._decoder_activations_arg = _per_layer(decoder_activations, n, "decoder_activations")
        self.activations = [keras.activations.get(a) for a in self._activations_arg]
        self.decoder_activations = [
            keras.activations.get(a) for a in self._decoder_activations_arg
        ]
        # Keep the base attributes meaningful for code that reads them.
        self.activation = self.activations[0]
        self.output_activation = self.decoder_activations[0]

    def _encoder_activation(self, k):
        return self.activations[k]

    def _decoder_activation(self, k):
        return self.decoder_activations[k]

    def get_config(self):
        config = super().get_config()
        config.pop("activation", None)
        config.pop("output_activation", None)
        config["activations"] = [activations.serialize(a) for a in self.activations]
        config["decoder_activations"] = [
            activations.serialize(a) for a in self.decoder_activations
        ]
        return config
