"""The run directory: one folder per run holding models, metrics, history and plots."""

import csv
import io
import json
import os
import shutil
import time

from tiedae.io.atomic import write_json, write_text
from tiedae.io.errors import DataError

MARKER = "tiedae-run.json"

# File names inside a run directory (one place, so the CLI and docs agree).
PRETRAINED_MODEL = "pretrained.keras"
FINETUNED_MODEL = "finetuned.keras"
CONFIG = "config.toml"
METRICS = "metrics.json"
HISTORY = "history.csv"
EMBEDDING = "embedding.npy"
PLOTS = "plots"
# The input's feature (gene) names at pretraining, for inputs that name them: embed,
# evaluate and finetune refuse other names or another order.
FEATURE_NAMES = "feature_names.json"


class RunDirectory:
    """A folder that is either new or a previous run of ours.

    Args:
        path: The folder.
        overwrite: Accept a folder that exists and is not a previous run
            (its files with our names are replaced; others are left alone).
        must_exist: The folder must already be a run (for finetune, embed,
            evaluate).
    """

    def __init__(self, path, overwrite=False, must_exist=False):
        self.path = os.fspath(path)
        marker = os.path.join(self.path, MARKER)
        self.is_previous_run = os.path.isfile(marker)
        self.created_here = False
        if must_exist:
            if not self.is_previous_run:
                raise DataError(
                    f"{self.path!r} is not a tiedae run directory (no {MARKER}); "
                    "pass the --run-dir of a `tiedae pretrain` run."
                )
            return
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise DataError(f"run directory {self.path!r} exists and is a file.")
        if (
            os.path.isdir(self.path)
            and os.listdir(self.path)
            and not self.is_previous_run
            and not overwrite
        ):
            raise DataError(
                f"output directory {self.path!r} exists and is not a tiedae run; "
                "choose another --run-dir or pass --overwrite."
            )
        self.created_here = not os.path.exists(self.path)
        os.makedirs(self.path, exist_ok=True)
        if not self.is_previous_run:
            write_json(marker, {"created": time.strftime("%Y-%m-%dT%H:%M:%S")})

    @staticmethod
    def holds_run(path):
        return os.path.isfile(os.path.join(os.fspath(path), MARKER))

    def discard_if_new(self):
        """Remove the folder if this object created it (a run that failed before any result)."""
        if self.created_here:
            shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name):
        return os.path.join(self.path, name)

    def plot(self, name):
        os.makedirs(self.file(PLOTS), exist_ok=True)
        return os.path.join(self.path, PLOTS, name)

    def read_metrics(self):
        try:
            with open(self.file(METRICS), encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read {self.file(METRICS)!r}: {err}") from None

    def update_metrics(self, section, values):
        """Merge `values` under `section` into metrics.json (atomically)."""
        metrics = self.read_metrics()
        metrics[section] = values
        write_json(self.file(METRICS), metrics)
        return metrics

    def write_history(self, layer_histories, finetune_history=None, name=HISTORY):
        """history.csv: one row per (stage, epoch) with every recorded metric."""
        stages = [(f"layer_{k + 1}", h) for k, h in enumerate(layer_histories)]
        if finetune_history:
            stages.append(("finetune", finetune_history))
        keys = sorted({key for _, h in stages for key in h})
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["stage", "epoch", *keys])
        for stage, history in stages:
            n_epochs = max((len(v) for v in history.values()), default=0)
            for epoch in range(n_epochs):
                row = [history[k][epoch] if epoch < len(history.get(k, [])) else "" for k in keys]
                writer.writerow([stage, epoch + 1, *row])
        write_text(self.file(name), buffer.getvalue())
