"""Messages that name the cause, and a config.toml that records every option that changes the run."""

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import keras
import numpy as np
import pytest

from tiedae import runs
from tiedae.cli import main

TINY = ["--layers", "4", "--epochs", "1", "--batch-size", "32", "--quiet"]


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((50, 8)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.arange(50) % 2)
    return tmp_path / "x.npy", tmp_path / "y.npy"


def _config(run_dir):
    return tomllib.loads((run_dir / runs.CONFIG).read_text())


def test_resume_with_no_run_says_it_starts_a_new_one(tmp_path, data, capsys):
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(data[0]), "--run-dir", str(run_dir), "--resume", *TINY]) == 0
    err = capsys.readouterr().err
    assert err == f"tiedae: no run to resume in {run_dir}; starting a new run.\n"
    assert runs.RunDirectory.holds_run(run_dir)
    # A run to resume: nothing said.
    assert main(["pretrain", str(data[0]), "--run-dir", str(run_dir), "--resume", *TINY]) == 0
    assert "no run to resume" not in capsys.readouterr().err


def test_config_toml_records_how_the_rows_reached_the_model(tmp_path, data):
    memory, backed = tmp_path / "memory", tmp_path / "backed"
    assert main(["pretrain", str(data[0]), "--run-dir", str(memory), *TINY]) == 0
    config = _config(memory)
    assert config["training"] == {"backed": False, "data_parallel": False}
    assert config["pretrain"]["validation_split"] == 0.1

    assert main(["pretrain", str(data[0]), "--run-dir", str(backed), "--backed", *TINY]) == 0
    config = _config(backed)
    assert config["training"] == {"backed": True, "data_parallel": False}
    assert config["pretrain"]["validation_split"] == 0.0  # data on disk is not split

    # Given back, the file streams the data again.
    again = tmp_path / "again"
    assert main(["pretrain", str(data[0]), "--run-dir", str(again), "--config", str(backed / runs.CONFIG),
                 "--quiet"]) == 0
    assert _config(again) == _config(backed)
    np.testing.assert_array_equal(np.load(again / runs.EMBEDDING), np.load(backed / runs.EMBEDDING))


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="data-parallel training is JAX's")
def test_config_toml_records_data_parallel(tmp_path, data):
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(data[0]), "--run-dir", str(run_dir), "--data-parallel", *TINY]) == 0
    assert _config(run_dir)["training"]["data_parallel"] is True


def test_evaluate_says_why_it_reports_no_accuracy(tmp_path, data, capsys):
    x, y = data
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(x), "--run-dir", str(run_dir), *TINY]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(x), "--labels", str(y), "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"accuracy            n/a: no fine-tuned model in {run_dir}; run `tiedae finetune` first" in out

    assert main(["finetune", str(x), "--labels", str(y), "--run-dir", str(run_dir), "--epochs", "1",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(x), "--run-dir", str(run_dir)]) == 0
    assert "accuracy            n/a: no labels; pass --labels FILE or --label-column NAME" in capsys.readouterr().out
    assert main(["evaluate", str(x), "--labels", str(y), "--run-dir", str(run_dir)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("accuracy")]
    assert len(lines) == 1 and lines[0].strip().endswith("%")
