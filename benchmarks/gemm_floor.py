"""The GEMM floor: the matrix products of one training step, timed alone.

A training step of a tied autoencoder `d -> h1 -> ... -> hL -> ... -> d` on a
batch of `B` rows performs, for each kernel `W_k` of shape `(m, n)`:

* encoder layer k: forward `X @ W` (B,m)x(m,n), input gradient `dY @ W.T`
  (skipped for k = 0: the data needs no gradient) and weight gradient `X.T @ dY`;
* decoder layer k: forward `Z @ W.T` (B,n)x(n,m), input gradient `dY @ W` and
  weight gradient `dY.T @ Z`.

`training_gemms` lists those products with the operand layout a real step
uses (which operands are transposed views), so each library's BLAS sees the
same calls. Everything else in a step (biases, activations, loss, optimizer,
framework overhead) is excluded: step time / floor time is the overhead factor.
"""

import argparse
import dataclasses
import platform
import statistics
import time

import numpy as np

from benchmarks._util import cpu_seconds, summarize

# The matmul dtype of each Keras dtype policy.
FLOOR_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16"}


def parse_arch(text):
    """'784-1000-1000-1000' -> (784, [1000, 1000, 1000])."""
    try:
        widths = [int(v) for v in str(text).split("-")]
    except ValueError:
        widths = []
    if len(widths) < 2 or min(widths) <= 0:
        raise ValueError(f"architecture must look like 784-500-250; got {text!r}")
    return widths[0], widths[1:]


@dataclasses.dataclass(frozen=True)
class Gemm:
    """`C (m, n) = op(A) (m, k) @ op(B) (k, n)`; op is a transpose when flagged.

    A transposed operand is stored with the reversed shape and used as a view.
    """

    name: str
    m: int
    k: int
    n: int
    transpose_a: bool = False
    transpose_b: bool = False

    @property
    def flops(self):
        return 2 * self.m * self.k * self.n

    @property
    def a_stored_shape(self):
        return (self.k, self.m) if self.transpose_a else (self.m, self.k)

    @property
    def b_stored_shape(self):
        return (self.n, self.k) if self.transpose_b else (self.k, self.n)


def training_gemms(input_dim, layer_sizes, batch_size):
    """The matrix products of one training step of a tied (or untied) autoencoder."""
    widths = [int(input_dim)] + [int(s) for s in layer_sizes]
    b = int(batch_size)
    gemms = []
    for k, (m, n) in enumerate(zip(widths[:-1], widths[1:])):
        gemms.append(Gemm(f"enc{k}.forward", b, m, n))
        if k > 0:
            gemms.append(Gemm(f"enc{k}.input_grad", b, n, m, transpose_b=True))
        gemms.append(Gemm(f"enc{k}.weight_grad", m, b, n, transpose_a=True))
    for k in reversed(range(len(widths) - 1)):
        m, n = widths[k], widths[k + 1]
        gemms.append(Gemm(f"dec{k}.forward", b, n, m, transpose_b=True))
        gemms.append(Gemm(f"dec{k}.input_grad", b, m, n))
        gemms.append(Gemm(f"dec{k}.weight_grad", m, b, n, transpose_a=True))
    return gemms


def step_flops(input_dim, layer_sizes, batch_size):
    return sum(g.flops for g in training_gemms(input_dim, layer_sizes, batch_size))


def _operands(gemms, seed=0):
    """Random float32 operands, stored in the layout each product expects."""
    rng = np.random.default_rng(seed)
    out = []
    for g in gemms:
        a = rng.standard_normal(g.a_stored_shape, dtype=np.float32)
        b = rng.standard_normal(g.b_stored_shape, dtype=np.float32)
        out.append((a, b))
    return out


def _time_loop(run_once, iters, sync=lambda r: None):
    """Seconds per call of `run_once`, averaged over `iters` calls."""
    start = time.perf_counter()
    result = None
    for _ in range(iters):
        result = run_once()
    sync(result)
    return (time.perf_counter() - start) / iters


class NumpyFloor:
    """The floor with NumPy's BLAS (OpenBLAS in the pip wheels); float32 only."""

    library = "numpy"

    def __init__(self, gemms, dtype="float32"):
        if dtype != "float32":
            raise ValueError("NumPy has no bfloat16 BLAS; only float32 is measured.")
        self.pairs = [
            (a.T if g.transpose_a else a, b.T if g.transpose_b else b)
            for g, (a, b) in zip(gemms, _operands(gemms))
        ]
        self.outs = [np.empty((g.m, g.n), np.float32) for g in gemms]

    def run_once(self):
        for (a, b), out in zip(self.pairs, self.outs):
            np.matmul(a, b, out=out)

    def time(self, iters):
        return _time_loop(self.run_once, iters)


