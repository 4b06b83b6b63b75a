"""Run-directory state of a greedy pretraining run, written atomically after every layer.

Layout under `run_dir/checkpoint/`:

```
manifest.json              config, data signature, base seed, completed layers,
                           resolved per-layer losses, histories
layer_{k}.weights.npz      kernel, encoder_bias, decoder_bias of layer k's DAE
finetuned.weights.npz      the deep autoencoder after fine-tuning (if any)
```

Every file is written under a temporary name in the same folder and moved
into place with `os.replace`, which is atomic on POSIX and Windows: a crash
leaves either the old file or the new one, never half of one. The weights of
a layer are written before the manifest that lists the layer as done, so the
manifest never points at weights that are not on disk.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from tiedae.io.atomic import save_npz, write_json
from tiedae.pretraining.data import dense_batch

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


def data_signature(x, max_rows=256):
    """Shape and a digest of up to `max_rows` evenly spaced rows of `x`.

    Enough to notice that a resumed run was handed different data, without
    hashing a large matrix in full.
    """
    n = x.shape[0]
    rows = np.unique(np.linspace(0, n - 1, num=min(n, max_rows)).astype(np.int64))
    digest = hashlib.sha256()
    for row in rows:
        digest.update(np.ascontiguousarray(dense_batch(x, row, row + 1)).tobytes())
    return {"shape": [int(n), int(x.shape[1])], "sha256": digest.hexdigest()}


class PretrainingCheckpoint:
    """Reads and writes the `checkpoint/` folder of a run directory.

    Args:
        run_dir: The run directory; the checkpoint lives in `run_dir/checkpoint`.
    """

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.directory = self.run_dir / "checkpoint"

    @property
    def manifest_path(self):
        return self.directory / MANIFEST_NAME

    def layer_path(self, k):
        return self.directory / f"layer_{k}.weights.npz"

    @property
    def finetuned_path(self):
        return self.directory / "finetuned.weights.npz"

    def read_manifest(self):
        """The manifest as a dict, or `None` when there is no checkpoint yet."""
        if not self.manifest_path.exists():
            return None
        with open(self.manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        if manifest.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"Checkpoint {self.manifest_path} has format {manifest.get('format')!r}, "
                f"this version of tiedae reads format {FORMAT_VERSION}; start a new run_dir."
            )
        return manifest

    def write_manifest(self, manifest):
        write_json(self.manifest_path, {**manifest, "format": FORMAT_VERSION})

    def write_arrays(self, path, arrays):
        save_npz(path, {name: np.asarray(value) for name, value in arrays.items()})

    def read_arrays(self, path, names):
        if not Path(path).exists():
            raise ValueError(
                f"Checkpoint file {path} is missing although the manifest lists it as "
                "done; the run directory is damaged. Start a new run_dir."
            )
        with np.load(path) as data:
            missing = [name for name in names if name not in data.files]
            if missing:
                raise ValueError(f"Checkpoint file {path} lacks {missing}; start a new run_dir.")
            return {name: data[name] for name in names}


def check_resumable(manifest, config, signature, path, defaults=None):
    """Raise `ValueError` unless a checkpoint was written by the same config and data.

    A key in `defaults` that the checkpoint's config lacks (it predates the
    option) counts as that default: before the option existed, the code did
    what its default does.
    """
    saved = {**(defaults or {}), **manifest.get("config", {})}
    keys = sorted(set(saved) | set(config))
    changed = [key for key in keys if saved.get(key) != config.get(key)]
    if changed:
        details = ", ".join(
            f"{key}: checkpoint {saved.get(key)!r} vs now {config.get(key)!r}" for key in changed
        )
        raise ValueError(
            f"Cannot resume from {path}: the configuration differs ({details}). Use the "
            "same settings to resume, or pass resume=False with a new run_dir."
        )
    if manifest.get("data") != signature:
        raise ValueError(
            f"Cannot resume from {path}: the data differ from the checkpointed run "
            f"(shape {manifest.get('data', {}).get('shape')} vs {signature['shape']}, or "
            "different values). Pass the same x, or start a new run_dir."
        )
