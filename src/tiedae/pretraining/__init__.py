"""Greedy layer-wise pretraining, fine-tuning and hand-off to supervised models."""

from tiedae.pretraining.checkpoint import PretrainingCheckpoint
from tiedae.pretraining.convolutional import pretrain_conv_stack
from tiedae.pretraining.deep_clustering import (
    ClusterRefinement,
    refine_clusters,
    target_distribution,
)
from tiedae.pretraining.handoff import (
    copy_encoder_layer,
    fit_with_unfreezing,
    pretrained_layers,
    set_pretrained_trainable,
    to_classifier,
    to_model,
    unroll,
)
from tiedae.pretraining.layerwise_autoencoder import LayerwiseTiedAutoencoder
from tiedae.pretraining.reconstruction_model import ReconstructionModel
from tiedae.pretraining.semi_supervised import (
    fit_semi_supervised,
    masked_sparse_categorical_crossentropy,
    to_semi_supervised,
)
from tiedae.pretraining.stacked import StackedDenoisingAutoencoder

__all__ = [
    "ClusterRefinement",
    "LayerwiseTiedAutoencoder",
    "PretrainingCheckpoint",
    "ReconstructionModel",
    "StackedDenoisingAutoencoder",
    "copy_encoder_layer",
    "pretrain_conv_stack",
    "fit_semi_supervised",
    "fit_with_unfreezing",
    "masked_sparse_categorical_crossentropy",
    "pretrained_layers",
    "refine_clusters",
    "set_pretrained_trainable",
    "target_distribution",
    "to_classifier",
    "to_model",
    "to_semi_supervised",
    "unroll",
]
