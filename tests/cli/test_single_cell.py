"""The command line on single-cell inputs: .h5ad and 10x .mtx in, preprocessing recorded and
reapplied, gene sets, --backed streaming, annotated .h5ad out."""

import json

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import keras
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from tiedae import runs
from tiedae.cli import main
from tiedae.pretraining import StackedDenoisingAutoencoder

anndata = pytest.importorskip("anndata")

TINY = ["--layers", "6,3", "--epochs", "1", "--batch-size", "20", "--quiet", "--seed", "1"]
GENES = [f"G{i}" for i in range(16)]


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(5)
    x = rng.poisson(2.0, size=(60, len(GENES))).astype(np.float32)
    x[rng.random(x.shape) > 0.5] = 0
    return x


def _h5ad(folder, x):
    a = anndata.AnnData(sp.csr_matrix(x))
    a.var_names = GENES
    a.obs_names = [f"c{i}" for i in range(len(x))]
    a.obs["cell_type"] = np.array(["a", "b", "c"] * 20)
    path = folder / "cells.h5ad"
    a.write_h5ad(path)
    return path


def _reference(x, target_sum):
    totals = x.sum(axis=1, keepdims=True)
    return np.log1p(np.where(totals > 0, x * target_sum / np.maximum(totals, 1), 0)).astype(np.float32)


