"""`--early-stopping` in `tiedae pretrain` and `tiedae finetune`: recorded, and refused where it cannot work."""

import json
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tiedae import runs
from tiedae.cli import main

QUICK = ["--batch-size", "64", "--quiet", "--seed", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    digits = load_digits()
    folder = tmp_path_factory.mktemp("data")
    path = folder / "digits.npz"
    np.savez(path, X=(digits.data[:400] / 16.0).astype(np.float32), y=digits.target[:400])
    return path


def metrics(run_dir):
    with open(os.path.join(run_dir, runs.METRICS)) as handle:
        return json.load(handle)


def test_pretrain_and_finetune_stop_early_and_record_it(data, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(data), "--run-dir", str(run_dir), "--layers", "16,8",
                 "--epochs", "300", "--learning-rate", "0.01", "--early-stopping",
                 "--patience", "2", *QUICK]) == 0
    layers = metrics(run_dir)["pretrain"]["layers"]
    for layer in layers:
        assert layer["epochs_run"] < 300 and layer["epochs_run"] - layer["best_epoch"] == 2
    config = (run_dir / runs.CONFIG).read_text()
    assert "early_stopping = true" in config and "patience = 2" in config
    # The run's history holds one row per epoch actually run.
    rows = (run_dir / runs.HISTORY).read_text().splitlines()[1:]
    assert len(rows) == sum(layer["epochs_run"] for layer in layers)

    assert main(["finetune", str(data), "--run-dir", str(run_dir), "--epochs", "500",
                 "--learning-rate", "0.01", "--early-stopping", "--patience", "3",
                 "--validation-split", "0.2", *QUICK]) == 0
    finetune = metrics(run_dir)["finetune"]
    assert finetune["pretrained"]["epochs_run"] < 500
    assert finetune["pretrained"]["epochs_run"] - finetune["pretrained"]["best_epoch"] == 3
    # The validation rows come out of the training rows, not the test rows.
    assert finetune["n_test"] == 80 and finetune["n_train_labels"] + finetune["n_validation_labels"] == 320


@pytest.mark.parametrize(
    "argv, early_stopping",
    [([], True), (["--validation-split", "0"], False), (["--backed"], False)],
)
def test_pretrain_stops_early_by_default_where_it_can(data, tmp_path, argv, early_stopping):
    """Default "auto": on for 400 rows in memory with validation rows, off without them or
    for data on disk; config.toml records what the run did (given back, it repeats the run)."""
    source = data
    if "--backed" in argv:
        source = tmp_path / "x.npy"
        np.save(source, np.load(data)["X"])
    run_dir = tmp_path / "run"
    budget = ["--epochs", "200", "--patience", "1"] if early_stopping else ["--epochs", "3"]
    assert main(["pretrain", str(source), "--run-dir", str(run_dir), "--layers", "8",
                 "--learning-rate", "0.03", *budget, *argv, *QUICK]) == 0
    config = (run_dir / runs.CONFIG).read_text()
    assert f"early_stopping = {str(early_stopping).lower()}" in config
    (layer,) = metrics(run_dir)["pretrain"]["layers"]
    assert layer["epochs_run"] < 200 if early_stopping else layer["epochs_run"] == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "--patience", "3", "--no-early-stopping"],
         "--patience has no effect without --early-stopping"),
        # On by default ("auto") only with validation rows: here there are none.
        (["pretrain", "--patience", "3", "--validation-split", "0"],
         "--patience has no effect here: early stopping is on by default only"),
        (["pretrain", "--early-stopping", "--validation-split", "0"],
         "--early-stopping needs validation rows"),
        (["pretrain", "--early-stopping", "--backed"], "data read from disk (--backed) is not split"),
    ],
)
def test_pretrain_refuses_early_stopping_that_cannot_work(data, tmp_path, argv, message, capsys):
    source = data
    if "--backed" in argv:
        source = tmp_path / "x.npy"
        np.save(source, np.load(data)["X"])
    run_dir = tmp_path / "run"
    assert main([argv[0], str(source), "--run-dir", str(run_dir), *argv[1:], *QUICK]) == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--patience", "3", "--no-early-stopping"],
         "--patience has no effect without --early-stopping"),
        (["--validation-split", "0.2", "--no-early-stopping"],
         "--validation-split has no effect without --early-stopping"),
        # 10% of 320 training rows: below the 300 rows where early stopping is on by default.
        (["--patience", "3", "--label-fraction", "0.1"],
         "--patience has no effect here: early stopping is on by default only from 300 labelled "
         "training rows with two or more of every class (here 32,"),
    ],
)
def test_finetune_refuses_early_stopping_options_without_effect(data, tmp_path, argv, message, capsys):
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(data), "--run-dir", str(run_dir), "--layers", "8",
                 "--epochs", "1", *QUICK]) == 0
    before = sorted(os.listdir(run_dir))
    capsys.readouterr()
    assert main(["finetune", str(data), "--run-dir", str(run_dir), *argv, *QUICK]) == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(run_dir)) == before  # nothing written


@pytest.mark.parametrize("argv, on", [([], True), (["--label-fraction", "0.5"], False)])
def test_finetune_stops_early_by_default_from_300_training_labels(data, tmp_path, argv, on):
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(data), "--run-dir", str(run_dir), "--layers", "8",
                 "--epochs", "1", *QUICK]) == 0
    assert main(["finetune", str(data), "--run-dir", str(run_dir), "--epochs", "400",
                 "--learning-rate", "0.03", *argv, *QUICK]) == 0
    finetune = metrics(run_dir)["finetune"]
    # 320 training rows: a stratified tenth of them validates; of 160, none: every epoch runs.
    assert (finetune["n_validation_labels"] > 0) == on
    assert finetune["n_train_labels"] + finetune["n_validation_labels"] == (320 if on else 160)
    assert (finetune["pretrained"]["epochs_run"] < 400) == on


def test_a_class_of_one_row_turns_auto_off_and_names_the_cli_flag(data, tmp_path, capsys):
    loaded = np.load(data)
    y = loaded["y"].copy()
    y[0] = 42  # a class of one row: no stratified validation rows for it
    source = tmp_path / "rare.npz"
    np.savez(source, X=loaded["X"], y=y)
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(source), "--run-dir", str(run_dir), "--layers", "8",
                 "--epochs", "1", *QUICK]) == 0
    assert main(["finetune", str(source), "--run-dir", str(run_dir), "--epochs", "2", *QUICK]) == 0
    assert metrics(run_dir)["finetune"]["n_validation_labels"] == 0
    capsys.readouterr()
    assert main(["finetune", str(source), "--run-dir", str(run_dir), "--epochs", "2",
                 "--early-stopping", *QUICK]) == 2
    err = capsys.readouterr().err
    assert "class 42 has only one labelled row" in err and "pass --no-early-stopping" in err


def test_a_patience_below_one_is_a_usage_error(data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", str(data), "--run-dir", str(tmp_path), "--early-stopping",
              "--patience", "0"])
    assert exit_info.value.code == 2
    assert "--patience: expected a positive integer" in capsys.readouterr().err
