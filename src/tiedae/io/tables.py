"""Read feature matrices and labels from .npy, .npz, .csv, .tsv, .h5ad and .mtx files."""

import contextlib
import csv
import os
import zipfile

import numpy as np

from tiedae.io.errors import DataError, read_error

MATRIX_FORMATS = (".npy", ".npz", ".csv", ".tsv", ".txt", ".h5ad", ".mtx", ".mtx.gz")


def load_matrix(path, label_column=None, mmap=False):
    """Load a 2-D feature matrix, and labels when a label column is named.

    Args:
        path: A `.npy`, `.npz`, `.csv`, `.tsv` or `.txt` file. In an `.npz`
            the features are the array named `X` or `x` (or the only array),
            and labels the array named `y` when present. Also an AnnData
            `.h5ad` file (its `X`; gene names from `var_names`), or a Matrix
            Market `.mtx[.gz]` file or 10x folder (see `tiedae.io.mtx`).
        label_column: For delimited text, the name (with a header) or 0-based
            index of the column that holds the labels; it is removed from the
            features. For an `.h5ad`, a column of `obs`.
        mmap: Memory-map a `.npy` file instead of reading it into RAM; for an
            `.h5ad`, open it in backed mode (`X` stays on disk).

    Returns:
        `(X, y, feature_names)`; `y` and `feature_names` may be `None`. `X`
        is a `scipy.sparse` CSR matrix when the file stores it sparse
        (`.mtx`, sparse `.h5ad`), never densified here.

    Raises:
        DataError: the file is missing, unreadable, truncated, not numeric or
            not 2-D; the message says which and what to do.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"input file {path!r} does not exist; check the path.")
    lowered = path.lower()
    if lowered.endswith((".mtx", ".mtx.gz")) or _is_10x_folder(path):
        from tiedae.io.mtx import load_mtx

        X, y, names = load_mtx(path, label_column)
        return check_matrix(X, path), y, names
    if not os.path.isfile(path):
        raise DataError(
            f"input path {path!r} is not a file (nor a 10x folder holding matrix.mtx[.gz])."
        )
    ext = os.path.splitext(path)[1].lower()
    if ext == ".h5ad":
        from tiedae.io.anndata import load_h5ad

        X, y, names = load_h5ad(path, label_column=label_column, backed=mmap)
        return check_matrix(X, path), y, names
    if ext == ".npy":
        X, y, names = _load_npy(path, mmap), None, None
    elif ext == ".npz":
        X, y, names = _load_npz(path)
    elif ext in (".csv", ".tsv", ".txt"):
        X, y, names = _load_delimited(path, label_column)
    else:
        raise DataError(
            f"cannot read {path!r}: unknown extension {ext!r}; use one of "
            f"{', '.join(MATRIX_FORMATS)} (or .h5ad / .mtx where supported)."
        )
    if label_column is not None and ext in (".npy", ".npz") and y is None:
        raise DataError(
            f"--label-column applies to .csv/.tsv files; {path!r} is {ext}. "
            "Put labels in an array 'y' of the .npz or pass --labels FILE."
        )
    return check_matrix(X, path), y, names


def _is_10x_folder(path):
    return os.path.isdir(path) and any(
        os.path.isfile(os.path.join(path, name)) for name in ("matrix.mtx", "matrix.mtx.gz")
    )


def check_matrix(X, source="input"):
    """Check that X is a non-empty, finite, numeric 2-D array; return it.

    A sparse matrix is checked through its stored values; an on-disk matrix
    (memory map, backed `.h5ad`) only by shape and dtype, since scanning it
    would read it all (streaming checks its batches).
    """
    import scipy.sparse

    if scipy.sparse.issparse(X) or not isinstance(X, np.ndarray):
        values = X.data if scipy.sparse.issparse(X) else None
        if len(X.shape) != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise DataError(f"{source}: expected a non-empty 2-D matrix; got shape {X.shape}.")
        dtype = np.dtype(X.dtype)
        if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
            raise DataError(f"{source}: expected numbers but the matrix has dtype {dtype}.")
        if values is not None and not np.all(np.isfinite(values)):
            n_bad = int(values.size - np.count_nonzero(np.isfinite(values)))
            raise DataError(f"{source}: {n_bad} stored value(s) are NaN or infinite; impute or drop them first.")
        return X
    if X.ndim == 1:
        raise DataError(
            f"{source}: expected a 2-D matrix (samples x features) but got a 1-D "
            f"array of length {X.shape[0]}; reshape it to (-1, 1) for one feature "
            "or (1, -1) for one sample."
        )
    if X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{source}: the matrix is empty (shape {X.shape}).")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DataError(f"{source}: expected numbers but the array has dtype {X.dtype}.")
    if np.issubdtype(X.dtype, np.floating) and not isinstance(X, np.memmap):
        bad = ~np.isfinite(X)
        n_bad = int(bad.sum())
        if n_bad:
            rows, cols = np.nonzero(bad)
            raise DataError(
                f"{source}: {n_bad} value(s) are NaN or infinite (first at row "
                f"{rows[0]}, column {cols[0]}); impute or drop them first."
            )
    return X


def load_labels(path, n_rows=None):
    """Load a label vector from .npy, .npz (array 'y' or the only one) or a text file.

    A text file holds one label per row (the last column). A non-numeric first row is a
    header when the labels below it are numbers; above text labels it is one unless the
    file has exactly `n_rows` rows.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"labels file {path!r} does not exist; check the path.")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            y = np.load(path, allow_pickle=False)
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                key = "y" if "y" in archive.files else _only_key(archive, path)
                y = archive[key]
        else:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = [row for row in csv.reader(handle, _dialect(path)) if row]
            if rows and not _is_number(rows[0][-1]) and (
                all(_is_number(row[-1]) for row in rows[1:]) or len(rows) != n_rows
            ):
                rows = rows[1:]  # a header; text labels may have none
            y = np.array([row[-1].strip() for row in rows])
            y = _as_numeric_if_possible(y)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"cannot read labels from {path!r}: {err}") from None
    y = np.asarray(y).reshape(-1) if np.ndim(y) > 1 and max(np.shape(y)) == np.size(y) else y
    if y.ndim != 1:
        raise DataError(f"labels in {path!r} must be a 1-D vector; got shape {y.shape}.")
    if n_rows is not None and len(y) != n_rows:
        raise DataError(
            f"{len(y)} labels in {path!r} but the data has {n_rows} rows; "
            "they must match one to one."
        )
    return y


