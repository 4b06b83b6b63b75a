"""Library-size normalisation and log1p: NumPy references, sparse stays sparse, streamed stays lazy."""

import numpy as np
import pytest
import scipy.sparse as sp

from tiedae.preprocessing import (
    CountPreprocessing,
    library_sizes,
    log1p,
    median_library_size,
    normalize_total,
)
from tiedae.pretraining.streaming import StreamedMatrix


@pytest.fixture
def counts(rng):
    x = rng.poisson(3.0, size=(9, 6)).astype(np.float32)
    x[rng.random(x.shape) > 0.6] = 0
    x[4] = 0  # an empty cell
    return x


def reference(x, target_sum, log=True):
    totals = x.sum(axis=1, keepdims=True)
    scaled = np.where(totals > 0, x * target_sum / np.where(totals > 0, totals, 1), 0)
    return np.log1p(scaled) if log else scaled


def test_dense_normalize_then_log1p_matches_numpy(counts):
    before = counts.copy()
    out = CountPreprocessing(normalize=True, log1p=True, target_sum=100.0)(counts)
    np.testing.assert_allclose(out, reference(counts, 100.0), rtol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(counts, before)  # input untouched
    np.testing.assert_array_equal(out[4], 0)  # empty row stays zero, no NaN
    sums = np.expm1(out).sum(axis=1)
    np.testing.assert_allclose(sums[sums > 0], 100.0, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_stays_sparse_with_same_values(counts, fmt):
    x = sp.csr_matrix(counts).asformat(fmt)
    out = CountPreprocessing(normalize=True, log1p=True, target_sum=50.0)(x)
    assert sp.issparse(out) and out.format == "csr" and out.dtype == np.float32
    assert out.nnz == np.count_nonzero(counts)  # zeros were never stored
    np.testing.assert_allclose(out.toarray(), reference(counts, 50.0), rtol=1e-6)
    np.testing.assert_array_equal(x.toarray(), counts)


def test_functions_and_median_target(counts):
    totals = counts.sum(axis=1)
    np.testing.assert_allclose(library_sizes(sp.csr_matrix(counts)), totals)
    median = float(np.median(totals[totals > 0]))
    assert median_library_size(counts) == pytest.approx(median)
    np.testing.assert_allclose(normalize_total(counts, target_sum=None), reference(counts, median, log=False), rtol=1e-6)
    np.testing.assert_allclose(log1p(sp.csr_matrix(counts)).toarray(), np.log1p(counts), rtol=1e-6)
    resolved = CountPreprocessing(normalize=True, target_sum=None).resolve(counts)
    assert resolved.target_sum == pytest.approx(median)


def test_streamed_matrix_is_transformed_as_it_is_read(tmp_path, counts):
    np.save(tmp_path / "c.npy", counts)
    mm = np.load(tmp_path / "c.npy", mmap_mode="r")
    prep = CountPreprocessing(normalize=True, log1p=True, target_sum=None)
    out = prep(mm)
    assert isinstance(out, StreamedMatrix)
    median = float(np.median(counts.sum(axis=1)[counts.sum(axis=1) > 0]))
    np.testing.assert_allclose(out[0:9], reference(counts, median), rtol=1e-6)
    np.testing.assert_allclose(out[[7, 2]], reference(counts, median)[[7, 2]], rtol=1e-6)


def test_inactive_is_identity_and_dict_round_trip(counts):
    prep = CountPreprocessing()
    assert not prep.active and prep(counts) is counts
    full = CountPreprocessing(normalize=True, log1p=True, target_sum=1e4)
    assert CountPreprocessing.from_dict(full.to_dict()) == full
    assert full.to_dict() == {"normalize": True, "log1p": True, "target_sum": 1e4}


def test_bad_arguments_and_negative_counts(counts):
    with pytest.raises(ValueError, match="target_sum"):
        CountPreprocessing(normalize=True, target_sum=0)
    with pytest.raises(ValueError, match="target_sum"):
        CountPreprocessing(normalize=True, target_sum="1e4")
    with pytest.raises(ValueError, match="unknown preprocessing option"):
        CountPreprocessing.from_dict({"scale": True})
    with pytest.raises(ValueError, match="non-negative counts"):
        CountPreprocessing(log1p=True)(counts - 5)
    with pytest.raises(ValueError, match="every row sums to zero"):
        median_library_size(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="resolve"):
        CountPreprocessing(normalize=True, target_sum=None).transform_block(counts)
