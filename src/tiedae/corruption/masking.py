"""Masking noise: a random fraction of the inputs set to zero."""

import keras
from keras import ops

from tiedae._validation import check_rate
from tiedae.corruption.base import CorruptionLayer


@keras.saving.register_keras_serializable(package="tiedae")
class MaskingNoise(CorruptionLayer):
    """Sets a random fraction `rate` of the input entries to 0, without rescaling.

    This is the "masking noise" of Vincent et al. (2010), §3.3. Unlike
    `keras.layers.Dropout`, the surviving entries are *not* divided by
    `1 - rate`: the denoising autoencoder must reconstruct the clean values
    from the partially destroyed input. Active only when `training=True`.

    Args:
        rate: Float in [0, 1), the expected fraction of entries zeroed.
        seed: Optional non-negative integer for reproducible masks.
        **kwargs: Base layer keyword arguments.

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Example:

    >>> noisy = MaskingNoise(0.3, seed=1)(x, training=True)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = check_rate(rate, "rate")

    def corrupt(self, inputs):
        if self.rate == 0:
            return inputs
        keep = self._keep_mask(inputs, self.rate)
        return ops.where(keep, inputs, ops.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
