"""Reference mapping: label transfer, Unknown, retrieval MAP, save/load, gene alignment, bad input."""

import io
import warnings
import zipfile

import anndata
import numpy as np
import pytest
import scipy.sparse

from tiedae.io.errors import DataError
from tiedae.mapping import (
    ARRAYS_NAME, ReferenceModel, _aligned, align_genes, average_precision, evaluate_mapping, fit_reference,
    map_query, retrieve, unknown_mask,
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


@pytest.fixture(scope="module")
def three_types():
    # A quarter of the reference held out: 45 cells calibrate the novelty quantile.
    return fit_reference(synthetic(types=TYPES[:3], seed=0), "cell_type", validation_fraction=0.25, **FIT)


def test_held_out_type_is_far_in_the_embedding(three_types):
    query = synthetic(n_per_type=40, seed=2)
    map_query(query, three_types, unknown="distance", novelty_quantile=0.99)
    novel = (query.obs["cell_type"] == "Mono").to_numpy()
    called = (query.obs["tiedae_label"] == "Unknown").to_numpy()
    assert called[novel].mean() >= 0.8
    assert called[~novel].mean() <= 0.1
    novelty = query.obs["tiedae_novelty"].to_numpy()
    assert np.median(novelty[novel]) > 2 * np.median(novelty[~novel])
    uns = query.uns["tiedae_mapping"]
    assert uns["unknown"] == "distance" and uns["novelty_k"] == 10
    # The threshold is the 0.99 quantile of the held-out reference cells' leave-one-out novelty.
    scores, _ = three_types.novelty_calibration(10, "euclidean")
    assert uns["novelty_threshold"] == pytest.approx(np.quantile(scores, 0.99))
    assert len(scores) == int(np.ceil(0.25 * 180))  # fit_reference's validation cells


def test_rules_combine_softmax_and_distance(three_types):
    query = synthetic(n_per_type=20, seed=7)
    calls = {}
    for rule in ("softmax", "distance", "both", "either"):
        mapped = map_query(query, three_types, unknown=rule, confidence_threshold=0.9, copy=True)
        calls[rule] = (mapped.obs["tiedae_label"] == "Unknown").to_numpy()
        assert ("tiedae_novelty" in mapped.obs.columns) == (rule != "softmax")
    np.testing.assert_array_equal(calls["both"], calls["softmax"] & calls["distance"])
    np.testing.assert_array_equal(calls["either"], calls["softmax"] | calls["distance"])
    assert calls["distance"].sum() > calls["both"].sum()  # the rules differ on these cells


def _hand_model(reference, embedding, labels, calibration_index):
    return ReferenceModel(reference.classifier, reference.var_names, reference.preprocessing,
                          reference.classes, embedding, labels, calibration_index=calibration_index)


def test_novelty_statistic_matches_numpy_by_hand(reference):
    emb = np.array([[0, 0], [1, 0], [0, 2], [4, 4], [5, 3], [1, 1]], np.float32)
    labels = np.array(["a", "a", "a", "b", "b", "a"])
    model = _hand_model(reference, emb, labels, calibration_index=[5, 0, 3])
    z = (emb - emb.mean(0)) / (emb.std(0) + 1e-6)
    query = np.array([[2.0, 1.0], [10.0, -3.0]])
    zq = (query - emb.mean(0)) / (emb.std(0) + 1e-6)
    d = np.linalg.norm(zq[:, None] - z[None], axis=2)
    np.testing.assert_allclose(model.novelty(query, k=2), np.sort(d, axis=1)[:, :2].mean(1), rtol=1e-6)
    # Leave-one-out on the calibration cells (sorted: 0, 3, 5), each without itself.
    dz = np.linalg.norm(z[:, None] - z[None], axis=2)
    loo = [np.sort(np.delete(dz[i], i))[:2].mean() for i in (0, 3, 5)]
    scores, cal_labels = model.novelty_calibration(k=2)
    np.testing.assert_allclose(scores, loo, rtol=1e-6)
    assert cal_labels.tolist() == ["a", "b", "a"]
    overall, types = model.novelty_thresholds(0.5, k=2, per_type=True)
    assert overall == pytest.approx(np.quantile(loo, 0.5)) and types == {}  # < 10 cells a type
    everyone = [np.sort(np.delete(dz[i], i))[:2].mean() for i in range(6)]
    np.testing.assert_allclose(model.novelty_calibration(k=2, calibration="all")[0], everyone, rtol=1e-6)
    # Cosine distance on the same standardised codes.
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    uq = zq / np.linalg.norm(zq, axis=1, keepdims=True)
    cos = np.sort(1 - uq @ unit.T, axis=1)[:, :3].mean(1)
    np.testing.assert_allclose(model.novelty(query, k=3, metric="cosine"), cos, rtol=1e-5, atol=1e-7)
    # The rule: the second query cell is far beyond the calibration's largest novelty.
    mask, _ = unknown_mask(model, query, ["a", "a"], [1.0, 1.0], unknown="distance",
                           novelty_quantile=1.0, novelty_k=2)
    assert mask.tolist() == [bool(model.novelty(query[:1], k=2)[0] > max(loo)), True]


def test_per_type_thresholds_use_types_with_enough_calibration_cells(reference):
    rng = np.random.default_rng(0)
    emb = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(8, 3, (30, 2)), rng.normal(-8, 1, (4, 2))])
    labels = np.array(["a"] * 30 + ["b"] * 30 + ["c"] * 4)
    model = _hand_model(reference, emb.astype(np.float32), labels, calibration_index=None)
    overall, types = model.novelty_thresholds(0.9, k=3, calibration="all", per_type=True)
    scores, _ = model.novelty_calibration(k=3, calibration="all")
    assert set(types) == {"a", "b"}  # c has 4 < 10 calibration cells: the global quantile
    assert types["a"] == pytest.approx(np.quantile(scores[:30], 0.9))
    assert types["b"] > types["a"]  # the wider type tolerates more distance
    codes = np.array([[0.0, 0.0], [-8.0, -8.0]])
    mask, novelty = unknown_mask(model, codes, ["a", "c"], [1, 1], unknown="distance", novelty_quantile=0.9,
                                 novelty_k=3, novelty_calibration="all", novelty_per_type=True)
    assert mask.tolist() == [bool(novelty[0] > types["a"]), bool(novelty[1] > overall)]


