"""Launcher of the `tiedae` command.

Keras fixes its backend when it is first imported, and importing the `tiedae`
package imports Keras. So the backend is settled here, from `--backend`, else
`KERAS_BACKEND`, else JAX, before `tiedae` is imported.

Two more things keep the command quick and quiet:
- the package's `__init__` (Keras, every layer: seconds) runs only once the
  arguments are parsed and checked, so `--help` and a mistyped option answer
  at once;
- on the JAX and PyTorch backends TensorFlow is kept out of the process. Keras
  imports it whenever it is installed, only to ask whether an object it
  serializes is a `tf.TensorShape` or to seed `tf.data` (about 2 s, and
  TensorFlow's start-up lines on stderr); the run uses neither.
"""

import importlib.util
import os
import sys

BACKENDS = ("jax", "tensorflow", "torch")
DEFAULT_BACKEND = "jax"
EXIT_USER_ERROR = 2


def requested_backend(argv):
    """The value of `--backend X` / `--backend=X` in argv, if any."""
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


def keep_tensorflow_out():
    """Make TensorFlow look not installed, as Keras on JAX or PyTorch supports, unless already imported."""
    if "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None  # `import tensorflow` now raises ModuleNotFoundError


def defer_package_init():
    """Put `tiedae` in sys.modules without running its `__init__`; return the function that runs it.

    Its subpackages (the parser, the option checks) import as usual meanwhile.
    None when `tiedae` is already imported.
    """
    if "tiedae" in sys.modules:
        return None
    spec = importlib.util.find_spec("tiedae")
    package = importlib.util.module_from_spec(spec)
    sys.modules["tiedae"] = package
    done = []

    def load():
        if not done:
            done.append(True)
            spec.loader.exec_module(package)

    return load


def main(argv=None):
    in_process = argv is not None
    argv = sys.argv[1:] if argv is None else list(argv)
    requested = requested_backend(argv)
    backend = requested or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    if backend in BACKENDS:
        os.environ["KERAS_BACKEND"] = backend
    elif requested is None:  # Keras would fail on import, with a traceback
        print(f"tiedae: error: KERAS_BACKEND={backend!r} is not a backend of tiedae; set it to "
              f"one of {', '.join(BACKENDS)}, unset it, or pass --backend.", file=sys.stderr)
        return EXIT_USER_ERROR
    # Anything else comes from --backend: the parser reports it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend != "tensorflow" and "keras" not in sys.modules:  # a process of its own, not a host's
        keep_tensorflow_out()
    load_package = defer_package_init()
    from tiedae.cli import main as cli_main

    try:
        return cli_main(argv, load_package=load_package)
    finally:
        if load_package is not None and in_process:
            load_package()  # a caller that goes on gets the whole package (the script just exits)


if __name__ == "__main__":
    sys.exit(main())
