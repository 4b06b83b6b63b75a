import os
import subprocess
import sys

import pytest

import tiedae_cli


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--backend", "torch", "demo"], "torch"),
        (["--backend=tensorflow", "demo"], "tensorflow"),
        (["demo", "--run-dir", "x"], None),
    ],
)
def test_requested_backend(argv, expected):
    assert tiedae_cli.requested_backend(argv) == expected


PROBE = (
    "import sys, tiedae_cli\n"
    "code = tiedae_cli.main(sys.argv[1:])\n"
    "import keras\n"
    "print('BACKEND', keras.backend.backend(), code)\n"
)


def _run(args, env_backend=None):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if env_backend:
        env["KERAS_BACKEND"] = env_backend
    result = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=300)
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("BACKEND")]
    return line[-1].split()[1:], result.stderr


def test_command_defaults_to_jax_and_honours_the_environment_and_the_flag(tmp_path):
    missing = str(tmp_path / "missing")
    # A user error keeps the subprocess short; the backend is chosen before it.
    (backend, code), err = _run(["embed", "x.npy", "--run-dir", missing])
    assert (backend, code) == ("jax", "2") and "not a tiedae run directory" in err
    (backend, _), _ = _run(["embed", "x.npy", "--run-dir", missing], env_backend="torch")
    assert backend == "torch"
    (backend, _), _ = _run(["--backend", "torch", "embed", "x.npy", "--run-dir", missing], env_backend="jax")
    assert backend == "torch"


@pytest.mark.parametrize("value", ["bogus", "numpy"])
def test_an_unknown_keras_backend_in_the_environment_is_one_clean_line(value):
    env = dict(os.environ, KERAS_BACKEND=value)
    result = subprocess.run([sys.executable, "-c", "import sys, tiedae_cli; sys.exit(tiedae_cli.main(['--help']))"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr == (f"tiedae: error: KERAS_BACKEND={value!r} is not a backend of tiedae; set it to one "
                             "of jax, tensorflow, torch, unset it, or pass --backend.\n")