def torch_device():
    """Where Keras's torch backend puts tensors: the GPU when PyTorch sees one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchFloor:
    """The floor with PyTorch's GEMM (MKL / oneDNN on CPU, cuBLAS on GPU); float32 or bfloat16."""

    library = "torch"

    def __init__(self, gemms, dtype="float32", device=None):
        import torch

        self.torch = torch
        self.device = device or torch_device()
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
        self.pairs = []
        for g, (a, b) in zip(gemms, _operands(gemms)):
            ta = torch.from_numpy(a).to(self.device, torch_dtype)
            tb = torch.from_numpy(b).to(self.device, torch_dtype)
            self.pairs.append((ta.T if g.transpose_a else ta, tb.T if g.transpose_b else tb))
        self.outs = [torch.empty((g.m, g.n), dtype=torch_dtype, device=self.device) for g in gemms]

    def run_once(self):
        with self.torch.no_grad():
            for (a, b), out in zip(self.pairs, self.outs):
                self.torch.matmul(a, b, out=out)

    def _sync(self, result=None):
        # GPU kernels run asynchronously: wait for them before reading the clock.
        if self.device != "cpu":
            self.torch.cuda.synchronize()

    def time(self, iters):
        return _time_loop(self.run_once, iters, sync=self._sync)


class JaxFloor:
    """The floor as one XLA:CPU program (`jax.jit`) holding every product."""

    library = "jax"

    def __init__(self, gemms, dtype="float32"):
        import jax
        import jax.numpy as jnp

        self.jax = jax
        jdtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype]
        self.args = [
            (jnp.asarray(a, dtype=jdtype), jnp.asarray(b, dtype=jdtype))
            for a, b in _operands(gemms)
        ]
        flags = [(g.transpose_a, g.transpose_b) for g in gemms]

        def products(args):
            return [
                jnp.matmul(a.T if ta else a, b.T if tb else b)
                for (a, b), (ta, tb) in zip(args, flags)
            ]

        self.fn = jax.jit(products)

    def run_once(self):
        return self.fn(self.args)

    def time(self, iters):
        return _time_loop(self.run_once, iters, sync=self.jax.block_until_ready)


class TensorflowFloor:
    """The floor as one `tf.function` graph holding every product."""

    library = "tensorflow"

    def __init__(self, gemms, dtype="float32"):
        import tensorflow as tf

        tdtype = {"float32": tf.float32, "bfloat16": tf.bfloat16}[dtype]
        self.args = [
            (tf.cast(tf.constant(a), tdtype), tf.cast(tf.constant(b), tdtype))
            for a, b in _operands(gemms)
        ]
        flags = [(g.transpose_a, g.transpose_b) for g in gemms]

        @tf.function
        def products(args):
            return [
                tf.linalg.matmul(a, b, transpose_a=ta, transpose_b=tb)
                for (a, b), (ta, tb) in zip(args, flags)
            ]

        self.fn = products

    def run_once(self):
        return self.fn(self.args)

    def time(self, iters):
        # Reading one element back forces the graph to finish.
        return _time_loop(self.run_once, iters, sync=lambda r: r[-1][0, 0].numpy())


FLOORS = {
    "numpy": NumpyFloor,
    "torch": TorchFloor,
    "jax": JaxFloor,
    "tensorflow": TensorflowFloor,
}


def make_floor(library, gemms, dtype="float32", **options):
    """A warmed-up floor timer for `library` ("numpy", "torch", "jax", "tensorflow").

    `options` go to the library's floor (`device=` for torch).
    """
    floor = FLOORS[library](gemms, dtype=dtype, **options)
    floor.time(2)  # compile (jax, tf) and touch every buffer once
    return floor


def matmul_roofline(library, dtype, n=8192, iters=10, reps=5):
    """The library's rate on one large square product: the matrix-product roofline.

    An `n x n x n` product keeps every unit of a GPU busy, so its rate is what
    this library can reach in `dtype` on this device (fractions of it are
    reported beside the training steps' achieved rate).
    """
    gemm = Gemm("square", n, n, n)
    floor = make_floor(library, [gemm], dtype)
    seconds = [floor.time(iters) for _ in range(reps)]
    return {
        "library": library,
        "dtype": dtype,
        "n": n,
        "seconds": summarize(seconds),
        "tflops": gemm.flops / statistics.median(seconds) / 1e12,
    }


