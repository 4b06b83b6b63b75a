"""Input corruption for denoising autoencoders (Vincent et al. 2010, §3.3)."""

from tiedae.corruption.base import CorruptionLayer
from tiedae.corruption.gaussian import AdditiveGaussianNoise
from tiedae.corruption.masking import MaskingNoise
from tiedae.corruption.salt_and_pepper import SaltAndPepperNoise

#: Names accepted wherever a corruption kind is given as a string.
CORRUPTION_KINDS = {
    "masking": MaskingNoise,
    "salt_and_pepper": SaltAndPepperNoise,
    "gaussian": AdditiveGaussianNoise,
}


def get_corruption(kind, level, seed=None, **kwargs):
    """Build a corruption layer from a kind name and its level.

    Args:
        kind: One of "masking", "salt_and_pepper", "gaussian" or "none".
        level: The rate (masking, salt-and-pepper) or standard deviation (gaussian).
        seed: Optional seed.

    Returns:
        A `CorruptionLayer`, or `None` for kind "none" or level 0.
    """
    if kind in (None, "none"):
        return None
    if kind not in CORRUPTION_KINDS:
        raise ValueError(
            f"Unknown corruption kind {kind!r}; use one of "
            f"{sorted(CORRUPTION_KINDS) + ['none']}."
        )
    return CORRUPTION_KINDS[kind](level, seed=seed, **kwargs)


__all__ = [
    "AdditiveGaussianNoise",
    "CORRUPTION_KINDS",
    "CorruptionLayer",
    "MaskingNoise",
    "SaltAndPepperNoise",
    "get_corruption",
]
