"""A Keras model trained to reconstruct its input: `fit(x)` needs no target."""

import keras


@keras.saving.register_keras_serializable(package="tiedae")
class ReconstructionModel(keras.Model):
    """A functional model whose loss and metrics use its input as the target.

    `fit(x)`, `evaluate(x)` and `validation_data=(x_val,)` compare the output
    with the clean input `x` (a corruption layer inside the model corrupts only
    what the encoder sees). `fit(x, x)` on a plain `keras.Model` computes the
    same loss, but hands every batch to the device twice: on a GPU that second
    copy took 11-34% of a 1000-wide stack's step time (`docs/benchmarks.md`,
    GPU section). Targets given explicitly are used as usual: `fit(x, y)`.

    Build it like a functional `keras.Model`, with one input.

    Args:
        inputs: The `keras.Input` of the model.
        outputs: The reconstruction, with the input's shape.
        **kwargs: Passed to `keras.Model` (`name`, ...).

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> corrupted = tiedae.MaskingNoise(0.3)(inputs)
    >>> outputs = tiedae.DenseLayerAutoencoder([500, 250])(corrupted)
    >>> model = tiedae.ReconstructionModel(inputs, outputs)
    >>> model.compile(optimizer="adam", loss="binary_crossentropy")
    >>> model.fit(x_train, epochs=10, validation_data=(x_val,))
    """

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(
            x, x if y is None else y, y_pred, sample_weight, training=training
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, x if y is None else y, y_pred, sample_weight)
