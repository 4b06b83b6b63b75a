"""Write files so that readers never see a half-written one.

Everything is written to a temporary name in the destination folder and then
renamed into place with `os.replace`, which is atomic on POSIX and Windows.
"""

import contextlib
import json
import os
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it to `path` on success.

    On an exception the temporary file is removed and `path` is untouched.
    The suffix of `path` is kept, since some writers (Keras, NumPy) insist on it.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    suffix = "".join(base.partition(".")[1:]) if "." in base else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        _flush_to_disk(tmp)  # so a crash after the rename cannot leave an empty file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _flush_to_disk(path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def save_npz(path, arrays):
    """Write a dict of arrays to an `.npz` file atomically."""
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def save_npy(path, array):
    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(array))


def save_keras_model(path, model):
    with atomic_path(path) as tmp:
        model.save(tmp)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
