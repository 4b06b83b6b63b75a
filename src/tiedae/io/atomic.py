"""Write files so that readers never see a half-written one.

Everything is written to a temporary name in the destination folder and then
renamed into place with `os.replace`, which is atomic on POSIX and Windows.
"""

import contextlib
import errno
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
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    suffix = "".join(base.partition(".")[1:]) if "." in base else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    # mkstemp makes the file private (0600); the result should get the mode any new file
    # gets under the user's umask.
    os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        yield tmp
        _flush_to_disk(tmp)  # so a crash after the rename cannot leave an empty file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _current_umask():
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


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
    # Through an open handle: given a name, NumPy appends its own suffix when it is missing,
    # and would write beside the temporary file instead of into it.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def save_npy(path, array):
    """Write one array in NumPy's `.npy` format atomically, to exactly `path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.asarray(array))


def save_keras_model(path, model):
    with atomic_path(path) as tmp:
        model.save(tmp)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
