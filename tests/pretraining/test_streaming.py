"""Out-of-core data: streamed matrices, shuffled batches, codes spilled to disk, pretraining on them."""

import os
import sys

import keras
import numpy as np
import pytest
import scipy.sparse as sp

from tiedae.pretraining import StackedDenoisingAutoencoder
from tiedae.pretraining import stacked as stacked_module
from tiedae.pretraining.data import check_matrix, map_in_batches
from tiedae.pretraining.streaming import (
    RowBatches,
    StreamedMatrix,
    as_streamed,
    is_streamed,
    map_rows,
    stack_rows,
)

BACKEND = keras.backend.backend()


@pytest.fixture
def memmap(tmp_path, rng):
    x = rng.random((103, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return x, np.load(tmp_path / "x.npy", mmap_mode="r")


def test_streamed_matrix_reads_like_an_array(memmap):
    x, mm = memmap
    assert is_streamed(mm) and not is_streamed(x) and not is_streamed(sp.csr_matrix(x))
    s = as_streamed(mm)
    assert s.shape == (103, 7) and len(s) == 103
    np.testing.assert_array_equal(s[10:20], x[10:20])
    np.testing.assert_array_equal(s[-3:], x[-3:])
    rows = [50, 3, 3, 102, 4, 5, 6]  # any order, repeats, contiguous runs
    np.testing.assert_array_equal(s[rows], x[rows])
    np.testing.assert_array_equal(s[::10], x[::10])
    np.testing.assert_array_equal(s[5], x[5])
    assert s.min() == x.min() and s.max() == x.max()
    with pytest.raises(TypeError, match="lives on disk"):
        np.asarray(s)


def test_scan_names_first_bad_row_and_checks_shape(tmp_path):
    x = np.ones((20, 3), np.float32)
    x[13, 1] = np.nan
    np.save(tmp_path / "bad.npy", x)
    s = check_matrix(np.load(tmp_path / "bad.npy", mmap_mode="r"), "x")
    assert isinstance(s, StreamedMatrix)  # data.check_matrix hands on-disk data over
    with pytest.raises(ValueError, match="NaN or infinite values \\(first in row 13\\)"):
        s.min()
    with pytest.raises(ValueError, match="has 3 features but the model was trained on 4"):
        as_streamed(s, n_features=4)
    np.save(tmp_path / "v.npy", np.ones(5, np.float32))
    with pytest.raises(ValueError, match="must be 2-D"):
        as_streamed(np.load(tmp_path / "v.npy", mmap_mode="r"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_reading_a_memory_map_does_not_keep_its_pages_resident(tmp_path):
    path = str(tmp_path / "big.npy")
    np.save(path, np.ones((2048, 1024), np.float32))  # 8 MiB
    mm = np.load(path, mmap_mode="r")

    def resident_kib():
        with open("/proc/self/smaps") as handle:
            lines = handle.read().splitlines()
        total, inside = 0, False
        for line in lines:
            if line[:1].isdigit() or line[:1] in "abcdef":  # a mapping's header line
                inside = line.endswith(path)
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
        return total

    np.asarray(mm[:1024]).sum()  # plain memmap reading keeps pages resident
    assert resident_kib() >= 4096
    total = sum(block.sum() for _, block in as_streamed(mm).blocks(256))
    assert total == 2048 * 1024
    assert resident_kib() < 1024


def test_in_memory_batches_follow_a_numpy_permutation(rng):
    x = rng.random((10, 3)).astype(np.float32)
    batches = RowBatches(x, 4)
    assert len(batches) == 3
    np.testing.assert_array_equal(np.concatenate([batches[i][0] for i in range(3)]), x)
    np.random.seed(7)
    batches.on_epoch_begin()
    np.random.seed(7)
    order = np.random.permutation(10)  # what Keras draws for arrays on JAX
    got = np.concatenate([batches[i][0] for i in range(3)])
    np.testing.assert_array_equal(got, x[order])
    # Without targets a batch is the input alone: a ReconstructionModel's target.
    assert len(batches[0]) == 1
    sparse = RowBatches(sp.csr_matrix(x), 4, shuffle=False)
    (batch,) = sparse[2]
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 3)
    np.testing.assert_array_equal(batch, x[8:])


def test_disk_batches_mix_chunks_and_cover_every_row_once(memmap):
    x, mm = memmap
    # 5-row batches, 2-batch chunks, 3 chunks per window.
    batches = RowBatches(mm, 5, window_bytes=3 * 2 * 5 * 28, window_chunks=3)
    assert batches.chunk_rows == 10 and len(batches) == 21
    seen_epochs = []
    for _ in range(2):
        batches.on_epoch_begin()
        parts = [batches[i][0] for i in range(len(batches))]
        assert sorted(len(p) for p in parts) == [3] + [5] * 20  # one short batch
        rows = np.concatenate(parts)
        # Every row exactly once: match rows back to their index in x.
        index = [int(np.flatnonzero((x == r).all(axis=1))[0]) for r in rows]
        assert sorted(index) == list(range(103))
        seen_epochs.append(index)
        # Batches draw from several chunks (positions 10 rows apart).
        chunks_per_batch = [len({i // 10 for i in index[j : j + 5]}) for j in range(0, 100, 5)]
        assert max(chunks_per_batch) > 1
    assert seen_epochs[0] != seen_epochs[1]


def test_targets_multiple_of_and_shards(memmap):
    x, mm = memmap
    y = np.arange(103)
    for data in (x, mm):
        batches = RowBatches(data, 8, y=y, multiple_of=4, window_bytes=2 * 8 * 28)
        batches.on_epoch_begin()
        sizes, labels = [], []
        for i in range(len(batches)):
            batch, target = batches[i]
            np.testing.assert_array_equal(batch, x[target])  # targets follow their rows
            sizes.append(len(batch))
            labels.extend(target)
        assert set(sizes) == {8, 4}  # 103 rows: 12 x 8, then 7 cut to 4
        assert len(set(labels)) == len(labels) == 100
    shard = RowBatches(x, 8, y=y, shuffle=False, shard=(1, 2))
    rows = np.concatenate([shard[i][1] for i in range(len(shard))])
    np.testing.assert_array_equal(rows, np.arange(51, 102))  # 103 // 2 = 51 rows each
    assert shard[0][0].shape == (4, 7)  # 8 rows per global batch, 4 per process
    with pytest.raises(ValueError, match="multiple of 3"):
        RowBatches(x, 8, multiple_of=3)
    with pytest.raises(ValueError, match="0 <= index < count"):
        RowBatches(x, 8, shard=(2, 2))


def test_map_rows_spills_to_a_deleted_temporary_file(tmp_path, memmap):
    x, mm = memmap
    weights = np.linspace(-1, 1, 7 * 3, dtype=np.float32).reshape(7, 3)

    def fn(batch):
        return keras.ops.matmul(batch, weights)

    in_memory = map_rows(fn, x, 16)
    assert isinstance(in_memory, np.ndarray)
    spilled = map_rows(fn, as_streamed(mm), 16, directory=str(tmp_path))
    assert isinstance(spilled, StreamedMatrix) and isinstance(spilled.source, np.memmap)
    np.testing.assert_allclose(spilled[0:103], x @ weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(spilled[0:103], in_memory)
    assert (spilled.min(), spilled.max()) == (in_memory.min(), in_memory.max())
    if os.name == "posix":
        assert not [p for p in os.listdir(tmp_path) if p.startswith("tiedae-codes-")]


def test_in_memory_codes_are_written_into_one_array_not_concatenated(monkeypatch):
    # The codes are stacked into one preallocated array (peak: result + one batch);
    # np.concatenate of the list would hold every batch and the result at once.
    x = np.arange(50 * 4, dtype=np.float32).reshape(50, 4)
    monkeypatch.setattr(np, "concatenate", lambda *a, **k: pytest.fail("concatenated"))
    out = map_rows(lambda batch: batch * 2.0, x, 16)
    np.testing.assert_array_equal(out, x * 2.0)
    assert out.dtype == np.float32 and out.flags.owndata
    np.testing.assert_array_equal(map_in_batches(lambda batch: batch[:, :2], sp.csr_matrix(x), 7),
                                  x[:, :2])
    with pytest.raises(ValueError, match="expected 5 rows"):
        stack_rows(iter([np.zeros((3, 2), np.float32)]), 5)


def test_pretraining_from_a_memory_map_spills_codes_and_matches_in_memory(tmp_path, digits, monkeypatch):
    x = digits[0][:200]
    np.save(tmp_path / "d.npy", x)
    mm = np.load(tmp_path / "d.npy", mmap_mode="r")
    config = dict(layer_sizes=[8, 4], epochs=2, batch_size=50, seed=0, verbose=0)
    codes_kinds = []
    original = stacked_module.map_rows

    def spy(fn, data, batch_size):
        out = original(fn, data, batch_size)
        codes_kinds.append(type(out))
        return out

    monkeypatch.setattr(stacked_module, "map_rows", spy)
    streamed = StackedDenoisingAutoencoder(**config).pretrain(mm, validation_data=mm[:40])
    assert codes_kinds == [StreamedMatrix, StreamedMatrix]  # codes and validation codes
    assert all(np.isfinite(h["loss"]).all() and len(h["val_loss"]) == 2 for h in streamed.history_)
    np.testing.assert_array_equal(streamed.transform(mm), streamed.transform(x))
    streamed.finetune(mm, epochs=1)
    assert len(streamed.finetune_history_["loss"]) == 1
    if BACKEND == "jax":
        # The data fit in one window, whose permutation is the one Keras draws
        # for an array on JAX: the same batches, hence the same weights.
        memory = StackedDenoisingAutoencoder(**config).pretrain(x, validation_data=x[:40])
        memory.finetune(x, epochs=1)
        for a, b in zip(streamed.autoencoder_.weights, memory.autoencoder_.weights):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6)


def test_pretraining_from_a_backed_sparse_h5ad(tmp_path, digits):
    anndata = pytest.importorskip("anndata")
    x = digits[0][:200]
    anndata.AnnData(sp.csr_matrix(x)).write_h5ad(tmp_path / "d.h5ad")
    backed = anndata.read_h5ad(tmp_path / "d.h5ad", backed="r")
    sda = StackedDenoisingAutoencoder([8], epochs=1, batch_size=40, seed=0, verbose=0)
    sda.pretrain(backed)  # a backed AnnData: its X, streamed
    np.testing.assert_allclose(sda.transform(backed.X), sda.transform(x), atol=1e-6)
    assert np.isfinite(sda.history_[0]["loss"]).all()
    with pytest.raises(ValueError, match="has 64 features but the model was trained on 8"):
        StackedDenoisingAutoencoder([4], verbose=0).pretrain(x[:, :8]).transform(backed.X)
