"""Start-up time of the `tiedae` command: `--help` and a refused argument, best of N.

    python -m benchmarks.startup [--repeats 5] [--backend jax] [--json OUT]

Both are answered before Keras loads (the target is under 1.5 s each); a
subprocess per call, so each pays the interpreter's start as a user does.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CALLS = {
    "help": ["--help"],
    "refused_argument": ["pretrain", "missing.npy", "--run-dir", "unused", "--layers", "0"],
}
TARGET_SECONDS = 1.5


def _command():
    script = shutil.which("tiedae", path=os.path.dirname(sys.executable)) or shutil.which("tiedae")
    return [script] if script else [sys.executable, "-c", "import sys, tiedae_cli; sys.exit(tiedae_cli.main())"]


def time_startup(repeats=5, backend="jax"):
    """{call: {"best_s", "all_s", "returncode"}} for each of `CALLS`."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    results = {}
    for name, args in CALLS.items():
        seconds, code = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            code = subprocess.run([*_command(), *args], env=env, capture_output=True).returncode
            seconds.append(time.perf_counter() - start)
        results[name] = {"best_s": round(min(seconds), 3), "all_s": [round(s, 3) for s in seconds],
                         "returncode": code, "target_s": TARGET_SECONDS}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = time_startup(args.repeats, args.backend)
    for name, result in results.items():
        print(f"{name}: best {result['best_s']:.2f} s of {args.repeats} (target < {TARGET_SECONDS} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
