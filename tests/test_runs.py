import csv

import pytest

from tiedae import runs
from tiedae.io import DataError


def test_new_directory_becomes_a_run(tmp_path):
    runs.RunDirectory(tmp_path / "r")
    assert (tmp_path / "r" / runs.MARKER).is_file()
    assert runs.RunDirectory(tmp_path / "r").is_previous_run


def test_foreign_directory_refused_unless_overwrite(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(DataError, match="not a tiedae run.*--overwrite"):
        runs.RunDirectory(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
    runs.RunDirectory(tmp_path, overwrite=True)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_must_exist(tmp_path):
    with pytest.raises(DataError, match="not a tiedae run directory"):
        runs.RunDirectory(tmp_path, must_exist=True)


def test_metrics_merge_by_section(tmp_path):
    run = runs.RunDirectory(tmp_path / "r")
    run.update_metrics("pretrain", {"a": 1})
    run.update_metrics("finetune", {"b": 2})
    assert run.read_metrics() == {"pretrain": {"a": 1}, "finetune": {"b": 2}}


def test_history_csv_rows(tmp_path):
    run = runs.RunDirectory(tmp_path / "r")
    run.write_history([{"loss": [3.0, 2.0], "val_loss": [3.5, 2.5]}, {"loss": [1.0]}], {"loss": [0.5]})
    with open(run.file(runs.HISTORY)) as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["stage"], r["epoch"], r["loss"], r["val_loss"]) for r in rows] == [
        ("layer_1", "1", "3.0", "3.5"),
        ("layer_1", "2", "2.0", "2.5"),
        ("layer_2", "1", "1.0", ""),
        ("finetune", "1", "0.5", ""),
    ]
