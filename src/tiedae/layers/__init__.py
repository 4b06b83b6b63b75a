"""Tied-weight autoencoder layers."""

from tiedae.layers.conv_autoencoder import Conv2DLayerAutoencoder
from tiedae.layers.dense_autoencoder import DenseLayerAutoencoder
from tiedae.layers.dense_transpose import DenseTranspose
from tiedae.layers.masked_autoencoder import MaskedLayerAutoencoder, SparseLayerAutoencoder
from tiedae.layers.soft_cluster_assignment import SoftClusterAssignment
from tiedae.layers.tied_views import TiedDecoder, TiedEncoder

__all__ = [
    "Conv2DLayerAutoencoder",
    "DenseLayerAutoencoder",
    "DenseTranspose",
    "MaskedLayerAutoencoder",
    "SoftClusterAssignment",
    "SparseLayerAutoencoder",
    "TiedDecoder",
    "TiedEncoder",
]
