"""Matrix Market files in the 10x layout: orientation, names, gzip, errors."""

import gzip
import shutil

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from tiedae.io import DataError, load_matrix, read_mtx
from tiedae.io.mtx import make_unique


def _gzip(path):
    with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()


def _write_10x(folder, counts, symbols, v3=True, gz=True, prefix=""):
    """Write `counts` (cells x genes) the way Cell Ranger does: genes x cells."""
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.mmwrite(folder / f"{prefix}matrix.mtx", sp.coo_matrix(counts.T.astype(np.int64)))
    name = "features.tsv" if v3 else "genes.tsv"
    lines = [
        f"ENSG{i:05d}\t{s}" + ("\tGene Expression" if v3 else "") for i, s in enumerate(symbols)
    ]
    (folder / f"{prefix}{name}").write_text("\n".join(lines) + "\n")
    (folder / f"{prefix}barcodes.tsv").write_text(
        "\n".join(f"CELL{j}-1" for j in range(counts.shape[0])) + "\n"
    )
    if gz:
        for path in list(folder.iterdir()):
            _gzip(path)


@pytest.fixture
def counts(rng):
    dense = rng.poisson(1.5, size=(7, 5)).astype(np.float32)
    dense[rng.random(dense.shape) > 0.5] = 0
    return dense


def test_10x_folder_v3_gzipped(tmp_path, counts):
    _write_10x(tmp_path / "filtered", counts, ["A", "B", "C", "D", "E"])
    data = read_mtx(tmp_path / "filtered")
    assert sp.issparse(data.X) and data.X.format == "csr" and data.X.dtype == np.float32
    np.testing.assert_array_equal(data.X.toarray(), counts)  # transposed to cells x genes
    assert data.var_names == ["A", "B", "C", "D", "E"]
    assert data.gene_ids == [f"ENSG{i:05d}" for i in range(5)]
    assert data.feature_types == ["Gene Expression"] * 5
    assert data.obs_names == [f"CELL{j}-1" for j in range(7)]


def test_v2_plain_file_with_prefix_and_duplicate_symbols(tmp_path, counts):
    _write_10x(tmp_path, counts, ["A", "B", "A", "C", "A"], v3=False, gz=False, prefix="GSM1_")
    data = read_mtx(tmp_path / "GSM1_matrix.mtx")
    np.testing.assert_array_equal(data.X.toarray(), counts)
    assert data.var_names == ["A", "B", "A-1", "C", "A-2"]
    assert data.feature_types is None
    ids = read_mtx(tmp_path / "GSM1_matrix.mtx", var_names="gene_ids").var_names
    assert ids == [f"ENSG{i:05d}" for i in range(5)]


def test_bare_mtx_rows_are_cells_unless_transposed(tmp_path, counts):
    scipy.io.mmwrite(tmp_path / "x.mtx", sp.coo_matrix(counts))
    data = read_mtx(tmp_path / "x.mtx")
    np.testing.assert_array_equal(data.X.toarray(), counts)
    assert data.var_names == [str(i) for i in range(5)] and len(data.obs_names) == 7
    flipped = read_mtx(tmp_path / "x.mtx", transpose=True)
    np.testing.assert_array_equal(flipped.X.toarray(), counts.T)


def test_load_matrix_dispatches_mtx_and_folders(tmp_path, counts):
    _write_10x(tmp_path / "tenx", counts, list("ABCDE"))
    X, y, names = load_matrix(tmp_path / "tenx")
    assert sp.issparse(X) and y is None and names == list("ABCDE")
    X2, _, _ = load_matrix(tmp_path / "tenx" / "matrix.mtx.gz")
    np.testing.assert_array_equal(X.toarray(), X2.toarray())
    with pytest.raises(DataError, match="--labels FILE"):
        load_matrix(tmp_path / "tenx", label_column="cell_type")


def test_to_anndata(tmp_path, counts):
    pytest.importorskip("anndata")
    _write_10x(tmp_path, counts, list("ABCDE"))
    adata = read_mtx(tmp_path).to_anndata()
    assert adata.shape == (7, 5) and sp.issparse(adata.X)
    assert list(adata.var_names) == list("ABCDE")
    assert list(adata.var["gene_ids"]) == [f"ENSG{i:05d}" for i in range(5)]
    assert adata.obs_names[0] == "CELL0-1"


def test_mismatched_gene_file_and_missing_matrix(tmp_path, counts):
    _write_10x(tmp_path / "bad", counts, list("ABCDE"), gz=False)
    (tmp_path / "bad" / "features.tsv").write_text("ENSG0\tA\nENSG1\tB\n")
    with pytest.raises(DataError, match="lists 2 genes but the matrix"):
        read_mtx(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="without matrix.mtx"):
        read_mtx(tmp_path / "empty")
    (tmp_path / "broken.mtx").write_text("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1\n")
    with pytest.raises(DataError, match="cannot read .* as Matrix Market"):
        read_mtx(tmp_path / "broken.mtx")


def test_make_unique_skips_names_already_taken():
    assert make_unique(["A", "A", "A-1", "B"]) == ["A", "A-2", "A-1", "B"]
