"""Start-up time of the `tiedae` command: `--help`, a refused argument and a tiny run, best of N.

    python -m benchmarks.startup [--repeats 5] [--backend jax] [--json OUT]

The first two are answered before Keras loads (the target is under 1.5 s each); the tiny run
(one epoch of a 4-unit layer on a 64 x 8 matrix) measures what a run pays before any real
work: imports, backend start and saving. A subprocess per call, so each pays the
interpreter's start as a user does.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# {call: (arguments, target seconds or None)}; "data.npy" and "run" are made in a temporary folder.
CALLS = {
    "help": (["--help"], 1.5),
    "refused_argument": (["pretrain", "missing.npy", "--run-dir", "unused", "--layers", "0"], 1.5),
    "tiny_run": (["pretrain", "data.npy", "--run-dir", "run", "--overwrite", "--layers", "4",
                  "--epochs", "1", "--quiet"], None),
}


def _command():
    script = shutil.which("tiedae", path=os.path.dirname(sys.executable)) or shutil.which("tiedae")
    return [script] if script else [sys.executable, "-c", "import sys, tiedae_cli; sys.exit(tiedae_cli.main())"]


def time_startup(repeats=5, backend="jax"):
    """{call: {"args", "best_s", "all_s", "returncode", "target_s"}} for each of `CALLS`."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "data.npy", np.random.default_rng(0).random((64, 8), np.float32))
        for name, (args, target) in CALLS.items():
            seconds, code = [], None
            for _ in range(repeats):
                start = time.perf_counter()
                code = subprocess.run([*_command(), *args], env=env, cwd=folder,
                                      capture_output=True).returncode
                seconds.append(time.perf_counter() - start)
            results[name] = {"args": args, "best_s": round(min(seconds), 3),
                             "all_s": [round(s, 3) for s in seconds], "returncode": code,
                             "target_s": target}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = time_startup(args.repeats, args.backend)
    for name, result in results.items():
        target = f" (target < {result['target_s']} s)" if result["target_s"] else ""
        print(f"{name}: best {result['best_s']:.2f} s of {args.repeats}{target}, exit {result['returncode']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
