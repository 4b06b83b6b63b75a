"""Input corruption for denoising autoencoders (Vincent et al. 2010, §3.3)."""

from tiedae._validation import check_non_negative, check_rate, check_seed
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
    if kind is None or (isinstance(kind, str) and kind == "none"):
        return None
    if not isinstance(kind, str) or kind not in CORRUPTION_KINDS:
        raise ValueError(
            f"Unknown corruption `kind` {kind!r}; use one of "
            f"{sorted(CORRUPTION_KINDS) + ['none']}."
        )
    # Validate the level before the level-0 shortcut, so that a bad level is
    # never silently accepted; building no layer also leaves the global RNG alone.
    if kind == "gaussian":
        level = check_non_negative(level, "level")
    else:
        level = check_rate(level, "level")
    check_seed(seed)
    if level == 0:
        return None
    return CORRUPTION_KINDS[kind](level, seed=seed, **kwargs)


__all__ = [
    "AdditiveGaussianNoise",
    "CORRUPTION_KINDS",
    "CorruptionLayer",
    "MaskingNoise",
    "SaltAndPepperNoise",
    "get_corruption",
]
