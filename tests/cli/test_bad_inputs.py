"""Table of bad inputs: each exits with status 2, one clear line, no traceback, no file touched."""

import os

import numpy as np
import pytest

from tiedae import runs
from tiedae.cli import main

TINY = ["--layers", "6", "--epochs", "1", "--quiet", "--validation-split", "0"]


def _prepare(folder):
    """Input files, good and broken, in `folder`."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 9)).astype(np.float32)
    np.save(folder / "good.npy", X)
    np.save(folder / "labels.npy", np.arange(40) % 3)
    np.save(folder / "short_labels.npy", np.arange(39) % 3)
    np.save(folder / "one_class.npy", np.zeros(40, np.int64))
    nan_labels = (np.arange(40) % 3).astype(np.float64)
    nan_labels[7] = np.nan
    np.save(folder / "nan_labels.npy", nan_labels)
    np.save(folder / "wide.npy", rng.random((40, 5)).astype(np.float32))
    np.save(folder / "vector.npy", X[:, 0])
    np.save(folder / "empty.npy", np.zeros((0, 9), np.float32))
    np.save(folder / "signed.npy", X - 0.5)
    with_nan = X.copy()
    with_nan[3, 4] = np.nan
    np.save(folder / "nan.npy", with_nan)
    (folder / "truncated.npy").write_bytes((folder / "good.npy").read_bytes()[:100])
    np.savez(folder / "good.npz", X=X)
    (folder / "corrupt.npz").write_bytes((folder / "good.npz").read_bytes()[:200])
    np.savez(folder / "ambiguous.npz", a=X, b=X)
    (folder / "text.csv").write_text("a,b\n1,2\n3,four\n")
    (folder / "inf.csv").write_text("a,b\n1,2\n3,inf\n")
    (folder / "ragged.csv").write_text("1,2,3\n4,5\n")
    (folder / "empty.csv").write_text("")
    (folder / "labelled.csv").write_text("a,b,label\n1,2,x\n3,4,y\n")
    (folder / "data.parquet").write_bytes(b"PAR1")
    import anndata

    from tiedae.io import write_h5ad

    write_h5ad(anndata.AnnData(X), folder / "whole.h5ad")
    (folder / "truncated.h5ad").write_bytes((folder / "whole.h5ad").read_bytes()[:4000])
    (folder / "whole.h5ad").unlink()
    (folder / "bad.toml").write_text("epochs = [\n")
    (folder / "unknown.toml").write_text("epoks = 3\n")
    (folder / "wrongtype.toml").write_text('epochs = "ten"\n')
    (folder / "range.toml").write_text("validation_split = 1.5\n")
    (folder / "notbool.toml").write_text('finetune_denoising = "no"\n')
    (folder / "foreign").mkdir()
    (folder / "foreign" / "notes.txt").write_text("mine")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_inputs")
    _prepare(folder)
    run_dir = folder / "run"
    assert main(["pretrain", str(folder / "good.npy"), "--run-dir", str(run_dir), *TINY]) == 0
    broken_run = folder / "broken_run"
    broken_run.mkdir()
    (broken_run / runs.MARKER).write_text("{}")
    (broken_run / runs.PRETRAINED_MODEL).write_bytes((run_dir / runs.PRETRAINED_MODEL).read_bytes()[:300])
    return folder


def _snapshot(folder):
    state = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            stat = os.stat(path)
            state[path] = (stat.st_size, stat.st_mtime_ns)
    return state


P, F, E, V = "pretrain", "finetune", "embed", "evaluate"
CASES = [
    # (argv with {d} = the files folder, expected message fragment)
    ([P, "{d}/missing.npy", "--run-dir", "{d}/new"], "does not exist"),
    ([P, "{d}/foreign", "--run-dir", "{d}/new"], "is not a file"),
    ([P, "{d}/data.parquet", "--run-dir", "{d}/new"], "unknown extension '.parquet'"),
    ([P, "{d}/truncated.npy", "--run-dir", "{d}/new"], "may be truncated"),
    ([P, "{d}/corrupt.npz", "--run-dir", "{d}/new"], "may be truncated"),
    ([P, "{d}/truncated.h5ad", "--run-dir", "{d}/new"], "may be truncated"),
    ([P, "{d}/ambiguous.npz", "--run-dir", "{d}/new"], "name the features 'X'"),
    ([P, "{d}/vector.npy", "--run-dir", "{d}/new"], "1-D array"),
    ([P, "{d}/empty.npy", "--run-dir", "{d}/new"], "empty"),
    ([P, "{d}/nan.npy", "--run-dir", "{d}/new"], "1 value(s) are NaN or infinite (first at row 3, column 4)"),
    ([P, "{d}/inf.csv", "--run-dir", "{d}/new"], "NaN or infinite"),
    ([P, "{d}/text.csv", "--run-dir", "{d}/new"], "non-numeric value 'four' at row 3, column 'b'"),
    ([P, "{d}/ragged.csv", "--run-dir", "{d}/new"], "row 2 has 2 columns"),
    ([P, "{d}/empty.csv", "--run-dir", "{d}/new"], "is empty"),
    ([P, "{d}/labelled.csv", "--label-column", "kind", "--run-dir", "{d}/new"], "label column 'kind' is not in the header"),
    ([P, "{d}/good.npy", "--labels", "{d}/short_labels.npy", "--run-dir", "{d}/new"], "39 labels"),
    ([P, "{d}/good.npy", "--labels", "{d}/nolabels.npy", "--run-dir", "{d}/new"], "labels file"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/foreign"], "not a tiedae run; choose another --run-dir or pass --overwrite"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/run", *TINY], "already holds a run; pass --resume"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--config", "{d}/nothere.toml"], "config file"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--config", "{d}/bad.toml"], "cannot read config"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--config", "{d}/unknown.toml"], "unknown option(s) epoks"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--config", "{d}/wrongtype.toml"], "'epochs' must be an integer"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--config", "{d}/range.toml"], "'validation_split' must be in [0, 1)"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--config", "{d}/notbool.toml"], "'finetune_denoising' must be true or false"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--corruption", "blur"], "unknown value 'blur'"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--layers", "8,-2"], "'layers' must be positive"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--layers", "32,,8"], "'layers' has an empty item in '32,,8'"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--config", "{d}/good.npy"], "is not a TOML text file"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--learning-rate", "-1"], "'learning_rate' must be positive"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--corruption-level", "1.5"], "corruption_level"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--layers", "4,2", "--corruption-level", "0.1,0.2,0.3"], "corruption_level"),
    ([P, "{d}/signed.npy", "--run-dir", "{d}/new", "--loss", "binary_crossentropy", *TINY], "needs inputs in [0, 1]"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/run", "--resume", "--layers", "7", "--epochs", "1", "--quiet"], "layer_sizes"),
    ([F, "{d}/good.npy", "--run-dir", "{d}/run"], "needs labels"),
    ([F, "{d}/good.npy", "--labels", "{d}/labels.npy", "--run-dir", "{d}/foreign"], "not a tiedae run directory"),
    # Checked before any training, in our words (not numpy's, scikit-learn's or the estimator's).
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", *TINY, "--image-shape", "2x5"],
     "--image-shape 2x5 has 10 pixels but the data has 9 features"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", *TINY, "--write-h5ad", "{d}/out.txt"],
     "--write-h5ad '{d}/out.txt' must end in '.h5ad'"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", *TINY, "--write-h5ad", "{d}/nowhere/out.h5ad"],
     "the folder '{d}/nowhere' does not exist"),
    ([E, "{d}/good.npy", "--run-dir", "{d}/run", "--write-h5ad", "{d}/out.txt"], "must end in '.h5ad'"),
    ([E, "{d}/good.npy", "--run-dir", "{d}/run", "--write-h5ad", "{d}/nowhere/out.h5ad"], "does not exist"),
    ([E, "{d}/good.npy", "--run-dir", "{d}/run", "--output", "{d}/nowhere/codes.npy"], "does not exist"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", *TINY[:-2], "--validation-split", "0.99"],
     "option 'validation_split' 0.99 holds out all 40 rows, leaving none to train on; use at most 0.975."),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--seed", "-1"], "'seed' must be an integer from 0 to 4294967295"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--learning-rate", "nan"], "'learning_rate' must be positive and finite"),
    ([F, "{d}/good.npy", "--labels", "{d}/labels.npy", "--run-dir", "{d}/run", "--learning-rate", "-1"],
     "'learning_rate' must be positive"),
    ([F, "{d}/good.npy", "--labels", "{d}/labels.npy", "--run-dir", "{d}/run", "--learning-rate", "nan"],
     "'learning_rate' must be positive and finite"),
    ([F, "{d}/good.npy", "--labels", "{d}/labels.npy", "--run-dir", "{d}/run", "--learning-rate", "inf"],
     "'learning_rate' must be positive and finite"),
    ([F, "{d}/good.npy", "--labels", "{d}/labels.npy", "--run-dir", "{d}/run", "--test-split", "0.99"],
     "--test-split 0.99 holds out all 40 rows, leaving none to train on; use at most 0.975."),
    ([F, "{d}/good.npy", "--labels", "{d}/labels.npy", "--run-dir", "{d}/run", "--label-fraction", "0.01"],
     "--label-fraction 0.01 keeps no labels of the 32 training rows; use at least 0.0313."),
    ([F, "{d}/good.npy", "--labels", "{d}/one_class.npy", "--run-dir", "{d}/run"],
     "every label is 0; fine-tuning a classifier needs at least two classes"),
    ([F, "{d}/good.npy", "--labels", "{d}/nan_labels.npy", "--run-dir", "{d}/run"],
     "1 label(s) are missing (NaN or empty), the first at row 7"),
    (["demo", "--run-dir", "{d}/foreign"], "not a tiedae run; choose another --run-dir or pass --overwrite"),
    (["demo", "--run-dir", "{d}/run"], "holds a tiedae run that is not the demo's"),
    ([E, "{d}/wide.npy", "--run-dir", "{d}/run"], "has 5 features but the model was trained on 9"),
    ([V, "{d}/wide.npy", "--run-dir", "{d}/run"], "has 5 features but the model was trained on 9"),
    ([E, "{d}/good.npy", "--run-dir", "{d}/broken_run"], "may be corrupted"),
    ([E, "{d}/good.npy", "--run-dir", "{d}/missing_run"], "not a tiedae run directory"),
    # A flag that would have no effect in the combination given.
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--target-sum", "5"],
     "--target-sum has no effect without --normalize; add --normalize or leave it out."),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--min-genes", "3"],
     "--min-genes has no effect without --gmt; add --gmt FILE or leave it out."),
    ([P, "{d}/ragged.csv", "--run-dir", "{d}/new", "--backed"], "--backed streams only a .npy or .h5ad file"),
    ([P, "{d}/good.npz", "--run-dir", "{d}/new", "--backed"], "'{d}/good.npz' would be read into memory"),
    ([P, "{d}/good.npy", "--run-dir", "{d}/new", "--backed", "--validation-split", "0.2"],
     "--validation-split has no effect with --backed"),
    ([E, "{d}/good.npz", "--run-dir", "{d}/run", "--backed"], "--backed streams only a .npy or .h5ad file"),
    ([F, "{d}/good.npy", "--labels", "{d}/labels.npy", "--run-dir", "{d}/run", "--unfreeze-after", "2"],
     "--unfreeze-after has no effect without --freeze; add --freeze or leave it out."),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[f"{i:02d}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_refused_cleanly(files, argv, message, capsys):
    before = _snapshot(files)
    code = main([a.format(d=files) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(d=files) in err, err
    assert err.startswith("tiedae: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert _snapshot(files) == before  # nothing created, nothing modified
    assert not (files / "new").exists()


@pytest.mark.parametrize(
    "argv",
    [["--backend", "mxnet", "demo"], ["pretrain"], ["finetune", "x.npy", "--run-dir", "r", "--epochs", "0"],
     ["finetune", "x.npy", "--run-dir", "r", "--label-fraction", "2"], ["wrongcommand"],
     # A test split of 1 leaves nothing to train on; scikit-learn's seeds are non-negative.
     ["finetune", "x.npy", "--run-dir", "r", "--test-split", "1"],
     ["finetune", "x.npy", "--run-dir", "r", "--seed", "-1"], ["demo", "--seed", "-1"]],
)
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: tiedae" in capsys.readouterr().err


def test_debug_shows_the_traceback(files):
    with pytest.raises(ValueError, match="does not exist"):
        main(["--debug", "pretrain", str(files / "missing.npy"), "--run-dir", str(files / "new")])
