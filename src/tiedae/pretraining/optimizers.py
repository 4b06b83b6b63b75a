"""Fresh Keras optimizers and initializers from the JSON-friendly descriptions the stacks store.

A description is a name ("adam", "glorot_uniform") or a dict
`{"class_name": "SGD", "config": {"momentum": 0.9}}` holding further
constructor arguments, so that a stack's `get_config()` stays plain JSON.
"""

import copy
import inspect

import keras

OPTIMIZER_EXAMPLE = "'adam', 'sgd' or {'class_name': 'SGD', 'config': {'momentum': 0.9}}"
INITIALIZER_EXAMPLE = (
    "'glorot_uniform' or {'class_name': 'VarianceScaling', 'config': {'scale': 0.33}}"
)


def check_spec(spec, name, example):
    """Return a copy of `spec` (a name or a `{"class_name", "config"}` dict) or raise `ValueError`."""
    if isinstance(spec, str):
        return spec
    if (
        isinstance(spec, dict)
        and isinstance(spec.get("class_name"), str)
        and isinstance(spec.get("config", {}), dict)
        and set(spec) <= {"class_name", "config"}
    ):
        return copy.deepcopy(spec)
    raise ValueError(f"`{name}` must be a name or a dict, e.g. {example}; received {spec!r}.")


def _from_spec(description, name, example, get, **overrides):
    spec = check_spec(description, name, example)
    spec = spec if isinstance(spec, dict) else {"class_name": spec}
    config = {**spec.get("config", {}), **overrides}
    try:
        return get({"class_name": spec["class_name"], "config": config})
    except (ValueError, TypeError, KeyError) as exc:  # KeyError: a required config entry
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, KeyError):
            reason = f"its config needs {reason}"
        raise ValueError(
            f"`{name}` {description!r} does not describe a Keras object that takes "
            f"{sorted(config)} ({reason}); use e.g. {example}."
        ) from None


def check_optimizer(optimizer):
    return check_spec(optimizer, "optimizer", OPTIMIZER_EXAMPLE)


def make_optimizer(optimizer, learning_rate, name="optimizer", fused=False):
    """A new Keras optimizer described by `optimizer`, at `learning_rate`.

    Args:
        optimizer: A Keras optimizer name ("adam", "sgd", ...) or a dict
            `{"class_name": "SGD", "config": {"momentum": 0.9}}`.
        learning_rate: Positive float; it replaces any `learning_rate` in the
            config.
        name: The parameter `optimizer` came from, for error messages.
        fused: On the PyTorch backend, a plain Adam becomes `FusedAdam` (the
            same update in one pass); for models that are trained, not saved
            with their optimizer (the stacks' greedy and fine-tuning models).
    """
    made = _from_spec(optimizer, name, OPTIMIZER_EXAMPLE, keras.optimizers.get,
                      learning_rate=float(learning_rate))
    if fused and keras.backend.backend() == "torch":
        from tiedae.pretraining.fused_adam import fused_like, plain_adam

        if plain_adam(made):
            return fused_like(made)
    return made


def make_initializer(initializer, seed):
    """A new Keras initializer described by `initializer`, seeded with `seed` when it draws
    random numbers (deterministic ones such as "identity" or "zeros" take no seed)."""
    spec = check_spec(initializer, "kernel_initializer", INITIALIZER_EXAMPLE)
    try:
        return _from_spec(spec, "kernel_initializer", INITIALIZER_EXAMPLE, keras.initializers.get,
                          seed=int(seed))
    except ValueError as seeded_error:
        # Without a seed only if that is what failed. Not probed beforehand: an unseeded
        # random initializer draws its seed from Python's global generator, a side effect.
        try:
            unseeded = _from_spec(spec, "kernel_initializer", INITIALIZER_EXAMPLE,
                                  keras.initializers.get)
        except ValueError:
            raise seeded_error from None
        if "seed" in inspect.signature(type(unseeded)).parameters:
            raise seeded_error from None
        return unseeded
