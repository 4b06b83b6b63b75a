"""Read Matrix Market (`.mtx`) count matrices with their gene and barcode files.

The layout written by 10x Genomics Cell Ranger (and many other tools) is a
folder with

```
matrix.mtx.gz      genes x cells, sparse counts
features.tsv.gz    one gene per line: id, symbol[, feature type]  (genes.tsv in v2)
barcodes.tsv.gz    one cell barcode per line
```

(optionally with a common prefix, e.g. `GSM123_matrix.mtx.gz`,
`GSM123_features.tsv.gz`). `read_mtx` returns the cells x genes matrix as a
float32 CSR matrix, never densified.
"""

import gzip
import os
from typing import NamedTuple

import numpy as np

from tiedae.io.errors import DataError, read_error

MTX_EXTENSIONS = (".mtx", ".mtx.gz")
_FEATURE_FILES = ("features.tsv", "genes.tsv")
_BARCODE_FILES = ("barcodes.tsv",)


class MatrixMarketData(NamedTuple):
    """What `read_mtx` returns.

    Attributes:
        X: `scipy.sparse.csr_matrix` of shape `(n_cells, n_genes)`, float32.
        var_names: Gene names, one per column (unique; see `read_mtx`).
        obs_names: Cell barcodes, one per row (`"0"`, `"1"`, ... without a
            barcode file).
        gene_ids: The first column of the feature file (e.g. Ensembl IDs), or
            `None` without a feature file.
        feature_types: The third column of a v3 feature file, or `None`.
    """

    X: object
    var_names: list
    obs_names: list
    gene_ids: list = None
    feature_types: list = None

    def to_anndata(self):
        """The data as an `anndata.AnnData` (gene IDs and types in `var`)."""
        from tiedae.io.anndata import _anndata

        anndata = _anndata()
        import pandas as pd

        var = pd.DataFrame(index=pd.Index(self.var_names, name=None))
        if self.gene_ids is not None:
            var["gene_ids"] = self.gene_ids
        if self.feature_types is not None:
            var["feature_types"] = self.feature_types
        obs = pd.DataFrame(index=pd.Index(self.obs_names, name=None))
        return anndata.AnnData(X=self.X, obs=obs, var=var)


def make_unique(names):
    """Append `-1`, `-2`, ... to repeated names (AnnData's `var_names_make_unique`)."""
    names = [str(n) for n in names]
    taken = set(names)
    seen = {}
    unique = []
    for name in names:
        if name not in seen:
            seen[name] = 0
            unique.append(name)
            continue
        count = seen[name]
        while True:
            count += 1
            candidate = f"{name}-{count}"
            if candidate not in taken:
                break
        seen[name] = count
        taken.add(candidate)
        unique.append(candidate)
    return unique


