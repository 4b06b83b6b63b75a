"""Salt-and-pepper noise: a random fraction of the inputs set to their min or max."""

import keras
from keras import ops

from tiedae._validation import check_rate
from tiedae.corruption.base import CorruptionLayer


def _check_real(value, name):
    # Accepts NumPy scalars and 0-d arrays (e.g. `x.min()`), not bools or strings.
    if not isinstance(value, (bool, str, bytes)):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"`{name}` must be a number; received {value!r}.")


@keras.saving.register_keras_serializable(package="tiedae")
class SaltAndPepperNoise(CorruptionLayer):
    """Sets a random fraction `rate` of the entries to `low` or `high` (a fair coin).

    The "salt-and-pepper noise" of Vincent et al. (2010), §3.3, natural for
    binary or [0, 1]-scaled inputs such as images. Active only when
    `training=True`.

    Args:
        rate: Float in [0, 1), the expected fraction of entries corrupted.
        low: Value of "pepper" entries (the minimum of the data). Default 0.
        high: Value of "salt" entries (the maximum of the data). Default 1.
        seed: Optional non-negative integer for reproducible noise.
        **kwargs: Base layer keyword arguments.

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Example:

    >>> noisy = SaltAndPepperNoise(0.25, low=0.0, high=1.0)(x, training=True)
    """

    def __init__(self, rate, low=0.0, high=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = check_rate(rate, "rate")
        self.low = _check_real(low, "low")
        self.high = _check_real(high, "high")
        if not self.low < self.high:
            raise ValueError(
                f"`low` must be smaller than `high`; received low={low!r}, high={high!r}."
            )

    def corrupt(self, inputs):
        if self.rate == 0:
            return inputs
        keep = self._keep_mask(inputs, self.rate)
        coin = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        noise = ops.where(
            ops.less(coin, 0.5),
            ops.full_like(inputs, self.low),
            ops.full_like(inputs, self.high),
        )
        return ops.where(keep, inputs, noise)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "low": self.low, "high": self.high}
