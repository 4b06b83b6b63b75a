"""Seeding a run's random number sources without importing TensorFlow to do it.

`keras.utils.set_random_seed` seeds Python, NumPy, Keras's global seed
generator, PyTorch on the PyTorch backend, and TensorFlow whenever TensorFlow
is installed, importing it on the JAX and PyTorch backends too (for `tf.data`
pipelines, which this library does not use there). On a 2-core Xeon that
import took 3.3 s and 696 MiB of resident memory: in a JAX or PyTorch
`pretrain`, most of the 450 MiB jump in memory at the first training step.
"""

import random
import sys

import keras
import numpy as np


def set_random_seed(seed):
    """Seed Python, NumPy, Keras (and PyTorch or TensorFlow where they run) with `seed`.

    The same seeding as `keras.utils.set_random_seed`, except that
    TensorFlow is seeded only when it is the backend or is already imported,
    so the JAX and PyTorch backends never load it for this.

    Args:
        seed: A non-negative integer.
    """
    seed = int(seed)
    if keras.backend.backend() == "tensorflow" or sys.modules.get("tensorflow") is not None:
        keras.utils.set_random_seed(seed)
        return
    # What keras.utils.set_random_seed does besides TensorFlow (Keras 3.15).
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
