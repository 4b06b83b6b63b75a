"""tiedae.sc: fit on AnnData objects built here (sparse, dense, backed, gene sets), results in obsm/varm/uns."""

import keras
import numpy as np
import pytest
import scipy.sparse as sp

anndata = pytest.importorskip("anndata")

import tiedae.sc  # noqa: E402
from tiedae.io import read_h5ad, write_h5ad  # noqa: E402
from tiedae.sc import GeneSetStackedAutoencoder, SingleCellAutoencoder  # noqa: E402

GENES = [f"G{i}" for i in range(20)]
FAST = dict(epochs=1, batch_size=20, seed=0, verbose=0)


def _counts(rng, n=60):
    x = rng.poisson(2.0, size=(n, len(GENES))).astype(np.float32)
    x[rng.random(x.shape) > 0.4] = 0
    return x


def _adata(x, sparse=True):
    a = anndata.AnnData(sp.csr_matrix(x) if sparse else x)
    a.var_names = GENES
    a.obs_names = [f"cell{i}" for i in range(x.shape[0])]
    return a


def test_fit_writes_embedding_loadings_and_parameters(rng):
    x = _counts(rng)
    adata = _adata(x)
    model = tiedae.sc.fit(adata, [6, 3], normalize=True, log1p=True, target_sum=100.0, **FAST)
    assert isinstance(model, SingleCellAutoencoder)
    assert sp.issparse(adata.X)  # the object's own matrix is left as it was
    codes = adata.obsm["X_tiedae"]
    assert codes.shape == (60, 3) and codes.dtype == np.float32
    kernel = keras.ops.convert_to_numpy(model.stack.autoencoder_.kernels[0])
    np.testing.assert_array_equal(adata.varm["tiedae_loadings"], kernel)
    assert adata.varm["tiedae_loadings"].shape == (20, 6)
    # The embedding is the encoder applied to normalised, log1p counts (NumPy reference).
    totals = x.sum(axis=1, keepdims=True)
    reference = np.log1p(np.where(totals > 0, x * 100.0 / np.maximum(totals, 1), 0))
    np.testing.assert_allclose(codes, model.stack.transform(reference.astype(np.float32)), atol=1e-5)
    params = adata.uns["tiedae"]["params"]
    assert list(params["layer_sizes"]) == [6, 3] and params["epochs"] == 1
    assert params["preprocessing"] == {"normalize": True, "log1p": True, "target_sum": 100.0}
    assert list(adata.uns["tiedae"]["losses"]) == ["mse", "binary_crossentropy"]
    assert len(adata.uns["tiedae"]["final_loss"]) == 2


def test_results_survive_h5ad_round_trip_and_embed_new_cells(tmp_path, rng):
    adata = _adata(_counts(rng))
    model = tiedae.sc.fit(adata, [4], log1p=True, key_added="X_ae", **FAST)
    assert set(adata.obsm) == {"X_ae"} and set(adata.varm) == {"ae_loadings"} and "ae" in adata.uns
    write_h5ad(adata, tmp_path / "annotated.h5ad")
    back = read_h5ad(tmp_path / "annotated.h5ad")
    np.testing.assert_array_equal(back.obsm["X_ae"], adata.obsm["X_ae"])
    np.testing.assert_array_equal(back.varm["ae_loadings"], adata.varm["ae_loadings"])
    assert back.uns["ae"]["params"]["preprocessing"]["log1p"]

    # A saved model embeds new cells the same way (preprocessing included).
    model.save(tmp_path / "model.keras")
    loaded = SingleCellAutoencoder.load(tmp_path / "model.keras")
    assert loaded.var_names == GENES and loaded.preprocessing == model.preprocessing
    new = _adata(_counts(rng, n=10))
    codes = tiedae.sc.embed(new, loaded, key_added="X_ae")
    np.testing.assert_allclose(codes, model.transform(new), atol=1e-6)
    np.testing.assert_array_equal(new.obsm["X_ae"], codes)
    np.testing.assert_allclose(
        codes, model.stack.transform(np.log1p(new.X.toarray())), atol=1e-6
    )
    with pytest.raises(ValueError, match="genes differ from the model's"):
        tiedae.sc.embed(new[:, ::-1].copy(), loaded)


def test_dense_matrix_from_a_layer(rng):
    x = _counts(rng)
    adata = _adata(np.zeros_like(x), sparse=False)
    adata.layers["counts"] = x
    model = tiedae.sc.fit(adata, [5], layer="counts", **FAST)
    assert adata.uns["tiedae"]["params"]["layer"] == "counts"
    np.testing.assert_allclose(adata.obsm["X_tiedae"], model.stack.transform(x), atol=1e-6)
    with pytest.raises(Exception, match="no layer 'spliced'"):
        tiedae.sc.fit(adata, [5], layer="spliced", **FAST)