def time_floor_repetition(floor, steps):
    """One repetition of the floor after a timed repetition of `steps` training steps.

    Returns the floor's seconds per step and the CPU cores the process used meanwhile.
    """
    cpu, start = cpu_seconds(), time.perf_counter()
    seconds = floor.time(max(2, steps // 2))
    return seconds, (cpu_seconds() - cpu) / (time.perf_counter() - start)


def step_record(*, runner, arch, precision, variant, floor_library, args, warmup_seconds,
                step_seconds, step_cpu, floor_seconds, floor_cpu, train_loss, test_loss, params):
    """The result row of one timed training step against its floor (what report.py reads).

    `step_seconds`/`floor_seconds`/`step_cpu`/`floor_cpu` hold one value per
    repetition, so step/floor ratios pair measurements taken under the same load.
    """
    input_dim, layer_sizes = parse_arch(arch)
    batch = args.batch_size
    flops = step_flops(input_dim, layer_sizes, batch)
    step_median = statistics.median(step_seconds)
    return {
        "backend": runner,
        "arch": arch,
        "precision": precision,
        "variant": variant,
        "batch_size": batch,
        "steps_per_rep": args.steps,
        "total_train_steps": args.warmup + args.steps * args.reps,
        "warmup_seconds": warmup_seconds,
        "step_seconds": summarize(step_seconds),
        "floor_seconds": summarize(floor_seconds),
        "floor_library": floor_library,
        "floor_dtype": FLOOR_DTYPE[precision],
        "ratio_step_over_floor": summarize([s / f for s, f in zip(step_seconds, floor_seconds)]),
        "samples_per_second": batch / step_median,
        "floor_samples_per_second": batch / statistics.median(floor_seconds),
        "gflops_per_step": flops / 1e9,
        "achieved_gflops": flops / step_median / 1e9,
        "cpu_cores_busy_during_steps": statistics.median(step_cpu),
        "cpu_cores_busy_during_floor": statistics.median(floor_cpu),
        "train_loss_last_rep": train_loss,
        "test_loss": test_loss,
        "params": params,
    }


def step_summary(r):
    """A step record in one progress line: time, throughput, ratio to the floor, cores busy."""
    return (f"{r['step_seconds']['median'] * 1e3:.1f} ms/step, {r['samples_per_second']:.0f} "
            f"samples/s, step/floor {r['ratio_step_over_floor']['median']:.2f}, cores busy "
            f"{r['cpu_cores_busy_during_steps']:.2f}")


def main(argv=None):
    """Time the floor alone with one library (used for NumPy, which has no Keras backend)."""
    from benchmarks._util import cpu_seconds, load_average, summarize, write_json

    parser = argparse.ArgumentParser(description="GEMM floor of a tied-autoencoder training step")
    parser.add_argument("--json", required=True)
    parser.add_argument("--library", default="numpy", choices=sorted(FLOORS))
    parser.add_argument("--archs", default="784-1000-1000-1000,784-500-250-100")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--iters", type=int, default=5, help="products per repetition")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    import numpy

    payload = {
        "backend": f"{args.library}-floor",
        "versions": {"numpy": numpy.__version__},
        "python": platform.python_version(),
        "load_average_start": load_average(),
        "results": [],
    }
    for arch in args.archs.split(","):
        input_dim, layer_sizes = parse_arch(arch)
        gemms = training_gemms(input_dim, layer_sizes, args.batch_size)
        for dtype in args.dtypes.split(","):
            floor = make_floor(args.library, gemms, dtype)
            times, busy = [], []
            for _ in range(args.reps):
                cpu, start = cpu_seconds(), time.perf_counter()
                times.append(floor.time(args.iters))
                busy.append((cpu_seconds() - cpu) / (time.perf_counter() - start))
            median = statistics.median(times)
            flops = step_flops(input_dim, layer_sizes, args.batch_size)
            payload["results"].append(
                {
                    "arch": arch,
                    "floor_library": args.library,
                    "floor_dtype": dtype,
                    "batch_size": args.batch_size,
                    "floor_seconds": summarize(times),
                    "floor_samples_per_second": args.batch_size / median,
                    "gflops_per_step": flops / 1e9,
                    "achieved_gflops": flops / median / 1e9,
                    "cpu_cores_busy_during_floor": statistics.median(busy),
                }
            )
            print(
                f"[floor {args.library}] {arch} {dtype}: {median * 1e3:.1f} ms, "
                f"{flops / median / 1e9:.1f} GFLOP/s",
                flush=True,
            )
    payload["load_average_end"] = load_average()
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
