"""Data-parallel training: 2 virtual CPU devices under JAX match one device; clear errors elsewhere."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tiedae.distribution import check_data_parallel, data_parallel_scope
from tiedae.pretraining import StackedDenoisingAutoencoder

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh JAX process with 2 virtual CPU devices: one plain run, one
# data-parallel run, same seed; prints their weights and what the variables
# were sharded over.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["KERAS_BACKEND"] = "jax"
    import keras, numpy as np
    from sklearn.datasets import load_digits
    from tiedae.pretraining import StackedDenoisingAutoencoder

    x = (load_digits().data[:240] / 16.0).astype("float32")  # 240 = 6 batches of 40
    results = {"devices": keras.distribution.list_devices()}
    for name, dp in (("single", False), ("parallel", True)):
        sda = StackedDenoisingAutoencoder(
            [12, 6], epochs=2, batch_size=40, finetune_epochs=1, seed=3, verbose=0,
            corruption_level=[0.2, 0.3], data_parallel=dp,
        )
        sda.pretrain(x, validation_data=x[:80])
        kernel = sda.autoencoder_.kernels[0].value
        results[name] = {
            "weights": [keras.ops.convert_to_numpy(w).ravel().tolist() for w in sda.autoencoder_.weights],
            "losses": [h["loss"] for h in sda.history_] + [sda.finetune_history_["loss"]],
            "kernel_devices": len(kernel.sharding.device_set),
            "codes": sda.transform(x[:5]).tolist(),
        }
    print("RESULT " + json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def two_device_run():
    if BACKEND != "jax":
        # The subprocess always runs JAX; running it once per suite (in the JAX
        # session) is enough and saves a minute on the other two.
        pytest.skip("runs in the KERAS_BACKEND=jax session (DataParallel is JAX-only)")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(ROOT, "src"), ROOT] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    try:
        import jax  # noqa: F401
    except ImportError:
        pytest.skip("JAX is not installed; data-parallel training needs it")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_two_devices_match_one_device(two_device_run):
    result = two_device_run
    assert result["devices"] == ["cpu:0", "cpu:1"]
    single, parallel = result["single"], result["parallel"]
    assert single["kernel_devices"] == 1
    assert parallel["kernel_devices"] == 2  # the variables really were replicated
    for a, b in zip(single["weights"], parallel["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), atol=1e-5)
    for a, b in zip(single["losses"], parallel["losses"]):
        np.testing.assert_allclose(b, a, rtol=1e-5)
    np.testing.assert_allclose(parallel["codes"], single["codes"], atol=1e-5)
    # Training did move the weights (the comparison is not between two initialisations).
    assert single["losses"][0][1] < single["losses"][0][0]


def test_check_data_parallel_values():
    assert check_data_parallel(False) is False and check_data_parallel(None) is False
    for bad in (0, -2, 1.5, "all", [], [1]):
        with pytest.raises(ValueError, match="data_parallel"):
            check_data_parallel(bad, check_backend=False)
    assert check_data_parallel(2, check_backend=False) == 2
    assert check_data_parallel(("cpu:0",), check_backend=False) == ["cpu:0"]
    with data_parallel_scope(False) as distribution:
        assert distribution is None and keras.distribution.distribution() is None


@pytest.mark.skipif(BACKEND == "jax", reason="the JAX backend supports DataParallel")
def test_other_backends_say_what_they_support(digits_small):
    with pytest.raises(ValueError, match=f"not available on the {BACKEND} backend.*KERAS_BACKEND=jax"):
        check_data_parallel(True)
    # The constructor accepts it (so a model saved under JAX loads here); training refuses.
    sda = StackedDenoisingAutoencoder([4], epochs=1, verbose=0, data_parallel=True)
    with pytest.raises(ValueError, match="tf.distribute|DistributedDataParallel"):
        sda.pretrain(digits_small)


@pytest.mark.skipif(BACKEND != "jax", reason="device lists are JAX's here")
def test_jax_asking_for_more_devices_than_exist(digits_small):
    n = len(keras.distribution.list_devices())
    sda = StackedDenoisingAutoencoder([4], epochs=1, verbose=0, data_parallel=n + 1)
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        sda.pretrain(digits_small)


@pytest.fixture
def digits_small(rng):
    return rng.random((20, 6)).astype(np.float32)
