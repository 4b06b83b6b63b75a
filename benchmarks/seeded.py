"""The frame of a seeded quality child: settings in, one JSON payload out.

`quality`, `semi_supervised` and `deep_clustering` share it:
parse `--json` and `--settings`, load Fashion-MNIST (the first `n_test` test
images), run every seed, and after each seed rewrite the payload (raw results,
tables, targets), so that a run cut short still leaves what it measured. With
`"parallel_seeds": true` the seeds run side by side, one process each.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def merge_raw(into, other):
    """Append `other`'s raw results (nested dicts of lists) to `into`, key by key."""
    for key, value in other.items():
        if isinstance(value, dict):
            merge_raw(into.setdefault(key, {}), value)
        elif isinstance(value, list):
            into.setdefault(key, []).extend(value)
        else:
            into[key] = value
    return into


def run_seeds_in_parallel(settings, seeds, out, log):
    """Run every seed in its own process of the calling module; merge their raw results.

    For a GPU, where one small model's steps leave the device mostly idle:
    the seeds share it side by side. Each process gets an equal share of the
    CPU threads and allocates GPU memory as it goes (no JAX preallocation). A
    seed still running after `settings["time_limit_s"]` seconds is stopped and
    left out (logged), so a run that must end in time keeps what finished.
    """
    module = sys.modules["__main__"].__spec__.name
    threads = str(max(1, (os.cpu_count() or 1) // len(seeds)))
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "OMP_NUM_THREADS": threads}
    deadline = time.monotonic() + settings.get("time_limit_s", float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for seed in seeds:
            child = {**settings, "parallel_seeds": False, "seed_list": [seed]}
            path = Path(tmp) / f"seed{seed}.json"
            cmd = [sys.executable, "-m", module, "--json", str(path),
                   "--settings", json.dumps(child)]
            procs.append((seed, path, subprocess.Popen(cmd, env=env)))
        for seed, path, proc in procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                log(f"seed {seed}: stopped at the time limit; left out")
                continue
            if proc.returncode != 0 or not path.exists():
                log(f"seed {seed}: process failed (exit {proc.returncode}); left out")
                continue
            merge_raw(out, json.loads(path.read_text())["raw"])


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

    seeds = settings.get("seed_list", list(range(settings["seeds"])))
    if settings.get("parallel_seeds") and len(seeds) > 1:
        run_seeds_in_parallel(settings, seeds, out, log)
        save()
    else:
        for seed in seeds:
            run_seed(seed, data, settings, out, log)
            keras.backend.clear_session()
            save()
    if after_seeds is not None:
        after_seeds(data, settings, out, log)
        save()
    return payload
