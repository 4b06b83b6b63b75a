import json
import os

import numpy as np
import pytest

from tiedae.io import atomic_path, save_npy, write_json


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as handle:
                handle.write("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary left behind


def test_atomic_path_keeps_suffix_for_writers_that_need_it(tmp_path):
    with atomic_path(tmp_path / "model.weights.h5") as tmp:
        assert tmp.endswith(".weights.h5")
        open(tmp, "w").close()
    assert (tmp_path / "model.weights.h5").exists()


def test_save_npy_and_write_json(tmp_path):
    save_npy(tmp_path / "a.npy", np.arange(3))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), [0, 1, 2])
    write_json(tmp_path / "m.json", {"x": np.float32(0.5), "v": np.arange(2)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"v": [0, 1], "x": 0.5}
