"""tiedae: tied-weight denoising autoencoders and greedy layer-wise pretraining for Keras 3.

The library never chooses a Keras backend itself: set `KERAS_BACKEND` (jax,
tensorflow or torch) before importing it. The `tiedae` command defaults to JAX.
"""

from tiedae.corruption import (
    AdditiveGaussianNoise,
    MaskingNoise,
    SaltAndPepperNoise,
    get_corruption,
)
from tiedae.layers import DenseLayerAutoencoder, DenseTranspose, TiedDecoder, TiedEncoder

__version__ = "0.1.0"

__all__ = [
    "AdditiveGaussianNoise",
    "DenseLayerAutoencoder",
    "DenseTranspose",
    "MaskingNoise",
    "SaltAndPepperNoise",
    "TiedDecoder",
    "TiedEncoder",
    "get_corruption",
]
