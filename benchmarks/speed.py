"""Training-step speed of Keras autoencoders on one backend, against its GEMM floor.

Run as a child process, one per backend (Keras fixes its backend at import):

    KERAS_BACKEND=jax python -m benchmarks.speed --json out.json

For every architecture and precision it builds the variants (`tied` =
`DenseLayerAutoencoder`, `untied` = the same widths as six plain `Dense`
layers), compiles them with Adam and binary cross-entropy (sigmoid units, the
Vincent et al. recipe) and warms them up (compilation). Then, `reps` times:
one `fit` epoch of `steps` batches per variant (alternating their order), and
one repetition of the same step's matrix products alone (`gemm_floor`, on this
backend's own matmul). Ratios (step/floor, tied/untied) are taken within a
repetition, so they compare measurements made under the same machine load.
With `--loss-steps`, the tied model is also trained that many steps from the
same initial weights in every precision and its test reconstruction loss kept,
to compare `mixed_bfloat16` with `float32`.
"""

import argparse
import os
import platform
import time

from benchmarks._util import cpu_seconds, load_average, quiet_backends, summarize, write_json

quiet_backends()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.data import cycle_rows, load_fashion_mnist  # noqa: E402
from benchmarks.gemm_floor import (  # noqa: E402
    FLOOR_DTYPE,
    make_floor,
    matmul_roofline,
    parse_arch,
    step_record,
    time_floor_repetition,
    training_gemms,
)
from tiedae.layers import DenseLayerAutoencoder  # noqa: E402
from tiedae.pretraining import ReconstructionModel  # noqa: E402
from tiedae.pretraining.optimizers import make_optimizer  # noqa: E402
from tiedae.pretraining.stacked import training_loss, trains_on_logits  # noqa: E402

# `tied-sgd` is the tied model trained with plain SGD: the difference from `tied`
# (Adam) is the cost of Adam's element-wise update inside a real step.
# `tied-self-target` is the tied model as a `ReconstructionModel` fitted with
# `fit(x)`: the input is the target, so each batch is copied to the device once.
# `tied-pretraining` is what greedy pretraining runs (`StackedDenoisingAutoencoder`):
# the self-target model with the stacks' optimizer (on PyTorch, the fused Adam step),
# its output the reconstruction's logits and the loss on them where `trains_on_logits`.
OPTIMIZERS = {"tied": keras.optimizers.Adam, "untied": keras.optimizers.Adam,
              "tied-sgd": keras.optimizers.SGD, "tied-self-target": keras.optimizers.Adam,
              "tied-pretraining": lambda lr: make_optimizer("adam", lr, fused=True)}
TIED = ("tied", "tied-sgd", "tied-self-target", "tied-pretraining")
SELF_TARGET = ("tied-self-target", "tied-pretraining")
LOGITS = ("tied-pretraining",)
# Ratios recorded on the tied row, paired within each repetition with another
# variant's step time: {variant: (result key, ratio(tied step, its step))}.
PAIRED_WITH_TIED = {
    # < 1: the tied step is faster.
    "untied": ("tied_over_untied_step_time", lambda tied, other: tied / other),
    # < 1: copying each batch once instead of twice made the step faster.
    "tied-self-target": ("self_target_over_tied_step_time", lambda tied, other: other / tied),
    # Adam's share of the step: (Adam step - SGD step) / Adam step.
    "tied-sgd": ("adam_share_of_step", lambda tied, other: 1 - other / tied),
    # < 1: greedy pretraining's step is faster than the plain Keras model's.
    "tied-pretraining": ("pretraining_over_tied_step_time", lambda tied, other: other / tied),
}


def _targets(variant, x):
    """What `fit`/`evaluate` get as `y`: nothing for the self-target model."""
    return None if variant in SELF_TARGET else x


def build_model(variant, input_dim, layer_sizes):
    inputs = keras.Input(shape=(input_dim,))
    if variant in TIED:
        logits = variant in LOGITS and trains_on_logits("binary_crossentropy")
        output = "linear" if logits else "sigmoid"
        outputs = DenseLayerAutoencoder(layer_sizes, activation="sigmoid",
                                        output_activation=output)(inputs)
    elif variant == "untied":
        widths = list(layer_sizes) + list(reversed(layer_sizes[:-1])) + [input_dim]
        h = inputs
        for units in widths:
            h = keras.layers.Dense(units, activation="sigmoid")(h)
        outputs = h
    else:
        raise ValueError(f"unknown variant {variant!r}")
    model_class = ReconstructionModel if variant in SELF_TARGET else keras.Model
    return model_class(inputs, outputs, name=f"{variant}_autoencoder".replace("-", "_"))