def test_h5ad_with_preprocessing_gene_sets_and_annotated_output(tmp_path, counts):
    data = _h5ad(tmp_path, counts)
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("S1\t-\tG0\tG1\tG2\tG3\tG4\nS2\t-\tG5\tG6\tG7\tG8\tG9\tNOPE\n")
    run_dir, out = tmp_path / "run", tmp_path / "annotated.h5ad"
    argv = ["pretrain", str(data), "--run-dir", str(run_dir), *TINY, "--normalize", "--log1p",
            "--target-sum", "100", "--gmt", str(gmt), "--min-genes", "3", "--write-h5ad", str(out),
            "--validation-split", "0"]
    assert main(argv) == 0

    settings = tomllib.loads((run_dir / runs.CONFIG).read_text())
    assert settings["preprocessing"] == {"normalize": True, "log1p": True, "target_sum": 100.0}
    assert settings["gene_sets"]["set_names"] == ["S1", "S2"]
    stack = StackedDenoisingAutoencoder.load(run_dir / runs.PRETRAINED_MODEL)
    assert stack.layer_sizes == [2, 6, 3]  # the gene-set layer, then --layers
    kernel = keras.ops.convert_to_numpy(stack.autoencoder_.kernels[0])
    np.testing.assert_array_equal(kernel[10:], 0.0)  # genes in no set stay unconnected
    np.testing.assert_array_equal(kernel[5:, 0], 0.0)

    annotated = anndata.read_h5ad(out)
    np.testing.assert_array_equal(annotated.X.toarray(), counts)  # the input, untouched
    codes = np.load(run_dir / runs.EMBEDDING)
    np.testing.assert_array_equal(annotated.obsm["X_tiedae"], codes)
    np.testing.assert_allclose(codes, stack.transform(_reference(counts, 100.0)), atol=1e-5)
    np.testing.assert_array_equal(annotated.varm["tiedae_loadings"], kernel)
    assert list(annotated.uns["tiedae"]["set_names"]) == ["S1", "S2"]
    assert list(annotated.obs["cell_type"]) == ["a", "b", "c"] * 20

    # embed reapplies the run's preprocessing by itself.
    assert main(["embed", str(data), "--run-dir", str(run_dir), "--output", str(tmp_path / "e.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), codes, atol=1e-6)
    # evaluate too, on the preprocessed data.
    assert main(["evaluate", str(data), "--run-dir", str(run_dir)]) == 0
    mse = json.loads((run_dir / runs.METRICS).read_text())["evaluate"]["reconstruction_mse"]
    x = _reference(counts, 100.0)
    assert mse == pytest.approx(float(np.mean((stack.reconstruct(x) - x) ** 2)), rel=1e-5)


def test_a_runs_config_toml_given_back_as_config_repeats_it(tmp_path, counts):
    data = _h5ad(tmp_path, counts)
    (tmp_path / "sets.gmt").write_text("S1\t-\tG0\tG1\tG2\tG3\nS2\t-\tG5\tG6\tG7\n")
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    assert main(["pretrain", str(data), "--run-dir", str(first), *TINY, "--normalize", "--log1p",
                 "--target-sum", "50", "--gmt", str(tmp_path / "sets.gmt"), "--min-genes", "3"]) == 0
    # No single-cell flags: they come from the first run's [preprocessing] and [gene_sets].
    config = str(first / runs.CONFIG)
    assert main(["pretrain", str(data), "--run-dir", str(second), "--config", config, "--quiet"]) == 0
    assert tomllib.loads((second / runs.CONFIG).read_text()) == tomllib.loads(
        (first / runs.CONFIG).read_text())
    np.testing.assert_array_equal(np.load(second / runs.EMBEDDING), np.load(first / runs.EMBEDDING))
    # A flag overrides the file.
    assert main(["pretrain", str(data), "--run-dir", str(third), "--config", config, "--quiet",
                 "--target-sum", "80"]) == 0
    settings = tomllib.loads((third / runs.CONFIG).read_text())
    assert settings["preprocessing"] == {"normalize": True, "log1p": True, "target_sum": 80.0}
    assert settings["gene_sets"]["min_genes"] == 3


@pytest.mark.parametrize(
    "table, message",
    [
        ('[preprocessing]\nnormalise = true\n', "unknown option(s) normalise in [preprocessing]"),
        ('[preprocessing]\nlog1p = "yes"\n', "'log1p' must be true or false"),
        ('[gene_sets]\nmin_genes = 0\n', "'min_genes' must be positive"),
        ('[preprocessing]\nnormalize = true\ntarget_sum = -1.0\n', "target_sum"),
        ('preprocessing = 3\n', "must be a table"),
    ],
)
def test_bad_single_cell_tables_in_the_config(tmp_path, counts, capsys, table, message):
    np.save(tmp_path / "counts.npy", counts)
    (tmp_path / "cfg.toml").write_text(table)
    argv = ["pretrain", str(tmp_path / "counts.npy"), "--run-dir", str(tmp_path / "run"), *TINY,
            "--config", str(tmp_path / "cfg.toml")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_10x_folder_backed_npy_and_finetune_on_sparse(tmp_path, counts):
    folder = tmp_path / "tenx"
    folder.mkdir()
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(counts.T))
    (folder / "features.tsv").write_text("".join(f"ID{i}\t{g}\tGene Expression\n" for i, g in enumerate(GENES)))
    (folder / "barcodes.tsv").write_text("".join(f"BC{j}\n" for j in range(len(counts))))
    run_dir, out = tmp_path / "run", tmp_path / "tenx.h5ad"
    assert main(["pretrain", str(folder), "--run-dir", str(run_dir), *TINY, "--log1p",
                 "--write-h5ad", str(out)]) == 0
    annotated = anndata.read_h5ad(out)
    assert list(annotated.obs_names[:2]) == ["BC0", "BC1"] and list(annotated.var_names) == GENES
    assert sp.issparse(annotated.X) and annotated.obsm["X_tiedae"].shape == (60, 3)

    # The same counts as a memory-mapped .npy, streamed from disk by embed --backed.
    np.save(tmp_path / "counts.npy", counts)
    assert main(["embed", str(tmp_path / "counts.npy"), "--run-dir", str(run_dir), "--backed",
                 "--output", str(tmp_path / "e.npy"), "--write-h5ad", str(tmp_path / "e.h5ad")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), annotated.obsm["X_tiedae"], atol=1e-6)
    assert anndata.read_h5ad(tmp_path / "e.h5ad").X is None  # on-disk input is not copied in

    np.save(tmp_path / "labels.npy", np.arange(60) % 2)
    assert main(["finetune", str(folder), "--run-dir", str(run_dir), "--labels", str(tmp_path / "labels.npy"),
                 "--epochs", "1", "--quiet"]) == 0
    assert json.loads((run_dir / runs.METRICS).read_text())["finetune"]["n_train_labels"] == 48


def test_backed_pretraining_streams_and_skips_the_split(tmp_path, counts, capsys):
    np.save(tmp_path / "counts.npy", counts)
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(tmp_path / "counts.npy"), "--run-dir", str(run_dir), *TINY,
                 "--backed", "--log1p"]) == 0
    metrics = json.loads((run_dir / runs.METRICS).read_text())["pretrain"]
    assert metrics["n_samples"] == 60 and "validation_reconstruction_mse" not in metrics
    assert metrics["preprocessing"]["log1p"] is True
    stack = StackedDenoisingAutoencoder.load(run_dir / runs.PRETRAINED_MODEL)
    np.testing.assert_allclose(np.load(run_dir / runs.EMBEDDING), stack.transform(np.log1p(counts)), atol=1e-6)


@pytest.mark.parametrize(
    "data, extra, message",
    [
        ("counts.npy", ["--gmt", "{tmp}/sets.gmt"], "--gmt needs gene names"),
        ("cells.h5ad", ["--gmt", "{tmp}/missing.gmt"], "gene-set file"),
        ("counts.npy", ["--normalize", "--target-sum", "-1"], "target_sum"),
    ],
)
def test_user_errors(tmp_path, counts, capsys, data, extra, message):
    np.save(tmp_path / "counts.npy", counts)
    _h5ad(tmp_path, counts)
    (tmp_path / "sets.gmt").write_text("S\t-\tG0\n")
    argv = ["pretrain", str(tmp_path / data), "--run-dir", str(tmp_path / "run"), *TINY]
    argv += [e.format(tmp=tmp_path) for e in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_genes_in_another_order_are_refused_like_tiedae_sc(tmp_path, counts, capsys):
    data = _h5ad(tmp_path, counts)
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(data), "--run-dir", str(run_dir), *TINY]) == 0
    assert json.loads((run_dir / "feature_names.json").read_text()) == GENES
    reversed_genes = anndata.read_h5ad(data)[:, GENES[::-1]].copy()
    reversed_genes.write_h5ad(tmp_path / "reversed.h5ad")
    np.save(tmp_path / "labels.npy", np.arange(60) % 2)
    before = (run_dir / runs.EMBEDDING).read_bytes()
    for argv in (["embed"], ["evaluate"], ["finetune", "--labels", str(tmp_path / "labels.npy"), "--epochs", "1"]):
        capsys.readouterr()
        assert main([argv[0], str(tmp_path / "reversed.h5ad"), "--run-dir", str(run_dir), *argv[1:]]) == 2
        err = capsys.readouterr().err
        assert "features differ from the run's (0 of its 16 missing" in err and "adata[:, names]" in err
        assert err.count("\n") == 1
    assert (run_dir / runs.EMBEDDING).read_bytes() == before
    assert not (run_dir / runs.FINETUNED_MODEL).exists()
    # The same genes in the same order are accepted.
    assert main(["embed", str(data), "--run-dir", str(run_dir), "--output", str(tmp_path / "e.npy")]) == 0


def test_write_h5ad_is_checked_before_pretraining(tmp_path, counts, capsys):
    data = _h5ad(tmp_path, counts)
    run_dir = tmp_path / "run"
    argv = ["pretrain", str(data), "--run-dir", str(run_dir), *TINY]
    for out, message in ((tmp_path / "out.txt", "must end in '.h5ad'"),
                         (tmp_path / "missing" / "out.h5ad", "does not exist; create it first"),
                         (data, "is the input file")):
        assert main([*argv, "--write-h5ad", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not run_dir.exists()  # the corrected command is not refused as "already holds a run"
