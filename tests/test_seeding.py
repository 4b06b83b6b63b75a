"""`tiedae.seeding.set_random_seed`: Keras's seeding, without importing TensorFlow for it."""

import json
import os
import random
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras.src.utils.rng_utils import get_random_seed

from tests.conftest import to_numpy
from tiedae.seeding import set_random_seed


def _draws():
    draws = {
        "python": random.random(),
        "numpy": float(np.random.rand()),
        "keras": to_numpy(keras.random.uniform((4,))).tolist(),  # the global seed generator
    }
    if keras.backend.backend() == "torch":
        import torch

        draws["torch"] = torch.rand(3).tolist()
    return draws


def test_it_seeds_every_source_as_keras_does():
    keras.utils.set_random_seed(123)
    expected = _draws()
    set_random_seed(0)
    other = _draws()
    set_random_seed(123)
    assert get_random_seed() == 123  # what Keras's own code reads back
    assert _draws() == expected
    assert other != expected


# A fresh process: whether a greedy pretraining and a classifier's fit load TensorFlow or
# anndata.
PROBE = (
    "import json, sys\n"
    "import numpy as np\n"
    "from tiedae.pretraining import StackedDenoisingAutoencoder\n"
    "x = np.random.default_rng(0).random((64, 12)).astype('float32')\n"
    "StackedDenoisingAutoencoder([6, 3], epochs=1, seed=0, verbose=0).pretrain(x)\n"
    "from tiedae import PretrainedMLPClassifier\n"
    "PretrainedMLPClassifier([6], pretrain_epochs=1, epochs=1).fit(x, np.arange(64) % 2)\n"
    "print('MODULES', json.dumps({m: m in sys.modules for m in ('tensorflow', 'anndata')}))\n"
)


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="TensorFlow is this backend")
def test_fitting_on_jax_or_torch_loads_neither_tensorflow_nor_anndata():
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                            text=True, timeout=600)
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("MODULES ")]
    assert line, result.stderr
    assert json.loads(line[-1][len("MODULES "):]) == {"tensorflow": False, "anndata": False}
