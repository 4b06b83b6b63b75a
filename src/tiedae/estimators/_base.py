"""Helpers shared by the scikit-learn estimators."""

import warnings

import numpy as np
from sklearn.utils import check_random_state

from tiedae._validation import AUTO_EARLY_STOPPING_ROWS, check_positive
from tiedae.pretraining.data import map_in_batches
from tiedae.pretraining.early_stopping import check_early_stopping, validation_rows


def derive_seed(random_state):
    """A non-negative int seed for the Keras side from a scikit-learn `random_state`.

    An int gives the same seed every time (reproducible fits); `None` draws
    from NumPy's global generator; a `RandomState` is advanced by one draw.
    """
    return int(check_random_state(random_state).randint(0, 2**30))


def check_learning_rate(value, name, allow_none=False):
    """Return `value` as a positive, finite float (or `None` when `allow_none`) or raise
    `ValueError` naming the estimator's parameter `name`."""
    return None if value is None and allow_none else check_positive(value, name)


def resolve_early_stopping(estimator, n_rows, tol=None):
    """The estimator's `(early_stopping, validation_fraction, n_iter_no_change, tol)`, checked,
    with `early_stopping="auto"` resolved for a fit on `n_rows` rows."""
    value = estimator.early_stopping
    if isinstance(value, str) and value == "auto":
        value = n_rows >= AUTO_EARLY_STOPPING_ROWS
    elif not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"`early_stopping` must be True, False or 'auto'; received {value!r}."
        )
    return check_early_stopping(
        bool(value), estimator.validation_fraction, estimator.n_iter_no_change,
        estimator.tol if tol is None else tol,
    )


def hold_out(X, seed, stopping):
    """`(X_train, X_val)`: a random `validation_fraction` of the rows held out when early
    stopping is on (`stopping` from `resolve_early_stopping`), else `(X, None)`."""
    if not stopping[0]:
        return X, None
    train, val = validation_rows(X.shape[0], stopping[1], seed)
    return X[train], X[val]


def renamed_parameter(estimator, old, new):
    """The value of parameter `new`, or of its former name `old` (with a `FutureWarning`)."""
    value = getattr(estimator, old)
    if value is None:
        return getattr(estimator, new)
    warnings.warn(
        f"`{old}` of {type(estimator).__name__} was renamed `{new}` (the name it has in every "
        f"estimator of tiedae); `{old}` stops working in the next release.",
        FutureWarning,
        stacklevel=3,
    )
    return value


def sda_params(estimator, epochs, seed, stopping=(False, 0.1, 10, 1e-4)):
    """The `StackedDenoisingAutoencoder` arguments held by an estimator; `stopping` is
    `resolve_early_stopping`'s result."""
    early_stopping, validation_fraction, n_iter_no_change, tol = stopping
    return dict(
        layer_sizes=list(estimator.layer_sizes)
        if isinstance(estimator.layer_sizes, (list, tuple))
        else estimator.layer_sizes,
        activation=estimator.activation,
        corruption=estimator.corruption,
        corruption_level=estimator.corruption_level,
        loss=estimator.loss,
        optimizer=estimator.optimizer,
        learning_rate=estimator.learning_rate,
        epochs=epochs,
        batch_size=estimator.batch_size,
        seed=seed,
        verbose=estimator.verbose,
        early_stopping=early_stopping,
        validation_fraction=validation_fraction,
        n_iter_no_change=n_iter_no_change,
        tol=tol,
        precision=getattr(estimator, "precision", None),
    )


def predict_in_batches(model, X, batch_size):
    """`model(X, training=False)` as a NumPy array, in batches of at least 1,024 rows."""
    return map_in_batches(lambda b: model(b, training=False), X, max(int(batch_size), 1024))


def as_float32(x):
    return x if x.dtype == np.float32 else x.astype(np.float32)