def test_save_load_keeps_unknown_calls(three_types, tmp_path):
    path = tmp_path / "ref.keras"
    three_types.save(path)
    loaded = ReferenceModel.load(path)
    np.testing.assert_array_equal(loaded.calibration_index, three_types.calibration_index)
    rule = dict(unknown="either", confidence_threshold=0.8, novelty_quantile=0.95, novelty_per_type=True)
    a, b = (map_query(synthetic(n_per_type=15, seed=8), m, copy=True, **rule) for m in (three_types, loaded))
    assert list(a.obs["tiedae_label"]) == list(b.obs["tiedae_label"])
    assert (a.obs["tiedae_label"] == "Unknown").any()
    np.testing.assert_allclose(a.obs["tiedae_novelty"], b.obs["tiedae_novelty"], rtol=1e-5)
    # A file saved before the calibration cells were kept: every reference cell, leave-one-out.
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == ARRAYS_NAME:
                arrays = np.load(io.BytesIO(data))
                buffer = io.BytesIO()
                np.savez(buffer, embedding=arrays["embedding"], labels=arrays["labels"])
                data = buffer.getvalue()
            dst.writestr(item, data)
    legacy = ReferenceModel.load(old)
    assert legacy.calibration_index is None
    np.testing.assert_allclose(legacy.novelty_calibration()[0],
                               three_types.novelty_calibration(calibration="all")[0], rtol=1e-6)
    c = map_query(synthetic(n_per_type=15, seed=8), legacy, copy=True, **rule)
    d = map_query(synthetic(n_per_type=15, seed=8), three_types, copy=True, novelty_calibration="all", **rule)
    assert list(c.obs["tiedae_label"]) == list(d.obs["tiedae_label"])


def test_bad_unknown_rule_writes_nothing(reference):
    query = synthetic(n_per_type=5, seed=9)
    for bad, match in ((dict(unknown="novel"), "`unknown` must be one of"),
                       (dict(unknown="distance", novelty_quantile=0.0), "`novelty_quantile`"),
                       (dict(unknown="both", novelty_metric="manhattan"), "`novelty_metric`"),
                       (dict(unknown="distance", novelty_calibration="query"), "`novelty_calibration`"),
                       (dict(confidence_threshold=1.5), "`confidence_threshold`")):
        with pytest.raises(ValueError, match=match):
            map_query(query, reference, **bad)
    assert "X_tiedae" not in query.obsm and "tiedae_label" not in query.obs


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
