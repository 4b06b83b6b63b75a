"""Helpers shared by the scikit-learn estimators."""

import numpy as np
from sklearn.utils import check_random_state

from tiedae._validation import check_positive
from tiedae.pretraining.data import map_in_batches


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


def sda_params(estimator, epochs, seed):
    """The `StackedDenoisingAutoencoder` arguments held by an estimator."""
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
    )


def predict_in_batches(model, X, batch_size):
    """`model(X, training=False)` as a NumPy array, in batches of at least 1,024 rows."""
    return map_in_batches(lambda b: model(b, training=False), X, max(int(batch_size), 1024))


def as_float32(x):
    return x if x.dtype == np.float32 else x.astype(np.float32)
