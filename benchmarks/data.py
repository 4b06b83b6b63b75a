"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` (no downloads).

The package installs the four gzipped IDX files of Xiao et al. (2017); their
directory is found with `dpkg -L`, or given with `TIEDAE_FASHION_MNIST_DIR`.
"""

import gzip
import os
import struct
import subprocess
from pathlib import Path

import numpy as np

PACKAGE = "dataset-fashion-mnist"
INSTALL_HINT = f"apt-get install -y {PACKAGE}"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# IDX type codes (the third byte of the magic number) we need.
_IDX_DTYPES = {0x08: np.uint8}


class DatasetMissingError(RuntimeError):
    """Fashion-MNIST is not installed; the message says how to install it."""


def read_idx(path):
    """Read one (optionally gzipped) IDX file into a NumPy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unsupported IDX element type 0x{type_code:02x}.")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    array = np.frombuffer(data, dtype=_IDX_DTYPES[type_code], offset=offset)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} values, found {array.size}.")
    return array.reshape(shape)


def _package_dir():
    try:
        listing = subprocess.run(
            ["dpkg", "-L", PACKAGE], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in listing.splitlines():
        if line.endswith(FILES["train_images"]):
            return Path(line).parent
    return None


def find_fashion_mnist():
    """Directory holding the four IDX files, or `DatasetMissingError`."""
    candidates = []
    if os.environ.get("TIEDAE_FASHION_MNIST_DIR"):
        candidates.append(Path(os.environ["TIEDAE_FASHION_MNIST_DIR"]))
    package_dir = _package_dir()
    if package_dir is not None:
        candidates.append(package_dir)
    candidates.append(DEFAULT_DIR)
    for directory in candidates:
        if all((directory / name).is_file() for name in FILES.values()):
            return directory
    raise DatasetMissingError(
        "Fashion-MNIST was not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + f"). Install it with `{INSTALL_HINT}` (as root; run `apt-get update` first if "
        "the package is unknown), or point TIEDAE_FASHION_MNIST_DIR at a folder holding "
        + ", ".join(FILES.values())
        + ". The benchmarks never download data."
    )


def load_fashion_mnist(flatten=True, scale=True):
    """`(x_train, y_train), (x_test, y_test)`: 60,000 and 10,000 images.

    With `flatten` the images are rows of 784 pixels; with `scale` they are
    float32 in [0, 1], else uint8. Labels are int64 in 0..9.
    """
    directory = find_fashion_mnist()
    arrays = {key: read_idx(directory / name) for key, name in FILES.items()}
    images = []
    for key in ("train_images", "test_images"):
        x = arrays[key]
        if flatten:
            x = x.reshape(len(x), -1)
        if scale:
            x = x.astype(np.float32) / np.float32(255.0)
        images.append(x)
    labels = [arrays[k].astype(np.int64) for k in ("train_labels", "test_labels")]
    return (images[0], labels[0]), (images[1], labels[1])


def cycle_rows(x, n):
    """At least `n` rows: `x` itself, or its rows repeated in order.

    For timing only: large GPU batches need more rows than the dataset has, and a
    step's time does not depend on which images fill the batch.
    """
    return x if n <= len(x) else np.resize(x, (n, *x.shape[1:]))


def shifted_copies(images, labels, pixels=1, side=28):
    """`images` with four copies moved `pixels` up, down, left and right (zero-filled).

    Images are flattened `side` x `side` rows; returns `(images, labels)` five times as long,
    the originals first. The usual augmentation of a few labelled images: a garment moved by
    a pixel is the same garment.
    """
    grid = images.reshape(len(images), side, side)
    copies = [grid]
    for axis in (1, 2):
        for step in (pixels, -pixels):
            moved = np.zeros_like(grid)
            target = [slice(None)] * 3
            source = [slice(None)] * 3
            target[axis] = slice(step, None) if step > 0 else slice(None, step)
            source[axis] = slice(None, -step) if step > 0 else slice(-step, None)
            moved[tuple(target)] = grid[tuple(source)]
            copies.append(moved)
    return (np.concatenate(copies).reshape(-1, side * side),
            np.tile(labels, len(copies)))


def stratified_indices(labels, n, rng):
    """`n` indices with (as near as possible) the same count of every class."""
    classes = np.unique(labels)
    per_class = [n // len(classes) + (1 if i < n % len(classes) else 0) for i in range(len(classes))]
    picked = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
              for c, k in zip(classes, per_class)]
    return rng.permutation(np.concatenate(picked))
