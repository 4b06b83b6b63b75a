"""The frame of a seeded quality child: settings in, one JSON payload out.

`quality`, `clustering` and `semi_supervised` share it: parse `--json` and
`--settings`, load Fashion-MNIST (the first `n_test` test images), run every
seed, and after each seed rewrite the payload (raw results, tables, targets),
so that a run cut short still leaves what it measured.
"""

import argparse
import json
import statistics

import keras

from benchmarks._util import load_average, peak_rss_mib, write_json
from benchmarks.data import load_fashion_mnist


def targets_met(targets):
    for t in targets:
        t["met"] = t["measured"] >= t["target"]
    return targets


def mean_seconds_note(out, what="pretraining"):
    """The mean of `out["pretrain_seconds"]` as a one-note list (empty before the first seed)."""
    seconds = out["pretrain_seconds"]
    if not seconds:
        return []
    return [f"Mean {what} time per seed: {statistics.fmean(seconds):.0f} s."]


def run_seeded(doc, name, out, run_seed, tables, targets, description, notes=None, argv=None,
               after_seeds=None):
    """Run `run_seed(seed, data, settings, out, log)` for every seed and write the payload.

    Args:
        doc: The child module's docstring (its first line describes the CLI).
        name: Section name, for log lines.
        out: The raw-results dict that `run_seed` fills.
        tables, targets: `f(out, settings)` -> the rendered tables / target list.
        description: `f(settings)` -> one paragraph describing the set-up.
        notes: Optional `f(out, settings)` -> list of strings.
        after_seeds: Optional `f(data, settings, out, log)` run once after the seeds.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--settings", required=True, help="JSON object (see run.py MODES)")
    args = parser.parse_args(argv)
    settings = json.loads(args.settings)

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    data = ((x_train, y_train), (x_test[: settings["n_test"]], y_test[: settings["n_test"]]))
    payload = {"backend": keras.backend.backend(), "settings": settings,
               "load_average_start": load_average(), "description": description(settings)}

    def log(message):
        print(f"[{name} {payload['backend']}] {message}", flush=True)

    def save():
        payload.update(raw=out, tables=tables(out, settings),
                       targets=targets_met(targets(out, settings)),
                       notes=notes(out, settings) if notes else [],
                       peak_rss_mib=peak_rss_mib(), load_average_end=load_average())
        write_json(args.json, payload)

    for seed in range(settings["seeds"]):
        run_seed(seed, data, settings, out, log)
        keras.backend.clear_session()
        save()
    if after_seeds is not None:
        after_seeds(data, settings, out, log)
        save()
    return payload
