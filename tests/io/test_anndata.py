"""Reading and writing .h5ad files: sparse stays sparse, backed stays on disk, writes are atomic."""

import os

import numpy as np
import pytest
import scipy.sparse as sp

from tiedae.io import DataError, load_matrix, read_h5ad, write_h5ad
from tiedae.io.anndata import load_h5ad, matrix_of

anndata = pytest.importorskip("anndata")


def _counts(rng, n=30, genes=12, density=0.3):
    dense = rng.poisson(2.0, size=(n, genes)).astype(np.float32)
    dense[rng.random((n, genes)) > density] = 0
    return dense


@pytest.fixture
def adata(rng):
    dense = _counts(rng)
    a = anndata.AnnData(sp.csr_matrix(dense))
    a.var_names = [f"gene{i}" for i in range(dense.shape[1])]
    a.obs["cell_type"] = np.array(["T", "B", "NK"] * 10)
    a.layers["dense_counts"] = dense
    return a


def test_sparse_x_is_read_as_csr_with_names_and_labels(tmp_path, adata):
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    X, y, names = load_matrix(path, label_column="cell_type")
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.float32
    np.testing.assert_array_equal(X.toarray(), adata.X.toarray())
    assert list(y) == ["T", "B", "NK"] * 10
    assert names == [f"gene{i}" for i in range(12)]


def test_dense_layer_and_unknown_layer(tmp_path, adata):
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    X, _, _ = load_h5ad(path, layer="dense_counts")
    assert isinstance(X, np.ndarray)
    np.testing.assert_array_equal(X, adata.layers["dense_counts"])
    with pytest.raises(DataError, match="no layer 'counts'.*dense_counts"):
        load_h5ad(path, layer="counts")


def test_unknown_label_column_lists_obs_columns(tmp_path, adata):
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(DataError, match="no column 'label' in obs.*cell_type"):
        load_matrix(path, label_column="label")


@pytest.mark.parametrize("sparse", [True, False])
def test_backed_mode_leaves_x_on_disk(tmp_path, adata, sparse):
    if not sparse:
        adata.X = adata.X.toarray()
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    X, _, _ = load_matrix(path, mmap=True)  # mmap=True: backed for .h5ad
    assert not isinstance(X, np.ndarray) and not sp.issparse(X)
    block = X[3:7]
    block = block.toarray() if sp.issparse(block) else block
    expected = adata.X[3:7]
    np.testing.assert_array_equal(block, expected.toarray() if sparse else expected)


def test_csc_matrix_in_memory_becomes_csr(adata):
    adata.X = sp.csc_matrix(adata.X)
    X = matrix_of(adata)
    assert X.format == "csr"
    np.testing.assert_array_equal(X.toarray(), adata.X.toarray())


def test_missing_and_corrupt_files_raise_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_h5ad(tmp_path / "nope.h5ad")
    bad = tmp_path / "bad.h5ad"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(DataError, match="cannot read .* as .h5ad"):
        read_h5ad(bad)


def test_write_is_atomic_and_round_trips(tmp_path, adata):
    path = tmp_path / "out.h5ad"
    adata.obsm["X_tiedae"] = np.arange(60, dtype=np.float32).reshape(30, 2)
    write_h5ad(adata, path)
    back = read_h5ad(path)
    np.testing.assert_array_equal(back.obsm["X_tiedae"], adata.obsm["X_tiedae"])
    assert sorted(os.listdir(tmp_path)) == ["out.h5ad"]  # no temporary left behind

    class Failing:
        isbacked = False

        def write_h5ad(self, filename, compression=None):
            with open(filename, "wb") as handle:
                handle.write(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_h5ad(Failing(), path)
    np.testing.assert_array_equal(read_h5ad(path).obsm["X_tiedae"], adata.obsm["X_tiedae"])
    assert sorted(os.listdir(tmp_path)) == ["out.h5ad"]


def test_write_refuses_wrong_suffix_and_own_backing_file(tmp_path, adata):
    with pytest.raises(DataError, match="must end in '.h5ad'"):
        write_h5ad(adata, tmp_path / "out.h5")
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    backed = read_h5ad(path, backed=True)
    with pytest.raises(DataError, match="backed by"):
        write_h5ad(backed, path)
    backed.obsm["X_new"] = np.ones((30, 3), dtype=np.float32)
    write_h5ad(backed, tmp_path / "copy.h5ad")  # X is copied from the backing file
    copy = read_h5ad(tmp_path / "copy.h5ad")
    np.testing.assert_array_equal(copy.X.toarray(), adata.X.toarray())
    np.testing.assert_array_equal(copy.obsm["X_new"], np.ones((30, 3)))