class EpochTimer(keras.callbacks.Callback):
    """Wall time and CPU share of each epoch (excluding `fit`'s set-up)."""

    def __init__(self):
        super().__init__()
        self.seconds, self.cpu, self.losses = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._cpu = cpu_seconds()
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # float() waits for the last step (JAX dispatches asynchronously).
        self.losses.append(float(logs["loss"]))
        wall = time.perf_counter() - self._start
        self.seconds.append(wall)
        self.cpu.append((cpu_seconds() - self._cpu) / wall)


def _compiled_model(variant, input_dim, layer_sizes, precision, args):
    keras.config.set_dtype_policy(precision)
    keras.utils.set_random_seed(args.seed)  # the same initial weights in every precision
    try:
        model = build_model(variant, input_dim, layer_sizes)
    finally:
        keras.config.set_dtype_policy("float32")
    model.compile(
        optimizer=OPTIMIZERS[variant](1e-3),
        loss=training_loss("binary_crossentropy") if variant in LOGITS else "binary_crossentropy",
        jit_compile=args.jit_compile, steps_per_execution=args.steps_per_execution,
    )
    return model


def measure(backend, arch_text, precision, variants, x_train, x_test, args):
    """Time every variant and the floor in turn, `reps` times, under the same load.

    Each repetition runs one `fit` epoch of `steps` batches per variant (the
    order alternates between repetitions), then one repetition of the floor;
    ratios are taken within a repetition, so load changes between repetitions
    cancel out of them.
    """
    input_dim, layer_sizes = parse_arch(arch_text)
    batch = args.batch_size
    models = {v: _compiled_model(v, input_dim, layer_sizes, precision, args) for v in variants}
    floor = make_floor(backend, training_gemms(input_dim, layer_sizes, batch), FLOOR_DTYPE[precision])
    x = x_train[: args.steps * batch]
    warm = x_train[: args.warmup * batch]
    warmup_seconds = {}
    for v, model in models.items():
        start = time.perf_counter()
        model.fit(warm, _targets(v, warm), batch_size=batch, epochs=1, shuffle=False, verbose=0)
        warmup_seconds[v] = time.perf_counter() - start
    timers = {v: EpochTimer() for v in variants}
    floor_seconds, floor_cpu = [], []
    for rep in range(args.reps):
        for v in variants if rep % 2 == 0 else list(reversed(variants)):
            models[v].fit(x, _targets(v, x), batch_size=batch, epochs=1, shuffle=False,
                          verbose=0, callbacks=[timers[v]])
        seconds, cores = time_floor_repetition(floor, args.steps)
        floor_seconds.append(seconds)
        floor_cpu.append(cores)
    steps = {v: [t / args.steps for t in timers[v].seconds] for v in variants}
    results = []
    for v in variants:
        result = step_record(
            runner=backend, arch=arch_text, precision=precision, variant=v,
            floor_library=backend, args=args, warmup_seconds=warmup_seconds[v],
            step_seconds=steps[v], step_cpu=timers[v].cpu,
            floor_seconds=floor_seconds, floor_cpu=floor_cpu,
            train_loss=timers[v].losses[-1],
            test_loss=float(models[v].evaluate(x_test, _targets(v, x_test), batch_size=1000,
                                               verbose=0)),
            params=int(models[v].count_params()),
        )
        if v == "tied":
            for other, (key, ratio) in PAIRED_WITH_TIED.items():
                if other in variants:
                    result[key] = summarize(
                        [ratio(tied, o) for tied, o in zip(steps["tied"], steps[other])])
        results.append(result)
    keras.backend.clear_session()
    return results