def _load_npy(path, mmap):
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        if not _has_npy_magic(path):  # NumPy then guesses "pickled data", which misleads
            raise DataError(
                f"{path!r} is not a NumPy .npy file (it lacks the .npy header); save the "
                "array with numpy.save, or give the file its real extension."
            ) from None
        raise read_error(path, ".npy", err) from None


def _has_npy_magic(path):
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        return handle.read(6) == b"\x93NUMPY"
    return True  # unreadable: the OSError itself is the better message


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            key = next((k for k in ("X", "x") if k in names), None)
            if key is None:
                candidates = [k for k in archive.files if k not in ("y", "feature_names")]
                if len(candidates) != 1:
                    raise DataError(
                        f"{path!r} holds arrays {sorted(names)}; name the features "
                        "'X' (and the labels 'y') so it is clear which is which."
                    )
                key = candidates[0]
            X = archive[key]
            y = archive["y"] if "y" in names else None
            feature_names = (
                [str(n) for n in archive["feature_names"]] if "feature_names" in names else None
            )
    except DataError:  # our own sentence (arrays not named X/y) is the cause
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise read_error(path, ".npz", err) from None
    return X, y, feature_names


def _load_delimited(path, label_column):
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle, _dialect(path)) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path!r} as delimited text: {err}") from None
    if not rows:
        raise DataError(f"{path!r} is empty.")
    header = None
    if _has_header(rows[0], label_column):
        header = [cell.strip() for cell in rows[0]]
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path!r} has a header but no data rows.")
    width = len(rows[0])
    label_index = _label_index(label_column, header, width, path)
    labels, features = [], []
    for r, row in enumerate(rows):
        if len(row) != width:
            raise DataError(
                f"{path!r}: row {r + 1 + (header is not None)} has {len(row)} "
                f"columns but the first data row has {width}."
            )
        values = []
        for c, cell in enumerate(row):
            if c == label_index:
                labels.append(cell.strip())
                continue
            try:
                values.append(float(cell))
            except ValueError:
                column = header[c] if header else c
                other = next((sep for sep in ";|," if sep in cell), None)
                hint = (
                    f"the file seems to be separated by {other!r}, but .csv and .txt files "
                    "are read comma-separated (.tsv: tab-separated); convert it"
                    if other and len(row) == 1
                    else "fix the cell or name the label column with --label-column"
                )
                raise DataError(
                    f"{path!r}: non-numeric value {_shorten(cell)!r} at row "
                    f"{r + 1 + (header is not None)}, column {_shorten(str(column))!r}; {hint}."
                ) from None
        features.append(values)
    X = np.asarray(features, dtype=np.float32)
    names = None
    if header:
        names = [name for i, name in enumerate(header) if i != label_index]
    y = _as_numeric_if_possible(np.array(labels)) if label_index is not None else None
    return X, y, names


def _label_index(label_column, header, width, path):
    if label_column is None:
        return None
    if header is not None and str(label_column) in header:
        return header.index(str(label_column))
    try:
        index = int(label_column)
    except (TypeError, ValueError):
        raise DataError(
            f"label column {label_column!r} is not in the header of {path!r} "
            f"(columns: {', '.join(header or [])})."
        ) from None
    if not -width <= index < width:
        raise DataError(f"label column index {index} is out of range for {width} columns.")
    return index % width


def _has_header(first_row, label_column):
    """A header is present when a label column is named, or a feature cell is not a number."""
    if label_column is not None and not str(label_column).lstrip("-").isdigit():
        return True
    skip = None if label_column is None else int(label_column) % len(first_row)
    return any(not _is_number(cell) for i, cell in enumerate(first_row) if i != skip)


def _shorten(text, limit=40):
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dialect(path):
    return "excel-tab" if path.lower().endswith(".tsv") else "excel"


def _is_number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _as_numeric_if_possible(values):
    try:
        as_float = values.astype(np.float64)
    except ValueError:
        return values
    if np.all(as_float == np.round(as_float)):
        return as_float.astype(np.int64)
    return as_float


def _only_key(archive, path):
    if len(archive.files) != 1:
        raise DataError(f"{path!r} holds arrays {archive.files}; name the labels 'y'.")
    return archive.files[0]