def test_backed_anndata_is_streamed_and_written_out(tmp_path, rng):
    x = _counts(rng)
    _adata(x).write_h5ad(tmp_path / "cells.h5ad")
    backed = read_h5ad(tmp_path / "cells.h5ad", backed=True)
    model = tiedae.sc.fit(backed, [4], normalize=True, target_sum=None, **FAST)
    totals = x.sum(axis=1)
    assert model.preprocessing.target_sum == pytest.approx(np.median(totals[totals > 0]))
    assert backed.obsm["X_tiedae"].shape == (60, 4)
    write_h5ad(backed, tmp_path / "annotated.h5ad")
    out = read_h5ad(tmp_path / "annotated.h5ad")
    np.testing.assert_array_equal(out.X.toarray(), x)
    np.testing.assert_array_equal(out.obsm["X_tiedae"], backed.obsm["X_tiedae"])


def test_gene_set_first_layer_from_a_gmt_file(tmp_path, rng):
    gmt = tmp_path / "sets.gmt"
    gmt.write_text(
        "SET_A\tfirst\tG0\tG1\tG2\tG3\tG4\n"
        "SET_B\tsecond\tG5\tG6\tG7\tG8\tG9\tG10\n"
        "SET_C\tthird\tG15\tG16\tG17\tG18\tNOT_A_GENE\n"
        "SET_D\ttoo small\tG19\tMISSING\n"
    )
    adata = _adata(_counts(rng))
    with pytest.warns(UserWarning, match="3 of 4 gene sets kept"):
        model = tiedae.sc.fit(adata, [2], gene_sets=gmt, min_genes=3, log1p=True, **FAST)
    assert isinstance(model.stack, GeneSetStackedAutoencoder)
    loadings = adata.varm["tiedae_loadings"]
    assert loadings.shape == (20, 3) and adata.obsm["X_tiedae"].shape == (60, 2)
    members = {0: range(0, 5), 1: range(5, 11), 2: range(15, 19)}
    for unit, genes in members.items():
        outside = np.setdiff1d(np.arange(20), list(genes))
        np.testing.assert_array_equal(loadings[outside, unit], 0.0)  # exactly zero
        assert np.all(loadings[list(genes), unit] != 0)
    assert list(adata.uns["tiedae"]["set_names"]) == ["SET_A", "SET_B", "SET_C"]
    assert adata.uns["tiedae"]["gene_sets"]["n_unknown_genes"] == 2
    # The stacked encoder computes the masked layers' codes.
    np.testing.assert_allclose(model.transform(adata), adata.obsm["X_tiedae"], atol=1e-6)
    model.stack.save(tmp_path / "stack.keras")
    loaded = GeneSetStackedAutoencoder.load(tmp_path / "stack.keras")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.autoencoder_.kernels[0]), loadings
    )


def test_gene_sets_as_mapping_and_no_finetuning(rng):
    adata = _adata(_counts(rng))
    sets = {"A": GENES[:8], "B": GENES[8:]}
    model = tiedae.sc.fit(adata, [], gene_sets=sets, **FAST)  # the code is the set layer
    assert model.code_size == 2 and adata.obsm["X_tiedae"].shape == (60, 2)
    with pytest.raises(ValueError, match="finetune_epochs"):
        tiedae.sc.fit(adata, [2], gene_sets=sets, finetune_epochs=1, **FAST)
    with pytest.raises(ValueError, match="key_added"):
        tiedae.sc.fit(adata, [2], key_added="", **FAST)


def test_functions_refuse_what_is_not_an_anndata_object(rng):
    x = _counts(rng, n=10)
    model = tiedae.sc.fit(_adata(_counts(rng)), [3], **FAST)
    for call, name in [
        (lambda: tiedae.sc.fit(np.ones((5, 5)), [2], **FAST), "fit"),
        (lambda: tiedae.sc.fit(sp.csr_matrix(x), [2], **FAST), "fit"),
        (lambda: tiedae.sc.embed(x, model), "embed"),
        (lambda: tiedae.sc.annotate(x, model, np.zeros((10, 3))), "annotate"),
    ]:
        with pytest.raises(ValueError, match=f"tiedae.sc.{name} expects an AnnData object") as e:
            call()
        assert "received numpy.ndarray" in str(e.value) or "scipy.sparse" in str(e.value)


def test_layer_sizes_a_bare_int_is_one_layer_and_bad_sizes_are_named(rng):
    # As StackedDenoisingAutoencoder takes it.
    adata = _adata(_counts(rng))
    model = tiedae.sc.fit(adata, 3, **FAST)
    assert model.stack.layer_sizes == [3] and adata.obsm["X_tiedae"].shape == (60, 3)
    assert list(adata.uns["tiedae"]["params"]["layer_sizes"]) == [3]
    for sizes in ([], [3, 0], [3, 1.5], "3", None, -2):
        with pytest.raises(ValueError, match="`layer_sizes` must"):
            tiedae.sc.fit(_adata(_counts(rng)), sizes, **FAST)
    # With gene sets the list may be empty; a bare int is still one layer after them.
    sets = {"A": GENES[:8], "B": GENES[8:]}
    model = tiedae.sc.fit(_adata(_counts(rng)), 1, gene_sets=sets, **FAST)
    assert model.stack.layer_sizes == [2, 1]
    with pytest.raises(ValueError, match="`layer_sizes` must"):
        tiedae.sc.fit(_adata(_counts(rng)), [0], gene_sets=sets, **FAST)
