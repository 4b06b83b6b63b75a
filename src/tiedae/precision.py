"""The precision training runs in: what the machine's bfloat16 support is, and what `"auto"` picks.

`precision` (the stacks' argument, the CLI's `--precision`) takes:

- `"float32"`: float32 variables and arithmetic;
- `"bfloat16"`: Keras's `mixed_bfloat16` policy, float32 variables (the
  optimizer updates them in float32) and bfloat16 matrix products and
  activations; the losses are computed in float32;
- `"auto"`: bfloat16 where the backend runs its products on bfloat16
  hardware, else float32. That is a GPU with bfloat16 tensor cores (NVIDIA
  compute capability 8.0 or newer) on any backend, and a CPU with Intel AMX
  or AVX512-BF16 under the PyTorch or TensorFlow backend (oneDNN's bfloat16
  kernels). JAX's CPU compiler (XLA) uses neither for its products, so on a
  CPU JAX stays in float32: measured on a 2-core AVX512-BF16 EPYC, a
  256x1000x1000 product ran at 154 GFLOP/s in bfloat16 and 156 in float32 on
  JAX, 406 and 174 on PyTorch.

The environment variable `TIEDAE_BF16_ENGINE=none` makes `"auto"` see no
engine (float32 everywhere), e.g. to compare runs across machines.
"""

import os

# Keras loads inside the functions: the CLI reads PRECISIONS before any backend starts.

PRECISIONS = ("auto", "float32", "bfloat16")  # and None: Keras's global dtype policy
POLICY = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
BF16_ENGINE_VARIABLE = "TIEDAE_BF16_ENGINE"


def cpu_bf16_support(cpuinfo="/proc/cpuinfo"):
    """`"amx"`, `"avx512_bf16"` or `"none"`: the CPU's bfloat16 instructions (Linux flags)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "none"
    if "amx_bf16" in flags:
        return "amx"
    return "avx512_bf16" if "avx512_bf16" in flags else "none"


def gpu_bf16_support(backend=None):
    """The name of the backend's first GPU when it has bfloat16 tensor cores, else None."""
    import keras

    backend = backend or keras.backend.backend()
    try:
        if backend == "torch":
            import torch

            if torch.cuda.is_available() and torch.cuda.get_device_capability(0) >= (8, 0):
                return torch.cuda.get_device_name(0)
        elif backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            capability = getattr(gpus[0], "compute_capability", "0") if gpus else "0"
            if gpus and float(capability) >= 8.0:
                return gpus[0].device_kind
        elif backend == "tensorflow":
            import tensorflow as tf

            for gpu in tf.config.list_physical_devices("GPU"):
                details = tf.config.experimental.get_device_details(gpu)
                if details.get("compute_capability", (0, 0)) >= (8, 0):
                    return details.get("device_name", gpu.name)
    except Exception:  # a broken GPU runtime is no engine; training falls back to float32
        return None
    return None


def bf16_engine(backend=None):
    """The bfloat16 hardware the backend would run its products on here, as words, or None."""
    if os.environ.get(BF16_ENGINE_VARIABLE, "").lower() == "none":
        return None
    import keras

    backend = backend or keras.backend.backend()
    gpu = gpu_bf16_support(backend)
    if gpu:
        return f"GPU {gpu}"
    cpu = cpu_bf16_support()
    if backend in ("torch", "tensorflow") and cpu != "none":
        return f"CPU {'AMX' if cpu == 'amx' else 'AVX512-BF16'} (oneDNN)"
    return None


def check_precision(precision, name="precision"):
    """The validated `precision` value (one of `PRECISIONS`, or None)."""
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, PRECISIONS))}; received {precision!r}."
        )
    return precision


def resolve_precision(precision, backend=None):
    """`"float32"` or `"bfloat16"`: what `precision` means on this machine and backend (None
    stays None: the layers follow Keras's global dtype policy). Refuses bfloat16 where the
    backend cannot run it."""
    precision = check_precision(precision)
    if precision == "auto":
        return "bfloat16" if bf16_engine(backend) else "float32"
    if precision == "bfloat16":
        _check_bf16_runs(backend)
    return precision


def _check_bf16_runs(backend):
    import keras

    backend = backend or keras.backend.backend()
    try:
        ones = keras.ops.ones((2, 2), dtype="bfloat16")
        keras.ops.convert_to_numpy(keras.ops.matmul(ones, ones))
    except Exception as err:
        raise ValueError(
            f"precision='bfloat16' cannot run on the {backend} backend here "
            f"({type(err).__name__}); {describe_support(backend)}. Use precision='float32'."
        ) from None


def describe_support(backend=None):
    """One line on what this machine offers for bfloat16 and what `"auto"` picks."""
    import keras

    backend = backend or keras.backend.backend()
    engine = bf16_engine(backend)
    cpu = {"amx": "AMX and AVX512-BF16", "avx512_bf16": "AVX512-BF16 (no AMX)",
           "none": "no bfloat16 instructions"}[cpu_bf16_support()]
    return (f"CPU: {cpu}; backend {backend}: "
            + (f"bfloat16 on {engine}, precision='auto' picks bfloat16"
               if engine else "no bfloat16 hardware it uses, precision='auto' picks float32"))

