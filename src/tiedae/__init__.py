"""tiedae: tied-weight denoising autoencoders and greedy layer-wise pretraining for Keras 3.

The library never chooses a Keras backend itself: set `KERAS_BACKEND` (jax,
tensorflow or torch) before importing it, as for Keras. Importing `tiedae`
registers every layer with Keras's serialization, so `keras.models.load_model`
finds them. The `tiedae` command picks its backend first (default JAX) and only
then imports this package.
"""

__version__ = "0.1.0"

from tiedae.corruption import (  # noqa: E402
    AdditiveGaussianNoise,
    MaskingNoise,
    SaltAndPepperNoise,
    get_corruption,
)
from tiedae.genesets import (  # noqa: E402
    GeneSet,
    GeneSetAdjacency,
    GeneSetReport,
    gene_set_adjacency,
    gmt_adjacency,
    read_gmt,
)
from tiedae.layers import (  # noqa: E402
    Conv2DLayerAutoencoder,
    DenseLayerAutoencoder,
    DenseTranspose,
    MaskedLayerAutoencoder,
    SoftClusterAssignment,
    SparseLayerAutoencoder,
    TiedDecoder,
    TiedEncoder,
)
from tiedae.pretraining import (  # noqa: E402
    LayerwiseTiedAutoencoder,
    ReconstructionModel,
    StackedDenoisingAutoencoder,
    fit_with_unfreezing,
)
from tiedae.estimators import (  # noqa: E402
    DeepEmbeddedClustering,
    PretrainedMLPClassifier,
    TiedAutoencoderTransformer,
)

__all__ = [
    "AdditiveGaussianNoise",
    "Conv2DLayerAutoencoder",
    "DeepEmbeddedClustering",
    "DenseLayerAutoencoder",
    "DenseTranspose",
    "GeneSet",
    "GeneSetAdjacency",
    "GeneSetReport",
    "LayerwiseTiedAutoencoder",
    "ReconstructionModel",
    "MaskedLayerAutoencoder",
    "MaskingNoise",
    "PretrainedMLPClassifier",
    "SaltAndPepperNoise",
    "SoftClusterAssignment",
    "SparseLayerAutoencoder",
    "StackedDenoisingAutoencoder",
    "TiedAutoencoderTransformer",
    "TiedDecoder",
    "TiedEncoder",
    "fit_with_unfreezing",
    "gene_set_adjacency",
    "get_corruption",
    "gmt_adjacency",
    "read_gmt",
]
