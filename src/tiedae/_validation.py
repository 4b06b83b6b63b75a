"""Argument checks shared by layers, pretraining and estimators.

Every check raises a `ValueError` whose message names the argument, the value
it received and what is accepted, so a user never has to read a backend
traceback to find a typo.
"""

import math
import numbers

# With early_stopping="auto", fits on at least this many rows hold out
# `validation_fraction` of them and stop early (as scikit-learn's
# HistGradientBoosting does above 10,000 rows): the default recipe was chosen
# with early stopping on sets from 364 rows up (benchmarks/recipe_selection.py;
# `tiedae pretrain --early-stopping auto` uses the same bound);
# below about 30 validation rows the stopping epoch is mostly noise.
AUTO_EARLY_STOPPING_ROWS = 300


def check_layer_sizes(layer_sizes, name="layer_sizes"):
    """Return `layer_sizes` as a list of positive ints or raise `ValueError`."""
    if isinstance(layer_sizes, numbers.Integral) and not isinstance(layer_sizes, bool):
        layer_sizes = [layer_sizes]
    try:
        sizes = list(layer_sizes)
    except TypeError:
        raise ValueError(
            f"`{name}` must be a non-empty list of positive integers "
            f"(the encoder widths, e.g. [100, 50, 20]); received {layer_sizes!r}."
        ) from None
    if not sizes:
        raise ValueError(
            f"`{name}` must be a non-empty list of positive integers "
            f"(the encoder widths, e.g. [100, 50, 20]); received an empty list."
        )
    for size in sizes:
        if (
            isinstance(size, bool)
            or not isinstance(size, numbers.Integral)
            or size <= 0
        ):
            raise ValueError(
                f"`{name}` must contain only positive integers; received "
                f"{layer_sizes!r} (bad entry: {size!r})."
            )
    return [int(size) for size in sizes]


def check_rate(rate, name="rate", meaning="the fraction of inputs affected"):
    """Return `rate` as a float in [0, 1) or raise `ValueError` saying what it is (`meaning`)."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ValueError(f"`{name}` must be a number in [0, 1) ({meaning}); received {rate!r}.")
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1) ({meaning}); received {rate}.")
    return rate


def check_non_negative(value, name):
    """Return `value` as a non-negative float or raise `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a non-negative number; received {value!r}.")
    value = float(value)
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"`{name}` must be a non-negative number; received {value}.")
    return value


def check_positive(value, name):
    """Return `value` as a positive, finite float or raise `ValueError`."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0
            or not math.isfinite(value)):
        raise ValueError(f"`{name}` must be a positive, finite number; received {value!r}.")
    return float(value)


def check_positive_int(value, name):
    """Return `value` as a positive int or raise `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
    return int(value)


def check_non_negative_int(value, name):
    """Return `value` as a non-negative int or raise `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer; received {value!r}.")
    return int(value)


def check_seed(seed, name="seed"):
    """Return `seed` (None or a non-negative int) or raise `ValueError`."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            f"`{name}` must be None or a non-negative integer; received {seed!r}."
        )
    return int(seed)


def check_last_axis(shape, expected, layer_name, what="input"):
    """Raise `ValueError` if the static last axis of `shape` differs from `expected`."""
    article = "an" if what[:1].lower() in "aeiou" else "a"  # "an input", "a code"
    if shape is None or len(shape) < 2:
        raise ValueError(
            f"Layer '{layer_name}' expects {article} {what} of rank >= 2 "
            f"(batch, ..., features); received shape {tuple(shape) if shape else shape}."
        )
    last = shape[-1]
    if last is not None and expected is not None and int(last) != int(expected):
        raise ValueError(
            f"Layer '{layer_name}' was built for {article} {what} whose last axis has "
            f"{expected} features, but received shape {tuple(shape)} "
            f"({last} features). Pass data with {expected} features or build a "
            f"new layer."
        )
