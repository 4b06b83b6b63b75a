"""scikit-learn estimators built on greedy denoising-autoencoder pretraining."""

from tiedae.estimators.classifier import PretrainedMLPClassifier
from tiedae.estimators.transformer import TiedAutoencoderTransformer

__all__ = ["PretrainedMLPClassifier", "TiedAutoencoderTransformer"]
