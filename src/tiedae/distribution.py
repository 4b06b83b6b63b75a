"""Data-parallel training through Keras's own distribution API.

`data_parallel=True` (in `StackedDenoisingAutoencoder`, `tiedae.sc.fit` and
the `--data-parallel` flag of the command line) trains under a
`keras.distribution.DataParallel` over the available devices: the variables
are replicated, every batch is split across the devices along its first axis,
and the gradients are averaged, so one step computes the same update as on
one device (up to the order of floating-point sums). Keras 3 implements this
on the JAX backend only; on TensorFlow and PyTorch `check_data_parallel`
raises a `ValueError` that says what those backends offer instead (see
docs/single_cell.md, which also covers several hosts).
"""

import contextlib
import numbers

import keras

UNSUPPORTED = {
    "tensorflow": (
        "Keras 3's DataParallel is implemented for the JAX backend only; its TensorFlow "
        "version is an unfinished prototype. With TensorFlow, build and train inside a "
        "tf.distribute strategy instead (e.g. `with tf.distribute.MirroredStrategy().scope(): "
        "sda.pretrain(x)`), or run with KERAS_BACKEND=jax."
    ),
    "torch": (
        "Keras 3 has no distribution support for the PyTorch backend; run with "
        "KERAS_BACKEND=jax, or wrap the Keras model in torch.nn.parallel."
        "DistributedDataParallel in a training loop of your own."
    ),
}


def check_data_parallel(value, name="data_parallel", check_backend=True):
    """Validate a data-parallel setting; return it normalised.

    Args:
        value: `False`/`None` (one device), `True` (every device Keras lists:
            the GPUs or TPUs, else the CPU devices), a positive integer (the
            first that many devices), or a list of device names such as
            `["gpu:0", "gpu:1"]`.
        name: The argument's name, for error messages.
        check_backend: Also refuse a truthy value on a backend other than JAX.
            Constructors pass `False` (so an object saved under JAX loads
            anywhere); training checks it.

    Returns:
        `False`, `True`, an `int` or a list of strings.

    Raises:
        ValueError: a bad value, or a backend other than JAX (the message says
            what that backend supports).
    """
    if value is None or value is False:
        return False
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, str) for v in value):
            raise ValueError(
                f"`{name}` as a list must name devices, e.g. ['gpu:0', 'gpu:1']; received {value!r}."
            )
        value = list(value)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, numbers.Integral) and value > 0:
        value = int(value)
    else:
        raise ValueError(
            f"`{name}` must be False, True, a positive number of devices or a list of device "
            f"names; received {value!r}."
        )
    backend = keras.backend.backend()
    if check_backend and backend in UNSUPPORTED:
        raise ValueError(f"`{name}` is not available on the {backend} backend. {UNSUPPORTED[backend]}")
    return value


def data_parallel_devices(value):
    """The device names a (validated, truthy) `data_parallel` setting stands for."""
    if isinstance(value, list):
        known = set(keras.distribution.list_devices()) | _all_device_names()
        missing = [d for d in value if d not in known]
        if missing:
            raise ValueError(
                f"unknown device(s) {missing}; available: {keras.distribution.list_devices()}."
            )
        return value
    devices = keras.distribution.list_devices()
    if value is True:
        return devices
    if value > len(devices):
        raise ValueError(
            f"`data_parallel={value}` asks for {value} devices but only {len(devices)} are "
            f"available ({', '.join(devices)}). On CPU, XLA_FLAGS="
            "--xla_force_host_platform_device_count=N creates N virtual devices."
        )
    return devices[:value]


def _all_device_names():
    names = set()
    for kind in ("cpu", "gpu", "tpu"):
        try:
            names.update(keras.distribution.list_devices(kind))
        except Exception:  # no such platform
            pass
    return names


def make_distribution(value):
    """A `keras.distribution.DataParallel` for a `data_parallel` setting, or `None`.

    With several processes (after `keras.distribution.initialize`), the
    dataset is not sharded automatically: tiedae's batches read only this
    process's share of the rows (`process_shard`).
    """
    value = check_data_parallel(value)
    if not value:
        return None
    devices = data_parallel_devices(value)
    return keras.distribution.DataParallel(
        devices=devices, auto_shard_dataset=num_processes() == 1
    )


@contextlib.contextmanager
def data_parallel_scope(value):
    """Run the enclosed code under `make_distribution(value)`; no-op for `False`.

    An enclosing distribution (the caller's own `keras.distribution` scope,
    or an outer `data_parallel_scope`) is left in place.
    """
    active = keras.distribution.distribution()
    distribution = None if active is not None else make_distribution(value)
    if distribution is None:
        yield active
        return
    with distribution.scope():
        yield distribution


def batch_multiple():
    """How many parts each batch is split into by the active distribution (1 without one)."""
    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    mesh = distribution.device_mesh
    axis = list(mesh.axis_names).index(distribution.batch_dim_name)
    return int(mesh.shape[axis]) // num_processes()


def num_processes():
    """Number of processes (hosts) taking part, 1 unless `keras.distribution.initialize` ran."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return int(jax.process_count())


def process_shard():
    """`(process index, process count)` for multi-host training, or `None` on one host."""
    count = num_processes()
    if count == 1:
        return None
    import jax

    return int(jax.process_index()), count
