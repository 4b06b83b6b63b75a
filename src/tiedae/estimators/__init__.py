"""scikit-learn estimators built on greedy denoising-autoencoder pretraining."""

from tiedae.estimators.classifier import PretrainedMLPClassifier
from tiedae.estimators.clusterer import DeepEmbeddedClustering
from tiedae.estimators.transformer import TiedAutoencoderTransformer

__all__ = ["DeepEmbeddedClustering", "PretrainedMLPClassifier", "TiedAutoencoderTransformer"]
