"""`tiedae reference` then `tiedae map`: the annotated .h5ad is what the library computes; bad input
exits 2 and writes nothing."""

import json
import re

import numpy as np
import pytest

from tiedae import runs
from tiedae.cli import main
from tiedae.mapping import ReferenceModel, evaluate_mapping, map_query, retrieve

anndata = pytest.importorskip("anndata")

from tests.test_mapping import TYPES, synthetic  # noqa: E402

# The library tests' recipe (tests/test_mapping.py FIT), as flags.
FIT = ["--layers", "32,16", "--epochs", "3", "--finetune-epochs", "60", "--patience", "8",
       "--batch-size", "32", "--learning-rate", "3e-3", "--normalize", "--log1p", "--quiet"]
PNG = b"\x89PNG\r\n\x1a\n"


def _write(adata, path):
    adata.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A reference of three types (Mono left out) and a query of all four, with its labels."""
    folder = tmp_path_factory.mktemp("mapping_cli")
    ref = _write(synthetic(types=TYPES[:3], seed=0), folder / "ref.h5ad")
    query = _write(synthetic(n_per_type=40, seed=2), folder / "query.h5ad")
    run_dir = folder / "run"
    assert main(["reference", str(ref), "--label-column", "cell_type", "--run-dir", str(run_dir), *FIT]) == 0
    return folder, ref, query, run_dir


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_reference_run_directory(run):
    folder, ref, _, run_dir = run
    model = ReferenceModel.load(run_dir / "reference.keras")
    assert list(model.classes) == ["B", "NK", "T"]
    assert model.var_names == [f"GENE{i}" for i in range(48)] and model.expects_counts
    assert model.reference_embedding.shape == (180, 16)
    metrics = json.loads((run_dir / runs.METRICS).read_text())["reference"]
    assert metrics["classes"] == {"B": 60, "NK": 60, "T": 60}
    assert metrics["held_out_accuracy"] > 0.85  # 18 held-out reference cells, chance 1/3
    assert metrics["finetune"]["epochs_run"] == len(model.history["val_loss"])
    cells = (run_dir / "reference_cells.txt").read_text().splitlines()
    assert cells == list(anndata.read_h5ad(ref).obs_names)
    assert (run_dir / runs.PLOTS / "reference_embedding.png").read_bytes()[:8] == PNG
    assert (run_dir / runs.HISTORY).read_text().startswith("stage,epoch,loss,val_loss\nfinetune,1,")


def test_map_writes_what_the_library_computes(run, capsys):
    folder, _, query, run_dir = run
    out = folder / "annotated.h5ad"
    capsys.readouterr()
    assert main(["map", str(query), "--run-dir", str(run_dir), "--output", str(out), "--label-column",
                 "cell_type", "--confidence-threshold", "0.9", "--k", "7"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"genes matched +48 of 48 \(100%\)", printed) and "retrieval MAP@7" in printed

    annotated = anndata.read_h5ad(out)
    model = ReferenceModel.load(run_dir / "reference.keras")
    expected = anndata.read_h5ad(query)
    assert "X_tiedae" not in expected.obsm  # the input is left as it was
    map_query(expected, model, confidence_threshold=0.9)
    np.testing.assert_allclose(annotated.obsm["X_tiedae"], expected.obsm["X_tiedae"], atol=1e-5)
    assert list(annotated.obs["tiedae_label"].astype(str)) == list(expected.obs["tiedae_label"])
    np.testing.assert_allclose(annotated.obs["tiedae_confidence"], expected.obs["tiedae_confidence"], atol=1e-5)
    distances, indices, _ = retrieve(expected, model, k=7)
    np.testing.assert_array_equal(annotated.obsm["tiedae_neighbors"], indices)
    np.testing.assert_allclose(annotated.obsm["tiedae_neighbor_distances"], distances, atol=1e-4)
    np.testing.assert_array_equal(annotated.X.toarray(), expected.X.toarray())

    scores = evaluate_mapping(expected.obs["cell_type"], expected.obs["tiedae_label"],
                              expected.obsm["X_tiedae"], model, k=7)
    uns = annotated.uns["tiedae_mapping"]
    assert uns["accuracy"] == pytest.approx(scores["accuracy"])
    assert uns["map"] == pytest.approx(scores["map"]) and int(uns["k"]) == 7
    assert re.search(rf"accuracy +{100 * scores['accuracy']:.2f}%", printed)

    # The type the reference lacks comes out Unknown; the others keep their labels.
    truth, label = annotated.obs["cell_type"].astype(str), annotated.obs["tiedae_label"].astype(str)
    novel = truth == "Mono"
    assert (label[novel] == "Unknown").mean() >= 0.5
    assert (label[~novel] == truth[~novel]).mean() > 0.85

    plots = run_dir / runs.PLOTS / "map_annotated"
    assert sorted(p.name for p in plots.iterdir()) == ["confidence.png", "confusion_matrix.png", "embedding.png"]
    assert all(p.read_bytes()[:8] == PNG for p in plots.iterdir())
    entry = json.loads((run_dir / runs.METRICS).read_text())["map"][str(out.resolve())]
    assert entry["n_cells"] == 160 and set(entry["map_per_type"]) == set(TYPES)
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_map_with_the_distance_rule_matches_the_library(run, capsys):
    folder, _, query, run_dir = run
    out = folder / "novelty.h5ad"
    capsys.readouterr()
    assert main(["map", str(query), "--run-dir", str(run_dir), "-o", str(out), "--unknown", "either",
                 "--novelty-k", "5", "--novelty-quantile", "0.95", "--novelty-metric", "cosine",
                 "--novelty-per-type", "--novelty-calibration", "all"]) == 0
    printed = capsys.readouterr().out
    assert "confidence < 0.5 or cosine novelty (k=5) > q0.95 of all reference cells per type" in printed
    annotated = anndata.read_h5ad(out)
    expected = anndata.read_h5ad(query)
    map_query(expected, ReferenceModel.load(run_dir / "reference.keras"), unknown="either",
              novelty_k=5, novelty_quantile=0.95, novelty_metric="cosine", novelty_per_type=True,
              novelty_calibration="all")
    assert list(annotated.obs["tiedae_label"].astype(str)) == list(expected.obs["tiedae_label"])
    np.testing.assert_allclose(annotated.obs["tiedae_novelty"], expected.obs["tiedae_novelty"], rtol=1e-4)
    uns = annotated.uns["tiedae_mapping"]
    assert uns["unknown"] == "either" and uns["novelty_metric"] == "cosine" and int(uns["novelty_k"]) == 5


def test_backed_query_with_missing_genes_warns_and_matches(run, capsys):
    folder, _, _, run_dir = run
    query = synthetic(n_per_type=10, seed=3)
    query = query[:, query.var_names[::-1][:40]].copy()  # reordered, 8 genes missing
    path = _write(query, folder / "partial.h5ad")
    out = folder / "partial_out.h5ad"
    capsys.readouterr()
    assert main(["map", str(path), "--run-dir", str(run_dir), "-o", str(out), "--backed", "--batch-size", "7"]) == 0
    err = capsys.readouterr().err
    assert "tiedae: warning: the query has 40 of the model's 48 genes; the missing 16.7% are filled" in err
    annotated = anndata.read_h5ad(out)
    assert int(annotated.uns["tiedae_mapping"]["genes_found"]) == 40
    with pytest.warns(UserWarning):
        map_query(query, ReferenceModel.load(run_dir / "reference.keras"))
    np.testing.assert_allclose(annotated.obsm["X_tiedae"], query.obsm["X_tiedae"], atol=1e-5)
    assert not (run_dir / runs.PLOTS / "map_partial_out" / "confusion_matrix.png").exists()  # no labels asked


# ----------------------------------------------------------------------------- bad input


def _bad_queries(folder):
    base = synthetic(n_per_type=5, seed=6)
    variants = {}
    v = base.copy()
    v.var_names = [str(i) for i in range(v.n_vars)]
    variants["numbered"] = v
    v = base.copy()
    v.var_names = [f"ENSG{i:011d}" for i in range(v.n_vars)]
    variants["ensembl"] = v
    variants["few"] = base[:, :10].copy()
    variants["empty"] = base[:0].copy()
    variants.update(_bad_values(base), good=base)
    return {name: _write(a, folder / f"{name}.h5ad") for name, a in variants.items()}


def _bad_values(base):
    """Copies of `base` with log-normalised, raw (x20), NaN and negative values."""
    counts = base.X.toarray()
    with_nan = counts.copy()
    with_nan[3, 2] = np.nan
    matrices = {"logged": np.log1p(counts * 1.37), "raw": counts * 20, "nan": with_nan, "negative": counts - 1}
    variants = {}
    for name, x in matrices.items():
        variants[name] = base.copy()
        variants[name].X = x
    return variants


MAP_CASES = [
    ("numbered", [], "gene names are row numbers"),
    ("ensembl", [], "only 0 of the model's 48 genes (0%, minimum 50%); missing e.g. GENE0"),
    ("few", [], "only 10 of the model's 48 genes"),
    ("empty", [], "has no cells"),
    ("logged", [], "the query looks log-normalised"),
    ("nan", [], "the query has NaN values"),
    ("negative", [], "the query has negative values"),
    ("good", ["--label-column", "celltype"], "the query has no column 'celltype' in obs"),
    ("good", ["--run-dir", "{folder}/nowhere"], "reference run directory '{folder}/nowhere' does not exist"),
    ("good", ["--run-dir", "{folder}"], "holds no reference.keras"),
    ("good", ["--run-dir", "{folder}/broken"], "cannot load"),
    ("good", ["--output", "{folder}/out.npy"], "must end in '.h5ad'"),
    ("good", ["--output", "{folder}/missing/out.h5ad"], "does not exist; create it first"),
    ("good", ["--min-overlap", "0.9"], None),  # all genes present: fine
]


@pytest.mark.parametrize("name, extra, message", MAP_CASES)
def test_bad_map_inputs_exit_2_and_write_nothing(run, tmp_path, capsys, name, extra, message):
    _, _, _, run_dir = run
    queries = _bad_queries(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "reference.keras").write_bytes((run_dir / "reference.keras").read_bytes()[:500])
    before = _files(tmp_path)
    out = tmp_path / "out.h5ad"
    argv = ["map", str(queries[name]), "--run-dir", str(run_dir), "--output", str(out)]
    argv += [a.format(folder=tmp_path) for a in extra]
    capsys.readouterr()
    code = main(argv)
    if message is None:
        assert code == 0 and out.is_file()
        return
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(folder=tmp_path) in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiedae: error: ") and "Traceback" not in err
    assert _files(tmp_path) == before  # no output, no temporary file


def test_bad_map_flags_are_refused_by_the_parser(run, tmp_path, capsys):
    _, _, query, run_dir = run
    for flag, value in (("--confidence-threshold", "1.5"), ("--k", "0"), ("--unknown", "far"),
                        ("--novelty-quantile", "0"), ("--novelty-k", "0"), ("--novelty-metric", "l1")):
        with pytest.raises(SystemExit) as exit:
            main(["map", str(query), "--run-dir", str(run_dir), "-o", str(tmp_path / "o.h5ad"), flag, value])
        assert exit.value.code == 2 and flag in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _bad_references(folder):
    base = synthetic(n_per_type=10)
    variants = {"good": base}
    v = base.copy()
    v.obs["one"] = "B"
    variants["one_class"] = v
    variants.update(_bad_values(base))
    return {name: _write(a, folder / f"{name}.h5ad") for name, a in variants.items()}


REFERENCE_CASES = [
    ("good", ["--label-column", "celltype", "--normalize"], "the reference has no column 'celltype' in obs"),
    ("one_class", ["--label-column", "one", "--normalize"], "has a single class ('B')"),
    ("logged", ["--label-column", "cell_type", "--normalize", "--log1p"], "the reference looks log-normalised"),
    ("raw", ["--label-column", "cell_type"], "looks like raw counts"),
    ("nan", ["--label-column", "cell_type", "--normalize"], "the reference has NaN values"),
    ("negative", ["--label-column", "cell_type", "--normalize"], "the reference has negative values"),
    ("good", ["--label-column", "cell_type", "--target-sum", "100"], "--target-sum has no effect without --normalize"),
    ("good", ["--label-column", "cell_type", "--query", "{folder}/nope.h5ad"], "--query '{folder}/nope.h5ad' does not exist"),
    ("good", ["--label-column", "cell_type", "--run-dir", "{folder}/existing"], "already holds a run"),
]


@pytest.mark.parametrize("name, extra, message", REFERENCE_CASES)
def test_bad_reference_inputs_exit_2_and_write_nothing(tmp_path, capsys, name, extra, message):
    data = _bad_references(tmp_path)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / runs.MARKER).write_text("{}")
    before = _files(tmp_path)
    argv = ["reference", str(data[name]), "--run-dir", str(tmp_path / "run"), "--layers", "4",
            "--epochs", "1", "--finetune-epochs", "1", "--quiet"]
    argv += [a.format(folder=tmp_path) for a in extra]
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(folder=tmp_path) in err and len(err.strip().splitlines()) == 1
    assert _files(tmp_path) == before  # no run directory, nothing in the existing one


def test_query_of_counts_against_a_log_normalised_model(tmp_path, capsys):
    logged = synthetic(n_per_type=10)
    counts = logged.copy()
    counts.X = counts.X.toarray() * 20
    logged.X = np.log1p(logged.X.toarray() * 1.37)
    run_dir = tmp_path / "run"
    assert main(["reference", str(_write(logged, tmp_path / "ref.h5ad")), "--label-column", "cell_type",
                 "--run-dir", str(run_dir), "--layers", "4", "--epochs", "1", "--finetune-epochs", "1",
                 "--quiet"]) == 0
    assert not ReferenceModel.load(run_dir / "reference.keras").expects_counts
    capsys.readouterr()
    out = tmp_path / "out.h5ad"
    assert main(["map", str(_write(counts, tmp_path / "q.h5ad")), "--run-dir", str(run_dir), "-o", str(out)]) == 2
    assert "looks like raw counts" in capsys.readouterr().err and not out.exists()


def test_library_functions_are_also_tiedae_sc_names():
    import tiedae.mapping
    import tiedae.sc

    for name in ("fit_reference", "map_query", "retrieve", "evaluate_mapping", "ReferenceModel"):
        assert getattr(tiedae.sc, name) is getattr(tiedae.mapping, name)
