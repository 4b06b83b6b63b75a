"""The `tiedae` script: no TensorFlow on the other backends, no Keras before the arguments are checked."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tiedae import runs

# The script's own entry point (argv from sys.argv), then what the process imported.
WRAPPER = (
    "import json, sys, tiedae_cli\n"
    "sys.argv = ['tiedae', *sys.argv[1:]]\n"
    "try:\n"
    "    code = tiedae_cli.main()\n"
    "except SystemExit as exit:\n"
    "    code = exit.code\n"
    "print('MODULES', json.dumps({'code': code, 'tensorflow': sys.modules.get('tensorflow') is not None,\n"
    "      'keras': 'keras' in sys.modules, 'jax': 'jax' in sys.modules, 'torch': 'torch' in sys.modules}))\n"
)
TENSORFLOW_LINES = ("tensorflow", "onednn", "absl", "cpu_feature_guard")


def _script(args, backend="jax"):
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user has: nothing set
    result = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, args)], env=env,
                            capture_output=True, text=True, timeout=600)
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("MODULES ")]
    assert line, result.stderr
    return json.loads(line[-1][len("MODULES "):]), result.stdout, result.stderr


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="TensorFlow is this backend")
def test_a_run_on_jax_or_torch_neither_imports_nor_hears_from_tensorflow(tmp_path):
    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((60, 10)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.arange(60) % 2)
    run_dir = tmp_path / "run"
    modules, out, err = _script(["pretrain", tmp_path / "x.npy", "--run-dir", run_dir, "--layers", "4",
                                 "--epochs", "1", "--quiet"], backend)
    assert modules["code"] == 0, err
    assert (run_dir / runs.PRETRAINED_MODEL).is_file()  # Keras's saving ran
    assert modules["keras"] and modules[backend] and not modules["tensorflow"]
    assert not [ln for ln in err.splitlines() if any(word in ln.lower() for word in TENSORFLOW_LINES)], err
    assert json.loads((run_dir / runs.METRICS).read_text())["pretrain"]["backend"] == backend

    modules, out, err = _script(["evaluate", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
                                 "--run-dir", run_dir], backend)
    assert modules["code"] == 0 and not modules["tensorflow"], err
    assert err == ""


@pytest.mark.parametrize(
    "args, code",
    [(["--help"], 0), (["pretrain", "--help"], 0), (["finetune", "x.npy", "--run-dir", "r", "--epochs", "0"], 2),
     (["pretrain", "x.npy", "--run-dir", "r", "--layers", "0"], 2),
     (["pretrain", "x.npy", "--run-dir", "r", "--target-sum", "5"], 2)],
)
def test_help_and_bad_arguments_are_answered_before_keras_loads(args, code):
    modules, out, err = _script(args)
    assert modules["code"] == code, err
    assert not (modules["keras"] or modules["jax"] or modules["tensorflow"]), modules
    assert ("usage: tiedae" in out) if code == 0 else err.count("\n") >= 1
