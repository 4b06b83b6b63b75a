"""`tiedae pretrain --precision`: recorded in metrics.json and config.toml, refused when unknown."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tiedae import StackedDenoisingAutoencoder, runs
from tiedae.cli import main

QUICK = ["--batch-size", "64", "--quiet", "--seed", "1", "--layers", "16,8", "--epochs", "2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, X=(load_digits().data[:200] / 16.0).astype(np.float32))
    return path


def test_bfloat16_run_is_recorded_and_auto_resolves(data, tmp_path):
    for precision, expected in (("bfloat16", "bfloat16"), ("auto", "float32")):
        run_dir = tmp_path / precision
        assert main(["pretrain", str(data), "--run-dir", str(run_dir), "--precision", precision, *QUICK]) == 0
        metrics = json.loads((run_dir / runs.METRICS).read_text())
        # conftest sets TIEDAE_BF16_ENGINE=none: auto sees no engine.
        assert metrics["pretrain"]["precision"] == expected
        assert f'precision = "{precision}"' in (run_dir / runs.CONFIG).read_text()
        stack = StackedDenoisingAutoencoder.load(run_dir / runs.PRETRAINED_MODEL)
        assert stack.precision_ == expected


def test_unknown_precision_exits_2_and_writes_nothing(data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(data), "--run-dir", str(run_dir), "--precision", "fp16", *QUICK]) == 2
    assert "unknown value 'fp16'; use one of auto, float32, bfloat16" in capsys.readouterr().err
    assert not run_dir.exists()
