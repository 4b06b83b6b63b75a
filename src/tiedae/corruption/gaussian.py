"""Additive isotropic Gaussian noise."""

import keras
from keras import ops

from tiedae._validation import check_non_negative
from tiedae.corruption.base import CorruptionLayer


@keras.saving.register_keras_serializable(package="tiedae")
class AdditiveGaussianNoise(CorruptionLayer):
    """Adds `N(0, stddev**2)` noise to every entry, for real-valued inputs.

    The "additive isotropic Gaussian noise" of Vincent et al. (2010), §3.3.
    Active only when `training=True`.

    Args:
        stddev: Non-negative float, the standard deviation of the noise.
        seed: Optional non-negative integer for reproducible noise.
        **kwargs: Base layer keyword arguments.

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Example:

    >>> noisy = AdditiveGaussianNoise(0.1, seed=1)(x, training=True)
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = check_non_negative(stddev, "stddev")

    def corrupt(self, inputs):
        if self.stddev == 0:
            return inputs
        if not keras.backend.is_float_dtype(inputs.dtype):
            # e.g. uint8 images: the noisy values are real, and no backend
            # draws normal noise in an integer dtype.
            inputs = ops.cast(inputs, self.compute_dtype)
        noise = keras.random.normal(
            ops.shape(inputs), stddev=self.stddev, dtype=inputs.dtype, seed=self.seed_generator
        )
        return ops.add(inputs, noise)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}
