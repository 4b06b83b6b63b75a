"""Read and write AnnData (`.h5ad`) files, the format of scanpy and most single-cell tools.

`anndata` and `h5py` are imported only when a function here is called, so the
rest of tiedae works without them. A matrix read in memory keeps its storage:
a sparse `X` stays a `scipy.sparse` CSR matrix. In backed mode (`backed=True`)
`X` stays on disk, as an `h5py.Dataset` (dense) or an AnnData CSR dataset
(sparse), and tiedae streams it in batches (`tiedae.pretraining.streaming`).
"""

import os

import numpy as np

from tiedae.io.atomic import atomic_path
from tiedae.io.errors import DataError, read_error

H5AD_EXTENSIONS = (".h5ad",)


def _anndata():
    try:
        import anndata
    except ImportError:  # pragma: no cover - anndata is a dependency
        raise DataError(
            "reading or writing .h5ad files needs the `anndata` package: "
            "pip install 'anndata>=0.10' h5py"
        ) from None
    return anndata


def read_h5ad(path, backed=False):
    """Open an `.h5ad` file as an `anndata.AnnData`.

    Args:
        path: The `.h5ad` file.
        backed: If `True`, open it read-only in backed mode: `X` is left on
            disk and read in slices (for data larger than memory). The other
            fields (`obs`, `var`, `obsm`, ...) are read into memory and may be
            modified; `write_h5ad` writes the whole object, `X` included, to a
            new file.

    Returns:
        The `AnnData` object.

    Raises:
        DataError: the file is missing or not a readable `.h5ad`.
    """
    anndata = _anndata()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"input file {path!r} does not exist; check the path.")
    try:
        return anndata.read_h5ad(path, backed="r" if backed else None)
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise read_error(path, ".h5ad", err, "the file may be truncated or not written by anndata") from None


def matrix_of(adata, layer=None):
    """`adata.X` (or `adata.layers[layer]`) without densifying it.

    A dense in-memory matrix comes back as a float32 array, a sparse one as a
    CSR matrix, a backed one as the on-disk dataset itself.
    """
    if layer is None:
        X = adata.X
        if X is None:
            raise DataError("the AnnData object has no X matrix; pass `layer=` to use a layer.")
    else:
        if layer not in adata.layers:
            known = ", ".join(adata.layers.keys()) or "none"
            raise DataError(f"the AnnData object has no layer {layer!r} (layers: {known}).")
        X = adata.layers[layer]
    return as_matrix(X)


def as_matrix(X):
    """Normalise an AnnData matrix: CSR for sparse, array for dense, datasets untouched."""
    import scipy.sparse

    if scipy.sparse.issparse(X):
        if X.format != "csr":  # rows are samples: row slicing must be cheap
            X = scipy.sparse.csr_matrix(X)
        return X
    if _is_backed_dataset(X):
        return X
    return np.asarray(X)


def _is_backed_dataset(X):
    try:
        import h5py

        if isinstance(X, h5py.Dataset):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        from anndata.abc import CSCDataset, CSRDataset
    except ImportError:  # pragma: no cover
        return False
    return isinstance(X, (CSRDataset, CSCDataset))


def load_h5ad(path, label_column=None, layer=None, backed=False):
    """The feature matrix, optional labels and gene names of an `.h5ad` file.

    Args:
        path: The `.h5ad` file.
        label_column: Optional column of `adata.obs` holding the labels
            (e.g. "cell_type").
        layer: Optional name of a layer to use instead of `X` (e.g. "counts").
        backed: Leave `X` on disk (see `read_h5ad`).

    Returns:
        `(X, y, feature_names)`: `X` a float array, a CSR matrix or an on-disk
        dataset; `y` a NumPy array or `None`; `feature_names` the `var_names`.
    """
    adata = read_h5ad(path, backed=backed)
    X = matrix_of(adata, layer)
    y = None
    if label_column is not None:
        if label_column not in adata.obs.columns:
            known = ", ".join(map(str, adata.obs.columns)) or "none"
            raise DataError(
                f"{os.fspath(path)!r} has no column {label_column!r} in obs (columns: {known})."
            )
        y = adata.obs[label_column].to_numpy()
    return X, y, [str(name) for name in adata.var_names]


def write_h5ad(adata, path, compression=None):
    """Write `adata` to `path` atomically (a temporary file renamed into place).

    A reader never sees a half-written file, and an error leaves an existing
    `path` untouched. A backed object may be written to a new path (its `X` is
    copied from the file it is backed by), but not over that file.

    Args:
        adata: The `AnnData` object.
        path: Destination `.h5ad` file.
        compression: Optional h5py compression for the matrices, e.g. "gzip".
    """
    path = os.fspath(path)
    if not path.endswith(".h5ad"):
        raise DataError(f"an AnnData file must end in '.h5ad'; received {path!r}.")
    backing = getattr(adata, "filename", None) if getattr(adata, "isbacked", False) else None
    if backing is not None and os.path.abspath(os.fspath(backing)) == os.path.abspath(path):
        raise DataError(
            f"{path!r} is the file this AnnData object is backed by; write to another path."
        )
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression=compression)
