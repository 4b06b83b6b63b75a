import json
import os

import numpy as np
import pytest

from tiedae.io import atomic_path, save_npy, write_json
from tiedae.io.atomic import save_npz


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


@pytest.mark.parametrize("name", ["codes.txt", "codes"])
def test_save_npy_writes_exactly_the_named_file(tmp_path, name):
    # NumPy appends ".npy" to a name without it; the array must still land in `name`.
    save_npy(tmp_path / name, np.arange(4.0))
    np.testing.assert_array_equal(np.load(tmp_path / name), np.arange(4.0))
    assert os.listdir(tmp_path) == [name]


def test_save_npz_writes_exactly_the_named_file(tmp_path):
    save_npz(tmp_path / "state.bin", {"a": np.arange(2), "b": np.ones(3)})
    with np.load(tmp_path / "state.bin") as archive:
        np.testing.assert_array_equal(archive["b"], np.ones(3))
    assert os.listdir(tmp_path) == ["state.bin"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        save_npy(tmp_path / "a.npy", np.zeros(2))
    finally:
        os.umask(previous)
    for name in ("m.json", "a.npy"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode


@pytest.mark.parametrize("as_given", ["folder", "folder/"])
def test_a_folder_as_the_target_is_refused_and_nothing_is_left(tmp_path, as_given):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="give a file name"):
        save_npy(os.path.join(tmp_path, as_given), np.zeros(2))
    assert os.listdir(tmp_path) == ["folder"] and os.listdir(tmp_path / "folder") == []
