"""Tied-weight autoencoder layers."""

from tiedae.layers.dense_autoencoder import DenseLayerAutoencoder
from tiedae.layers.dense_transpose import DenseTranspose
from tiedae.layers.tied_views import TiedDecoder, TiedEncoder

__all__ = ["DenseLayerAutoencoder", "DenseTranspose", "TiedDecoder", "TiedEncoder"]
