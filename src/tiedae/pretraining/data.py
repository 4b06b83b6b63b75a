"""Input checks and batching for pretraining: dense arrays or scipy sparse matrices.

Large sparse matrices are never densified as a whole: batches are densified
one at a time, so a large count matrix costs one dense batch of memory. Small
ones (up to `DENSIFY_LIMIT` entries) are densified once, which is faster.
"""

import keras
import numpy as np

try:  # scipy is a dependency, but keep the import failure local.
    import scipy.sparse as _sp
except ImportError:  # pragma: no cover
    _sp = None


def is_sparse(x):
    return _sp is not None and _sp.issparse(x)


def check_matrix(x, name="x", n_features=None):
    """Return `x` as a 2-D float32 array (or CSR matrix) or raise a one-line `ValueError`.

    Checks: 2-D, numeric, at least one row and one column, no NaN or infinite
    values, and (when `n_features` is given) the expected number of columns.
    """
    if x is None:
        raise ValueError(f"`{name}` is None; pass a 2-D array of shape (n_samples, n_features).")
    from tiedae.pretraining.streaming import as_streamed, is_streamed

    if is_streamed(x):  # on disk: checked by shape here, by value as it is streamed
        return as_streamed(x, name, n_features=n_features)
    if is_sparse(x):
        x = _sp.csr_matrix(x)
        values = x.data
    else:
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"`{name}` could not be read as a numeric array ({error}); pass a 2-D "
                "array of numbers."
            ) from None
        values = x
    if x.ndim != 2:
        raise ValueError(
            f"`{name}` must be 2-D (n_samples, n_features); received an array of shape "
            f"{x.shape}. Reshape it, e.g. x.reshape(len(x), -1)."
        )
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool) or np.issubdtype(
        values.dtype, np.complexfloating
    ):
        raise ValueError(
            f"`{name}` must hold real numbers; received dtype {values.dtype}. Convert it "
            "with x.astype('float32')."
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"`{name}` is empty (shape {x.shape}); pass at least one sample and one feature."
        )
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(
            f"`{name}` has {x.shape[1]} features but the model was trained on "
            f"{n_features}; pass data with {n_features} columns."
        )
    values = values.astype(np.float32, copy=False)
    n_bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if n_bad:
        where = ""
        if values.ndim == 2:  # dense: point at the first one
            row, column = np.argwhere(~np.isfinite(values))[0]
            where = f" (first at row {row}, column {column})"
        raise ValueError(
            f"`{name}` contains {n_bad} NaN or infinite values{where}; remove or impute them "
            "(e.g. sklearn.impute.SimpleImputer) first."
        )
    if is_sparse(x):
        x = x.astype(np.float32)
        x.data = values
        return x
    return values


#: Sparse matrices with at most this many entries (64 MiB as float32) are
#: densified whole: cheaper than feeding them batch by batch through Python.
DENSIFY_LIMIT = 2**24


def densify_if_small(x):
    """A small sparse matrix as a dense float32 array; anything else unchanged."""
    if is_sparse(x) and x.shape[0] * x.shape[1] <= DENSIFY_LIMIT:
        return np.asarray(x.toarray(), dtype=np.float32)
    return x


def data_range(x):
    """(min, max) of a dense array or sparse matrix (implicit zeros included)."""
    return float(x.min()), float(x.max())


def dense_batch(x, start, stop):
    batch = x[start:stop]
    if is_sparse(batch):
        batch = batch.toarray()
    return np.asarray(batch, dtype=np.float32)


def map_in_batches(fn, x, batch_size):
    """Apply `fn` (tensor -> tensor) to `x` in batches; return a NumPy array.

    Used for the clean codes of each layer, which are computed once per layer
    rather than inside every training step. `streaming.map_rows` in memory.
    """
    from tiedae.pretraining.streaming import map_rows  # streaming imports this module

    return map_rows(fn, x, batch_size, spill=False)


class SparseBatches(keras.utils.PyDataset):
    """Batches of a sparse matrix `x`, densified one at a time.

    Yields `(batch, y[rows])`, or `(batch,)` for a `ReconstructionModel` (an
    autoencoder that takes its input as the target) when `y` is `None`. The order is reshuffled at the start of every epoch with
    NumPy's global generator, the same source `model.fit` uses for dense arrays
    on JAX and PyTorch, so seeding the run seeds the order.
    """

    def __init__(self, x, batch_size, shuffle=True, y=None):
        super().__init__()
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.order = np.arange(x.shape[0])

    def __len__(self):
        return -(-self.x.shape[0] // self.batch_size)

    def on_epoch_begin(self):
        if self.shuffle:
            self.order = np.random.permutation(self.x.shape[0])

    def __getitem__(self, index):
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        batch = np.asarray(self.x[rows].toarray(), dtype=np.float32)
        return (batch,) if self.y is None else (batch, self.y[rows])
