"""Reference mapping: label transfer, Unknown, retrieval MAP, save/load, gene alignment, bad input."""

import warnings

import anndata
import numpy as np
import pytest
import scipy.sparse

from tiedae.io.errors import DataError
from tiedae.mapping import (
    ReferenceModel, _aligned, align_genes, average_precision, evaluate_mapping, fit_reference,
    map_query, retrieve,
)

TYPES = ["B", "T", "NK", "Mono"]


def synthetic(n_per_type=60, types=TYPES, seed=0, genes_per_program=8, n_genes=48):
    """Poisson counts: every type raises its own block of genes ten-fold."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for t, name in enumerate(TYPES):
        if name not in types:
            continue
        rate = np.full(n_genes, 0.5)
        rate[t * genes_per_program:(t + 1) * genes_per_program] = 5.0
        rows.append(rng.poisson(rate, size=(n_per_type, n_genes)))
        labels += [name] * n_per_type
    adata = anndata.AnnData(scipy.sparse.csr_matrix(np.vstack(rows).astype(np.float32)))
    adata.var_names = [f"GENE{i}" for i in range(n_genes)]
    adata.obs_names = [f"c{seed}_{i}" for i in range(adata.n_obs)]
    adata.obs["cell_type"] = labels
    return adata


FIT = dict(layer_sizes=(32, 16), normalize=True, log1p=True, epochs=3, finetune_epochs=60,
           patience=8, batch_size=32, learning_rate=3e-3)


@pytest.fixture(scope="module")
def reference():
    return fit_reference(synthetic(seed=0), "cell_type", **FIT)


def test_transfers_labels_above_chance(reference):
    query = synthetic(n_per_type=40, seed=1)
    map_query(query, reference)
    scores = evaluate_mapping(query.obs["cell_type"], query.obs["tiedae_label"],
                              query.obsm["X_tiedae"], reference, k=20)
    assert scores["accuracy"] > 0.9  # chance is 0.25
    assert scores["macro_f1"] > 0.9
    assert scores["map"] > 0.8
    assert query.obsm["X_tiedae"].shape == (160, 16)
    assert ((query.obs["tiedae_confidence"] >= 0) & (query.obs["tiedae_confidence"] <= 1)).all()


def test_held_out_type_comes_out_unknown():
    ref = fit_reference(synthetic(types=TYPES[:3], seed=0), "cell_type", **FIT)
    query = synthetic(n_per_type=40, seed=2)
    map_query(query, ref, confidence_threshold=0.9)
    novel = query.obs["cell_type"] == "Mono"
    assert (query.obs["tiedae_label"][novel] == "Unknown").mean() >= 0.5
    known = ~novel
    assert (query.obs["tiedae_label"][known] == query.obs["cell_type"][known]).mean() > 0.85


def test_save_load_identical(reference, tmp_path):
    path = tmp_path / "ref.keras"
    reference.save(path)
    loaded = ReferenceModel.load(path)
    a, b = synthetic(n_per_type=10, seed=3), synthetic(n_per_type=10, seed=3)
    map_query(a, reference)
    map_query(b, loaded)
    np.testing.assert_allclose(a.obsm["X_tiedae"], b.obsm["X_tiedae"], atol=1e-6)
    assert list(a.obs["tiedae_label"]) == list(b.obs["tiedae_label"])
    np.testing.assert_array_equal(loaded.reference_embedding, reference.reference_embedding)
    assert loaded.var_names == reference.var_names and list(loaded.classes) == list(reference.classes)
    assert [p.name for p in tmp_path.iterdir()] == ["ref.keras"]  # no temporary left behind


def test_backed_and_dense_query_match_sparse(reference, tmp_path):
    sparse = synthetic(n_per_type=10, seed=4)
    dense = sparse.copy()
    dense.X = dense.X.toarray()
    sparse.write_h5ad(tmp_path / "q.h5ad")
    backed = anndata.read_h5ad(tmp_path / "q.h5ad", backed="r")
    for other in (dense, backed):
        map_query(other, reference, batch_size=7)
    map_query(sparse, reference, batch_size=1000)
    np.testing.assert_allclose(dense.obsm["X_tiedae"], sparse.obsm["X_tiedae"], atol=1e-5)
    np.testing.assert_allclose(backed.obsm["X_tiedae"], sparse.obsm["X_tiedae"], atol=1e-5)


def test_gene_alignment_fills_zeros_in_the_right_columns():
    model_genes = ["a", "b", "c", "d"]
    with pytest.warns(UserWarning, match="25.0%"):
        src, dst = align_genes(["d", "x", "b", "a"], model_genes)
    block = np.array([[4.0, 9.0, 2.0, 1.0]])  # query columns d, x, b, a
    expected = np.array([[1.0, 2.0, 0.0, 4.0]])  # model order a, b, c(missing), d
    np.testing.assert_array_equal(_aligned(block, src, dst, 4), expected)
    np.testing.assert_array_equal(_aligned(scipy.sparse.csr_matrix(block), src, dst, 4).toarray(), expected)


def test_reordered_query_with_missing_genes_maps(reference):
    query = synthetic(n_per_type=20, seed=5)
    query = query[:, query.var_names[::-1][:40]].copy()  # reversed, 8 of 48 genes dropped
    with pytest.warns(UserWarning, match="40 of the model's 48 genes"):
        map_query(query, reference)
    assert query.uns["tiedae_mapping"]["genes_found"] == 40


def test_average_precision_matches_numpy_by_hand():
    relevant = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=bool)
    expected = [(1 / 1 + 2 / 3) / 2, 0.0, (1 / 2 + 2 / 3 + 3 / 4) / 3]
    np.testing.assert_allclose(average_precision(relevant), expected)


def test_evaluate_mapping_weighting_by_hand():
    # Reference on a line: labels x at 0,1 and y at 10,11.
    class Ref:
        reference_embedding = np.array([[0.0], [1.0], [10.0], [11.0]], np.float32)
        reference_labels = np.array(["x", "x", "y", "y"])

        def neighbors(self):
            from sklearn.neighbors import NearestNeighbors
            return NearestNeighbors().fit(self.reference_embedding)

    codes = np.array([[0.2], [0.4], [9.0]])  # two x queries, one y query placed near... y
    truth = np.array(["x", "x", "x"])  # the third is an x sitting among the y's
    scores = evaluate_mapping(truth, ["x", "x", "y"], codes, Ref(), k=3)
    ap3 = np.mean([1 / 3])  # its ranking y, y, x: one hit at rank 3
    np.testing.assert_allclose(scores["map_per_type"]["x"], (1 + 1 + ap3) / 3)
    assert scores["accuracy"] == pytest.approx(2 / 3)
    d, i, labels = retrieve(codes, Ref(), k=2)
    assert labels.tolist() == [["x", "x"], ["x", "x"], ["y", "y"]]


# ----------------------------------------------------------------------------- bad input


def test_bad_reference_inputs():
    ref = synthetic(n_per_type=10)
    with pytest.raises(DataError, match="no column 'celltype' in obs"):
        fit_reference(ref, "celltype", **FIT)
    one = ref[ref.obs["cell_type"] == "B"].copy()
    with pytest.raises(DataError, match="single class"):
        fit_reference(one, "cell_type", **FIT)
    logged = ref.copy()
    logged.X = np.log1p(logged.X.toarray() * 1.37)
    with pytest.raises(DataError, match="looks log-normalised"):
        fit_reference(logged, "cell_type", **FIT)
    raw = ref.copy()
    raw.X = raw.X.toarray() * 20
    with pytest.raises(DataError, match="looks like raw counts"):
        fit_reference(raw, "cell_type", **dict(FIT, normalize=False, log1p=False))
    nan = ref.copy()
    nan.X = nan.X.toarray()
    nan.X[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fit_reference(nan, "cell_type", **FIT)
    neg = ref.copy()
    neg.X = neg.X.toarray() - 1
    with pytest.raises(DataError, match="negative values"):
        fit_reference(neg, "cell_type", **FIT)


def test_bad_query_inputs_write_nothing(reference):
    query = synthetic(n_per_type=5, seed=6)
    numbered = query.copy()
    numbered.var_names = [str(i) for i in range(numbered.n_vars)]
    with pytest.raises(DataError, match="row numbers"):
        map_query(numbered, reference)
    ensembl = query.copy()
    ensembl.var_names = [f"ENSG{i:011d}" for i in range(ensembl.n_vars)]
    with pytest.raises(DataError, match=r"only 0 of the model's 48 genes .*GENE0.*Ensembl IDs"):
        map_query(ensembl, reference)
    few = query[:, :10].copy()
    with pytest.raises(DataError, match="only 10 of the model's 48"):
        map_query(few, reference)
    logged = query.copy()
    logged.X = np.log1p(logged.X.toarray() * 1.37)
    with pytest.raises(DataError, match="looks log-normalised"):
        map_query(logged, reference)
    for bad in (numbered, ensembl, few, logged):
        assert "X_tiedae" not in bad.obsm and "tiedae_label" not in bad.obs
