"""Shared machinery of the input-corruption layers (Vincent et al. 2010, §3.3)."""

import keras
from keras import ops

from tiedae._validation import check_seed


class CorruptionLayer(keras.layers.Layer):
    """Base class: corrupts its input when `training=True`, passes it through otherwise.

    A `keras.random.SeedGenerator` owns the random state, so the noise is drawn
    anew at every training step (on every backend, including JAX's stateless
    training loop) and a fixed `seed` reproduces the same sequence of masks.
    Subclasses implement `corrupt(inputs)`.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return self.corrupt(inputs)

    def corrupt(self, inputs):
        raise NotImplementedError

    def _keep_mask(self, inputs, rate):
        """Boolean mask that is True for the entries left untouched."""
        draws = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        return ops.greater_equal(draws, rate)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