def loss_check(arch_text, precision, steps, x_train, x_test, args):
    """Test reconstruction loss after `steps` steps from the same initial weights.

    One pass over `steps` distinct batches in a fixed order, so `float32` and
    `mixed_bfloat16` differ only in the precision of the computation.
    """
    input_dim, layer_sizes = parse_arch(arch_text)
    model = _compiled_model("tied", input_dim, layer_sizes, precision, args)
    x = x_train[: steps * args.batch_size]
    start = time.perf_counter()
    history = model.fit(x, x, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    test_loss = float(model.evaluate(x_test, x_test, batch_size=1000, verbose=0))
    keras.backend.clear_session()
    return {
        "arch": arch_text,
        "precision": precision,
        "variant": "tied",
        "steps": steps,
        "train_loss": float(history.history["loss"][-1]),
        "test_loss": test_loss,
        "seconds": seconds,
    }


def backend_versions(backend):
    """Library versions, the device computed on and how float32 products are done."""
    versions = {"keras": keras.__version__, "numpy": np.__version__, "gpu": gpu_name(backend)}
    if backend == "jax":
        import jax

        versions["jax"] = jax.__version__
        versions["jax_devices"] = [str(d) for d in jax.devices()]
        # None: XLA's default, which lets GPUs use TF32 for float32 products.
        versions["float32_matmul"] = str(jax.config.jax_default_matmul_precision)
    elif backend == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
        versions["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        versions["onednn_opts"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")
        versions["float32_matmul"] = (
            "tf32 allowed" if tf.config.experimental.tensor_float_32_execution_enabled()
            else "float32")
    elif backend == "torch":
        import torch

        versions["torch"] = torch.__version__
        versions["torch_threads"] = torch.get_num_threads()
        versions["float32_matmul"] = torch.get_float32_matmul_precision()
    return versions


def gpu_name(backend):
    """The GPU this backend computes on, or None on a machine without one."""
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return gpus[0].device_kind if gpus else None
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--archs", default="784-1000-1000-1000,784-500-250-100")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--variants", default="tied,untied,tied-pretraining",
                        help="comma-separated: tied, untied, tied-sgd (tied with plain SGD), "
                        "tied-self-target (tied, fitted with fit(x): the input is the target), "
                        "tied-pretraining (that model with the optimizer of greedy pretraining)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed repetition")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compilation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--loss-steps",
        type=int,
        default=0,
        help="if > 0, also train the first architecture (tied) for this many steps in "
        "every precision and record the test loss",
    )
    parser.add_argument("--steps-per-execution", type=int, default=1,
                        help="passed to Model.compile: training steps per compiled call")
    parser.add_argument("--roofline", type=int, default=0, metavar="N",
                        help="if > 0, also time one N x N x N matmul per precision "
                        "(the device's matrix-product roofline)")
    parser.add_argument("--require-gpu", action="store_true",
                        help="stop with an error unless the backend computes on a GPU")
    parser.add_argument(
        "--jit-compile",
        default="auto",
        type=lambda v: {"auto": "auto", "true": True, "false": False}[v.lower()],
        help="passed to Model.compile: auto (Keras's choice), true or false",
    )
    args = parser.parse_args(argv)

    backend = keras.backend.backend()
    versions = backend_versions(backend)
    if args.require_gpu and versions["gpu"] is None:
        raise SystemExit(
            f"--require-gpu: KERAS_BACKEND={backend} sees no GPU on this machine. Run the GPU "
            "benchmark where a GPU and this backend's GPU build are installed, or drop the flag."
        )
    (x_train, _), (x_test, _) = load_fashion_mnist()
    needed = max(args.steps, args.warmup, args.loss_steps) * args.batch_size
    rows_repeated = needed > len(x_train)
    x_train = cycle_rows(x_train, needed)
    payload = {
        "backend": backend,
        "jit_compile": args.jit_compile,
        "steps_per_execution": args.steps_per_execution,
        "rows_repeated": rows_repeated,
        "versions": versions,
        "python": platform.python_version(),
        "load_average_start": load_average(),
        "results": [],
        "loss_check": [],
        "roofline": [],
    }
    if args.roofline > 0:
        for precision in args.precisions.split(","):
            r = matmul_roofline(backend, FLOOR_DTYPE[precision], n=args.roofline)
            print(f"[speed {backend}] roofline {r['n']}^3 {r['dtype']}: {r['tflops']:.1f} TFLOP/s",
                  flush=True)
            payload["roofline"].append(r)
    variants = args.variants.split(",")
    for arch in args.archs.split(","):
        for precision in args.precisions.split(","):
            for r in measure(backend, arch, precision, variants, x_train, x_test, args):
                print(
                    f"[speed {backend}] {arch} {precision} {r['variant']}: "
                    f"{r['step_seconds']['median'] * 1e3:.1f} ms/step, "
                    f"{r['samples_per_second']:.0f} samples/s, "
                    f"step/floor {r['ratio_step_over_floor']['median']:.2f}, "
                    f"cores busy {r['cpu_cores_busy_during_steps']:.2f}"
                    + (f", tied/untied step time {r['tied_over_untied_step_time']['median']:.2f}"
                       if "tied_over_untied_step_time" in r else ""),
                    flush=True,
                )
                payload["results"].append(r)
            write_json(args.json, payload)  # keep partial results if a later one fails
    if args.loss_steps > 0:
        arch = args.archs.split(",")[0]
        for precision in args.precisions.split(","):
            r = loss_check(arch, precision, args.loss_steps, x_train, x_test, args)
            print(
                f"[speed {backend}] loss check {arch} {precision}: {r['steps']} steps, "
                f"test loss {r['test_loss']:.5f} ({r['seconds']:.0f} s)",
                flush=True,
            )
            payload["loss_check"].append(r)
            write_json(args.json, payload)
    payload["load_average_end"] = load_average()
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