def _open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_tsv(path):
    try:
        with _open_text(path) as handle:
            return [line.rstrip("\r\n").split("\t") for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise DataError(f"cannot read {path!r}: {err}") from None


def _find_sidecar(folder, prefix, names):
    for name in names:
        for suffix in (".gz", ""):
            path = os.path.join(folder, prefix + name + suffix)
            if os.path.isfile(path):
                return path
    return None


def _locate(path):
    """(matrix file, feature file or None, barcode file or None)."""
    if os.path.isdir(path):
        matrix = _find_sidecar(path, "", ("matrix.mtx",))
        if matrix is None:
            raise DataError(
                f"{path!r} is a folder without matrix.mtx or matrix.mtx.gz; pass the .mtx "
                "file or a 10x-style folder (matrix.mtx.gz, features.tsv.gz, barcodes.tsv.gz)."
            )
        folder, prefix = path, ""
    elif os.path.isfile(path):
        matrix = path
        folder, base = os.path.split(os.path.abspath(path))
        stem = base[: -len(".gz")] if base.endswith(".gz") else base
        stem = stem[: -len(".mtx")] if stem.endswith(".mtx") else stem
        prefix = stem[: -len("matrix")] if stem.endswith("matrix") else None
    else:
        raise DataError(f"input {path!r} does not exist; check the path.")
    if prefix is None:  # e.g. counts.mtx: look for counts.genes.tsv-style names too
        prefix = ""
    features = _find_sidecar(folder, prefix, _FEATURE_FILES)
    barcodes = _find_sidecar(folder, prefix, _BARCODE_FILES)
    return matrix, features, barcodes


def read_mtx(path, var_names="gene_symbols", transpose=None):
    """Read a Matrix Market count matrix and its gene and barcode files.

    Args:
        path: A `.mtx` / `.mtx.gz` file, or a folder holding `matrix.mtx[.gz]`.
            Gene (`features.tsv[.gz]` or `genes.tsv[.gz]`) and barcode
            (`barcodes.tsv[.gz]`) files are looked for beside the matrix, with
            the same prefix as the matrix file (`X_matrix.mtx` -> `X_features.tsv`).
        var_names: "gene_symbols" (the second column of the feature file,
            made unique by appending `-1`, `-2`, ... as AnnData does; gene-set
            files use symbols) or "gene_ids" (the first column).
        transpose: Whether the file stores genes as rows. `None` decides from
            the gene and barcode files: 10x files store genes x cells; without
            either file the rows are taken to be cells.

    Returns:
        A `MatrixMarketData` with a float32 CSR `X` of shape (cells, genes).

    Raises:
        DataError: a file is missing, unreadable or does not match the
            matrix's shape.
    """
    import scipy.io
    import scipy.sparse

    if var_names not in ("gene_symbols", "gene_ids"):
        raise ValueError(f"`var_names` must be 'gene_symbols' or 'gene_ids'; received {var_names!r}.")
    path = os.fspath(path)
    matrix_path, features_path, barcodes_path = _locate(path)
    try:
        matrix = scipy.io.mmread(matrix_path)
    except (OSError, ValueError, EOFError, IndexError) as err:
        raise read_error(matrix_path, "Matrix Market", err, "the file may be truncated or not Matrix Market") from None
    if not scipy.sparse.issparse(matrix):
        matrix = scipy.sparse.coo_matrix(matrix)  # an "array" (dense) .mtx file
    rows, cols = matrix.shape
    features = _read_tsv(features_path) if features_path else None
    barcodes = _read_tsv(barcodes_path) if barcodes_path else None
    if transpose is None:
        transpose = _genes_are_rows(rows, cols, features, barcodes)
    n_cells, n_genes = (cols, rows) if transpose else (rows, cols)
    if features is not None and len(features) != n_genes:
        raise DataError(
            f"{features_path!r} lists {len(features)} genes but the matrix {matrix_path!r} has "
            f"{n_genes} ({'rows' if transpose else 'columns'}); they must match one to one."
        )
    if barcodes is not None and len(barcodes) != n_cells:
        raise DataError(
            f"{barcodes_path!r} lists {len(barcodes)} barcodes but the matrix {matrix_path!r} "
            f"has {n_cells} cells ({'columns' if transpose else 'rows'})."
        )
    X = scipy.sparse.csr_matrix(matrix.T if transpose else matrix, dtype=np.float32)
    X.sum_duplicates()
    gene_ids = feature_types = None
    if features is not None:
        gene_ids = [f[0] for f in features]
        symbols = [f[1] if len(f) > 1 else f[0] for f in features]
        if all(len(f) > 2 for f in features):
            feature_types = [f[2] for f in features]
        names = make_unique(symbols if var_names == "gene_symbols" else gene_ids)
    else:
        names = [str(i) for i in range(n_genes)]
    cells = [b[0] for b in barcodes] if barcodes is not None else [str(i) for i in range(n_cells)]
    return MatrixMarketData(X, names, cells, gene_ids, feature_types)


def _genes_are_rows(rows, cols, features, barcodes):
    if features is not None:
        if len(features) == rows:
            return True
        if len(features) == cols:
            return False
    if barcodes is not None:
        if len(barcodes) == cols:
            return True
        if len(barcodes) == rows:
            return False
    return features is not None or barcodes is not None  # 10x layout; mismatch reported later


def load_mtx(path, label_column=None):
    """`(X, None, gene names)` of a Matrix Market file, for `tiedae.io.load_matrix`."""
    if label_column is not None:
        raise DataError(
            "--label-column names a column of a .csv/.tsv (or an obs column of an .h5ad); "
            f"{os.fspath(path)!r} is Matrix Market: pass labels with --labels FILE."
        )
    data = read_mtx(path)
    return data.X, None, data.var_names


def read_barcodes(path):
    """The cell barcodes beside a Matrix Market file or in a 10x folder, or `None`."""
    _, _, barcodes_path = _locate(os.fspath(path))
    return [b[0] for b in _read_tsv(barcodes_path)] if barcodes_path else None
