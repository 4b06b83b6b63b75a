"""Early stopping on held-out rows, keeping the best epoch's weights.

Vincent et al. (2010) and the Theano tutorial choose every epoch count on a
validation set; here that choice is made while training. `BestEpochStopping`
is Keras's `EarlyStopping` with the best weights always restored and the
epochs run and the best epoch recorded. `validation_rows` splits rows into
training and validation ones (stratified when labels are given) with the
checks a user needs: both sides non-empty, every class on both sides.

The argument names follow scikit-learn's `MLPClassifier`: `early_stopping`,
`validation_fraction`, `n_iter_no_change` (the patience) and `tol` (the
smallest decrease of the monitored loss that counts as an improvement).
"""

import numbers

import keras
import numpy as np

from tiedae._validation import check_non_negative


def check_early_stopping(early_stopping, validation_fraction, n_iter_no_change, tol):
    """Check the four early-stopping arguments; return them normalised."""
    if not isinstance(early_stopping, (bool, np.bool_)):
        raise ValueError(
            f"`early_stopping` must be True or False; received {early_stopping!r}."
        )
    if (
        isinstance(validation_fraction, bool)
        or not isinstance(validation_fraction, numbers.Real)
        or not 0.0 < validation_fraction < 1.0
    ):
        raise ValueError(
            "`validation_fraction` must be a number in (0, 1) (the share of rows held out "
            f"to decide when to stop); received {validation_fraction!r}."
        )
    if (
        isinstance(n_iter_no_change, bool)
        or not isinstance(n_iter_no_change, numbers.Integral)
        or n_iter_no_change < 1
    ):
        raise ValueError(
            "`n_iter_no_change` must be an integer >= 1 (epochs without improvement before "
            f"stopping); received {n_iter_no_change!r}."
        )
    tol = check_non_negative(tol, "tol")
    return bool(early_stopping), float(validation_fraction), int(n_iter_no_change), tol


class BestEpochStopping(keras.callbacks.EarlyStopping):
    """Stop when `monitor` has not improved by `tol` for `patience` epochs; keep the best epoch.

    The weights of the best epoch are restored at the end of training, also
    when the run reached its last epoch without stopping. After `fit`:
    `best_epoch_` is the 1-based number of that epoch (counted like Keras's
    epochs, so with `initial_epoch` it continues the count), `stopped_` says
    whether training ended early and `best_` is the monitored value there.

    Args:
        patience: Epochs without improvement before stopping (>= 1).
        tol: Smallest change of `monitor` in the good direction that counts
            as an improvement.
        monitor: The logged quantity to watch, default `"val_loss"`.
        mode: `"min"` (default: a loss) or `"max"` (a score such as
            `"val_accuracy"`).
    """

    def __init__(self, patience, tol=0.0, monitor="val_loss", mode="min"):
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'; received {mode!r}.")
        super().__init__(
            monitor=monitor, min_delta=tol, patience=patience, mode=mode,
            restore_best_weights=True,
        )
        self.best_epoch_ = None
        self.stopped_ = False
        self.best_ = None

    def get_monitor_value(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            # Keras would only warn and never stop: a missing validation loss is our bug
            # or the caller's, and silently training every epoch hides it.
            raise ValueError(
                f"early stopping monitors {self.monitor!r}, which this training does not "
                f"report (it reports {', '.join(sorted(logs or {})) or 'nothing'}); pass "
                "validation data."
            )
        return value

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.best is not None:
            self.best_epoch_ = int(self.best_epoch) + 1
            self.best_ = float(self.best)
        self.stopped_ = self.stopped_epoch > 0

    def summary(self, epochs_run):
        """`{"epochs_run", "best_epoch", "stopped_early"}` for histories and metrics.json."""
        return {
            "epochs_run": int(epochs_run),
            "best_epoch": self.best_epoch_,
            "stopped_early": bool(self.stopped_),
        }


def validation_rows(n_rows, fraction, seed, y=None, what="rows", off="set early_stopping=False"):
    """Split `range(n_rows)` into sorted `(train, validation)` index arrays.

    With labels `y` the split is stratified: every class keeps at least one
    row on each side, so a class with a single row is refused (`off` says how
    the caller's user turns early stopping off).

    Raises:
        ValueError: when a side (or, with `y`, a class on a side) would be empty.
    """
    rng = np.random.default_rng(seed)
    if y is None:
        n_val = int(round(fraction * n_rows))
        if n_val < 1 or n_val >= n_rows:
            raise ValueError(
                f"validation_fraction={fraction:g} of {n_rows} {what} leaves "
                f"{'no validation' if n_val < 1 else 'no training'} rows; early stopping needs "
                "both: use a fraction that keeps at least one row on each side, or more rows."
            )
        order = rng.permutation(n_rows)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    too_few = classes[counts < 2]
    if len(too_few):
        raise ValueError(
            f"class {too_few[0].item()!r} has only one labelled row, but early stopping needs at least "
            f"one training and one validation row of every class: label more rows of it, or {off}."
        )
    train, val = [], []
    for label in classes:
        rows = rng.permutation(np.flatnonzero(y == label))
        # At least one row each side; otherwise the class's share of the fraction.
        n_val = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))

