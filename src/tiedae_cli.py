"""Launcher of the `tiedae` command.

Keras fixes its backend when it is first imported, and importing the `tiedae`
package imports Keras. So the backend is settled here, from `--backend`, else
`KERAS_BACKEND`, else JAX, before `tiedae` is imported.
"""

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


def main(argv=None):
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
    from tiedae.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
