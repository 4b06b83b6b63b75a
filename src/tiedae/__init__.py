"""tiedae: tied-weight denoising autoencoders and greedy layer-wise pretraining for Keras 3.

The library never chooses a Keras backend itself: set `KERAS_BACKEND` (jax,
tensorflow or torch) before importing Keras. The `tiedae` command defaults to
JAX. Public names are imported lazily, so `import tiedae` does not import Keras
(the command line relies on this to pick the backend first).
"""

import importlib

__version__ = "0.1.0"

# Public name -> module that defines it.
_EXPORTS = {
    "AdditiveGaussianNoise": "tiedae.corruption",
    "MaskingNoise": "tiedae.corruption",
    "SaltAndPepperNoise": "tiedae.corruption",
    "get_corruption": "tiedae.corruption",
    "DenseLayerAutoencoder": "tiedae.layers",
    "DenseTranspose": "tiedae.layers",
    "TiedDecoder": "tiedae.layers",
    "TiedEncoder": "tiedae.layers",
    "Conv2DLayerAutoencoder": "tiedae.layers",
    "MaskedLayerAutoencoder": "tiedae.layers",
    "SparseLayerAutoencoder": "tiedae.layers",
    "GeneSet": "tiedae.genesets",
    "GeneSetAdjacency": "tiedae.genesets",
    "GeneSetReport": "tiedae.genesets",
    "gene_set_adjacency": "tiedae.genesets",
    "gmt_adjacency": "tiedae.genesets",
    "read_gmt": "tiedae.genesets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tiedae' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
