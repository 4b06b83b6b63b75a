"""Launcher of the `tiedae` command.

Keras fixes its backend when it is first imported, and importing the `tiedae`
package imports Keras. So the backend is settled here, from `--backend`, else
`KERAS_BACKEND`, else JAX, before `tiedae` is imported.
"""

import os
import sys

DEFAULT_BACKEND = "jax"


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
    backend = requested_backend(argv) or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    if backend in ("jax", "tensorflow", "torch"):  # anything else: the parser reports it
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tiedae.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
