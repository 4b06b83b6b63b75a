"""Greedy pretraining on a memory-mapped file larger than it is comfortable to load.

    KERAS_BACKEND=jax python -m benchmarks.out_of_core [--rows 2000000 --features 1000] [--json out.json]

Generates (once, in `--dir`) a `rows x features` float32 `.npy` of synthetic
data in [0, 1] (a sigmoid of a rank-16 product plus noise; written in chunks,
never held in memory), then runs two fresh child processes with the same
stack, batch size and seed:

- streamed: `StackedDenoisingAutoencoder.pretrain(np.load(path, mmap_mode="r"))`,
  i.e. windowed shuffled batches from the file and codes spilled to a
  temporary memory-mapped file (`tiedae.pretraining.streaming`);
- in memory: the first `--memory-rows` rows copied into RAM as a NumPy array,
  the ordinary path.

Each reports samples/s per layer, from the wall time of its last epoch (the
first also compiles), and its peak RSS (`ru_maxrss`). The issue's target for
the full size (2,000,000 x 1,000, 8 GB): peak RSS of the streamed run under
1.5 GB and its samples/s at least 80% of the in-memory rate. The defaults
here are that full size; `--rows 200000` is a quick check.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks._util import load_average, peak_rss_mib, quiet_backends, write_json

RSS_TARGET_MIB = 1.5 * 1024
RATE_TARGET = 0.8


def generate(path, rows, features, seed=0, chunk_rows=32768):
    """Write a `.npy` of `rows x features` float32 values in [0, 1], chunk by chunk."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(16, features)).astype(np.float32) / 2.0
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
              "fortran_order": False, "shape": (rows, features)}
    tmp = f"{path}.partial"
    with open(tmp, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, header)
        for start in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - start)
            factors = rng.normal(size=(n, 16)).astype(np.float32)
            block = 1.0 / (1.0 + np.exp(-(factors @ basis)))
            block += rng.normal(scale=0.05, size=block.shape).astype(np.float32)
            handle.write(np.clip(block, 0.0, 1.0).astype(np.float32).tobytes())
    os.replace(tmp, path)


def _child(args):
    quiet_backends()
    import keras

    from benchmarks.timers import FitTimer
    from tiedae.pretraining import StackedDenoisingAutoencoder

    rss_start = peak_rss_mib()
    x = np.load(args.data, mmap_mode="r")
    if args.child == "memory":
        x = np.array(x[: args.memory_rows])  # in RAM
    layer_sizes = [int(v) for v in args.layer_sizes.split(",")]
    sda = StackedDenoisingAutoencoder(
        layer_sizes, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, verbose=0,
        corruption_level=0.2,
    )
    timer = FitTimer()
    start = time.perf_counter()
    sda.pretrain(x, callbacks=[timer])
    total = time.perf_counter() - start
    rows = int(x.shape[0])
    payload = {
        "mode": args.child,
        "backend": keras.backend.backend(),
        "rows": rows,
        "features": int(x.shape[1]),
        "layer_sizes": layer_sizes,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "pretrain_seconds": total,
        "epoch_seconds": timer.epoch_seconds,
        # The last epoch of each layer: compiled, steady state.
        "samples_per_second": [rows / epochs[-1] for epochs in timer.epoch_seconds],
        "rss_start_mib": rss_start,
        "peak_rss_mib": peak_rss_mib(),
        "final_loss": [h["loss"][-1] for h in sda.history_],
    }
    write_json(args.json, payload)


def _run_child(mode, args, data):
    out = os.path.join(args.dir, f"out_of_core_{mode}.json")
    command = [
        sys.executable, "-m", "benchmarks.out_of_core", "--child", mode, "--data", data,
        "--json", out, "--layer-sizes", args.layer_sizes, "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--memory-rows", str(args.memory_rows),
        "--seed", str(args.seed),
    ]
    print(f"[out_of_core] {mode} ...", flush=True)
    subprocess.run(command, check=True)
    with open(out) as handle:
        return json.load(handle)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--memory-rows", type=int, default=200_000,
                        help="rows loaded into RAM for the in-memory rate")
    parser.add_argument("--layer-sizes", default="256,64")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=os.environ.get("TMPDIR", "/tmp"),
                        help="folder for the generated file (rows x features x 4 bytes)")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", choices=("streamed", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    os.makedirs(args.dir, exist_ok=True)
    args.memory_rows = min(args.memory_rows, args.rows)
    data = os.path.join(args.dir, f"out_of_core_{args.rows}x{args.features}.npy")
    size_gib = args.rows * args.features * 4 / 2**30
    if not os.path.exists(data):
        print(f"[out_of_core] writing {data} ({size_gib:.2f} GiB) ...", flush=True)
        started = time.perf_counter()
        generate(data, args.rows, args.features, seed=args.seed)
        print(f"[out_of_core] written in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        load_start = load_average()
        streamed = _run_child("streamed", args, data)
        memory = _run_child("memory", args, data)
    finally:
        if not args.keep:
            os.remove(data)
    ratios = [s / m for s, m in zip(streamed["samples_per_second"], memory["samples_per_second"])]
    payload = {
        "file_gib": size_gib,
        "streamed": streamed,
        "memory": memory,
        "rate_ratio": ratios,
        "rss_target_mib": RSS_TARGET_MIB,
        "rate_target": RATE_TARGET,
        "meets_rss_target": streamed["peak_rss_mib"] < RSS_TARGET_MIB,
        "meets_rate_target": min(ratios) >= RATE_TARGET,
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }
    if args.json:
        write_json(args.json, payload)
    print(
        f"[out_of_core {streamed['backend']}] {args.rows} x {args.features} ({size_gib:.2f} GiB), "
        f"layers {args.layer_sizes}, batch {args.batch_size}\n"
        f"  streamed : peak RSS {streamed['peak_rss_mib']:.0f} MiB, samples/s per layer "
        f"{', '.join(f'{r:.0f}' for r in streamed['samples_per_second'])}\n"
        f"  in memory ({memory['rows']} rows): peak RSS {memory['peak_rss_mib']:.0f} MiB, samples/s "
        f"{', '.join(f'{r:.0f}' for r in memory['samples_per_second'])}\n"
        f"  streamed / in-memory rate: {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(target >= {RATE_TARGET}); RSS target < {RSS_TARGET_MIB:.0f} MiB: "
        f"{'met' if payload['meets_rss_target'] else 'NOT met'}",
        flush=True,
    )
    return payload


if __name__ == "__main__":
    main()
