"""Count preprocessing for single-cell data: library-size normalisation and log1p.

Raw counts differ between cells mostly by sequencing depth. The usual fix
(scanpy's `normalize_total` then `log1p`) scales every cell to the same total
count and then compresses the range with `log(1 + x)`. Both act on each row
alone, keep zeros at zero and therefore keep a `scipy.sparse` matrix sparse;
for a matrix on disk (`StreamedMatrix`) they are applied to every block as it
is read. Neither is applied unless asked for.
"""

import dataclasses
import numbers

import numpy as np
import scipy.sparse

DEFAULT_TARGET_SUM = 1e4


def _is_streamed(x):
    from tiedae.pretraining.streaming import is_streamed

    return is_streamed(x)


def _check_target_sum(target_sum):
    if target_sum is None:
        return None
    if isinstance(target_sum, bool) or not isinstance(target_sum, numbers.Real) or not (
        np.isfinite(target_sum) and target_sum > 0
    ):
        raise ValueError(
            f"`target_sum` must be a positive number or None (the median library size); "
            f"received {target_sum!r}."
        )
    return float(target_sum)


def _check_counts(block, what):
    values = block.data if scipy.sparse.issparse(block) else block
    if values.size and np.nanmin(values) < 0:
        raise ValueError(
            f"{what} expects non-negative counts, but the data has negative values "
            f"(minimum {float(np.nanmin(values)):.4g}); it may already be scaled or centred."
        )


def library_sizes(x):
    """Total count of every row, as a float64 array (any matrix kind, streamed too)."""
    if _is_streamed(x):
        from tiedae.pretraining.streaming import as_streamed

        x = as_streamed(x)
        return np.concatenate([block.sum(axis=1, dtype=np.float64) for _, block in x.blocks()])
    if scipy.sparse.issparse(x):
        return np.asarray(x.sum(axis=1, dtype=np.float64)).reshape(-1)
    return np.asarray(x, dtype=np.float64).sum(axis=1)


def median_library_size(x):
    """Median total count over the rows with any count (scanpy's default target)."""
    sizes = library_sizes(x)
    sizes = sizes[sizes > 0]
    if sizes.size == 0:
        raise ValueError("every row sums to zero; there is nothing to normalise.")
    return float(np.median(sizes))


def _scale_rows(x, target_sum):
    if scipy.sparse.issparse(x):
        x = scipy.sparse.csr_matrix(x, dtype=np.float32, copy=True)
        totals = np.asarray(x.sum(axis=1, dtype=np.float64)).reshape(-1)
    else:
        x = np.array(x, dtype=np.float32, copy=True)
        totals = x.sum(axis=1, dtype=np.float64)
    # Empty rows stay zero instead of becoming NaN.
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    if scipy.sparse.issparse(x):
        x.data *= np.repeat(scale, np.diff(x.indptr)).astype(np.float32)
    else:
        x *= scale[:, None].astype(np.float32)
    return x


def normalize_total(x, target_sum=DEFAULT_TARGET_SUM):
    """Scale every row to sum to `target_sum`; rows of zeros stay zero.

    Args:
        x: Non-negative counts, `(cells, genes)`: NumPy array, `scipy.sparse`
            matrix or on-disk matrix (`StreamedMatrix`, memory map, backed
            AnnData matrix).
        target_sum: The total of every row after scaling (10,000 by default,
            "counts per 10k"); `None` for the median total of the non-empty
            rows, as in scanpy (one pass over the data).

    Returns:
        A new float32 matrix of the same kind (CSR for sparse input); a
        `StreamedMatrix` that normalises as it reads for on-disk input.
    """
    return CountPreprocessing(normalize=True, target_sum=target_sum)(x)


def log1p(x):
    """`log(1 + x)` of every entry (float32); sparse stays sparse, streamed stays lazy."""
    return CountPreprocessing(log1p=True)(x)


@dataclasses.dataclass(frozen=True)
class CountPreprocessing:
    """Optional count preprocessing, applied row by row: normalise, then log1p.

    Args:
        normalize: Scale every row to `target_sum` (library-size normalisation).
        log1p: Then take `log(1 + x)`.
        target_sum: The row total after normalisation, or `None` for the median
            library size of the data it is first applied to (call `resolve`
            to fix it, so new data is scaled the same way).

    Example:

    >>> prep = CountPreprocessing(normalize=True, log1p=True).resolve(counts)
    >>> x = prep(counts)            # CSR in, CSR out
    >>> prep.to_dict()              # recorded with a run / in adata.uns
    """

    normalize: bool = False
    log1p: bool = False
    target_sum: float = DEFAULT_TARGET_SUM

    def __post_init__(self):
        object.__setattr__(self, "normalize", bool(self.normalize))
        object.__setattr__(self, "log1p", bool(self.log1p))
        object.__setattr__(self, "target_sum", _check_target_sum(self.target_sum))

    @property
    def active(self):
        """Whether this changes the data at all."""
        return self.normalize or self.log1p

    def resolve(self, x):
        """A copy with `target_sum=None` replaced by the median library size of `x`."""
        if self.normalize and self.target_sum is None:
            return dataclasses.replace(self, target_sum=median_library_size(x))
        return self

    def transform_block(self, block):
        """Apply to a block of rows (NumPy array or CSR matrix); the result is float32."""
        if self.normalize and self.target_sum is None:
            raise ValueError("call `resolve(x)` first: target_sum=None needs the whole data's median.")
        if not self.active:
            return block
        _check_counts(block, "normalisation" if self.normalize else "log1p")
        if self.normalize:
            block = _scale_rows(block, self.target_sum)
        if self.log1p:
            if scipy.sparse.issparse(block):
                block = scipy.sparse.csr_matrix(block, dtype=np.float32, copy=not self.normalize)
                np.log1p(block.data, out=block.data)
            else:
                block = np.log1p(np.asarray(block, dtype=np.float32))
        return block

    def __call__(self, x):
        """Apply to a whole matrix: a new matrix of the same kind (lazy when on disk)."""
        prep = self.resolve(x)
        if not prep.active:
            return x
        if _is_streamed(x):
            from tiedae.pretraining.streaming import as_streamed

            return as_streamed(x).map(prep.transform_block)
        if not scipy.sparse.issparse(x):
            x = np.asarray(x)
        elif x.format != "csr":
            x = scipy.sparse.csr_matrix(x)
        return prep.transform_block(x)

    def to_dict(self):
        """The settings as plain JSON/TOML values."""
        return {"normalize": self.normalize, "log1p": self.log1p, "target_sum": self.target_sum}

    @classmethod
    def from_dict(cls, values):
        values = dict(values or {})
        unknown = set(values) - {"normalize", "log1p", "target_sum"}
        if unknown:
            raise ValueError(f"unknown preprocessing option(s): {', '.join(sorted(unknown))}.")
        return cls(**values)
