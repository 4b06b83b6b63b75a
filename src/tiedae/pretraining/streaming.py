"""Data larger than memory: on-disk matrices read in shuffled batches.

Three kinds of input are streamed instead of loaded: a memory-mapped `.npy`
(`np.load(path, mmap_mode="r")`), an `.h5ad` opened in backed mode (its `X`,
an `h5py.Dataset` or an AnnData CSR dataset), and anything already wrapped in
a `StreamedMatrix`. `as_streamed` wraps them; `RowBatches` (a
`keras.utils.PyDataset`) feeds them, and in-memory NumPy arrays and
`scipy.sparse` matrices, to `model.fit` one densified batch at a time; and
`map_rows` computes the clean codes of greedy pretraining, writing them to a
temporary memory-mapped `.npy` file when the input is on disk.

Shuffling on disk. Reading rows in random order from a file is slow on disk
and, through a memory map, grows the process's resident memory by every page
touched. `RowBatches` therefore shuffles in two levels: the rows are cut into
chunks of whole batches; every epoch the chunk order is permuted, a window of
`window_chunks` chunks is read (contiguous reads), and the rows of the window
are permuted and cut into batches. Each batch thus mixes rows from
`window_chunks` random places in the file, and memory stays at about one
window (`window_bytes`, 64 MiB by default) plus the page cache, which the
kernel reclaims at will. Pages of a memory map are released from the process
after each read (`madvise(MADV_DONTNEED)`), so the resident set size does not
grow with the file.
"""

import mmap
import os
import sys
import tempfile
import threading
import weakref

import keras
import numpy as np
import scipy.sparse

DEFAULT_WINDOW_BYTES = 64 * 2**20
DEFAULT_WINDOW_CHUNKS = 8
# Rows read per block when scanning a whole matrix (statistics, codes).
SCAN_BYTES = 32 * 2**20


# ----------------------------------------------------------------- detection


# An object of anndata's or h5py's types exists only once that package is imported, so
# the checks below never import one (anndata takes 0.2 s, and `is_streamed` runs on
# every matrix that `pretrain` and the estimators receive).


def _backed_sparse_types():
    if "anndata" not in sys.modules:
        return (), ()
    try:
        from anndata.abc import CSCDataset, CSRDataset
    except ImportError:
        return (), ()
    return (CSRDataset,), (CSCDataset,)


def _is_h5py_dataset(x):
    h5py = sys.modules.get("h5py")
    return h5py is not None and isinstance(x, h5py.Dataset)


def _is_backed_anndata(x):
    return type(x).__name__ == "AnnData" and bool(getattr(x, "isbacked", False))


def is_streamed(x):
    """Whether `x` is on disk and should be streamed: a `StreamedMatrix`, a NumPy
    memory map, an `h5py.Dataset`, a backed AnnData matrix or a backed `AnnData`."""
    csr, csc = _backed_sparse_types()
    return (
        isinstance(x, StreamedMatrix)
        or isinstance(x, np.memmap)
        or _is_h5py_dataset(x)
        or isinstance(x, csr + csc)
        or _is_backed_anndata(x)
    )


def as_streamed(x, name="x", n_features=None):
    """Wrap an on-disk matrix in a `StreamedMatrix`, checking its shape and dtype.

    Args:
        x: A `StreamedMatrix`, a NumPy memory map, an `h5py.Dataset`, a backed
            AnnData CSR matrix, or a backed `AnnData` (its `X`).
        name: The argument's name, for error messages.
        n_features: If given, the number of columns `x` must have.

    Raises:
        ValueError: `x` is not 2-D, not numeric, empty, column-compressed or
            has the wrong number of columns. (NaN and infinite values are
            found by the first scan of the data, `min()`/`max()`.)
    """
    if isinstance(x, StreamedMatrix):
        matrix = x
    else:
        if _is_backed_anndata(x):
            x = x.X
        _, csc = _backed_sparse_types()
        if isinstance(x, csc):
            raise ValueError(
                f"`{name}` is a column-compressed (CSC) matrix on disk, which cannot be read "
                "by rows without loading it whole; rewrite it as CSR (e.g. "
                "adata.X = scipy.sparse.csr_matrix(adata.X) in memory, then write_h5ad)."
            )
        if len(x.shape) != 2:
            raise ValueError(
                f"`{name}` must be 2-D (n_samples, n_features); received shape {tuple(x.shape)}."
            )
        matrix = StreamedMatrix(x, name=name)
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"`{name}` is empty (shape {matrix.shape}); pass at least one sample and one feature.")
    dtype = np.dtype(matrix.source_dtype)
    if not (np.issubdtype(dtype, np.number) or dtype == bool) or np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"`{name}` must hold real numbers; received dtype {dtype}.")
    if n_features is not None and matrix.shape[1] != n_features:
        raise ValueError(
            f"`{name}` has {matrix.shape[1]} features but the model was trained on "
            f"{n_features}; pass data with {n_features} columns."
        )
    return matrix


# ------------------------------------------------------------ memory release


def _root_mmap(array):
    """The `mmap.mmap` under a NumPy memory map (or a view of one), or `None`."""
    obj, seen = array, 0
    while obj is not None and seen < 64:
        if isinstance(obj, mmap.mmap):
            return obj
        obj, seen = getattr(obj, "base", None), seen + 1
    return None


def _release_pages(array):
    """Drop a read-only or shared memory map's pages from this process's resident set.

    The data stays in the kernel's page cache (and in the file); the next
    access faults it back in. Private copy-on-write maps (mode "c") are left
    alone, since this would discard their changes.
    """
    if not isinstance(array, np.memmap) or getattr(array, "mode", "r") == "c":
        return
    mapped = _root_mmap(array)
    if mapped is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        mapped.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # closed map or a platform without madvise
        pass


# --------------------------------------------------------------- the matrix


def _densify(block):
    if scipy.sparse.issparse(block):
        block = block.toarray()
    return np.asarray(block, dtype=np.float32)


class StreamedMatrix:
    """A 2-D matrix on disk, read in row blocks, optionally through a row-wise transform.

    It looks enough like an array for the pretraining code: `shape`, `ndim`,
    `len()`, `x[start:stop]` and `x[rows]` (dense float32 NumPy arrays),
    `min()` and `max()` (one scan, cached, which also rejects NaN and
    infinite values). It never reads the whole matrix at once; `np.asarray`
    on it raises instead of loading it silently.

    Args:
        source: A NumPy array or memory map, an `h5py.Dataset`, a
            `scipy.sparse` CSR matrix or a backed AnnData CSR dataset.
        transform: Optional function applied to every block of rows as read
            (a dense array or a CSR matrix) returning a block with the same
            rows, e.g. count normalisation (`tiedae.preprocessing`). It must
            act on each row independently.
        name: Name used in error messages.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, source, transform=None, name="x", _stats=None):
        self.source = source
        self.transform = transform
        self.name = name
        self.shape = (int(source.shape[0]), int(source.shape[1]))
        self.source_dtype = np.dtype(source.dtype)
        self._stats = _stats
        self._finalizer = None

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        kind = type(self.source).__name__
        extra = ", transformed" if self.transform is not None else ""
        return f"StreamedMatrix(shape={self.shape}, source={kind}{extra})"

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            f"{self!r} lives on disk; converting it to an array would read it whole. "
            "Use x[start:stop] for a block of rows."
        )

    @property
    def row_bytes(self):
        """Bytes of one densified float32 row."""
        return 4 * self.shape[1]

    def raw_block(self, start, stop):
        """Rows `start:stop` as stored (CSR or dense), after the transform."""
        block = self.source[start:stop]
        if isinstance(self.source, np.memmap):
            block = np.array(block, dtype=np.float32)
            _release_pages(self.source)
        elif scipy.sparse.issparse(block):
            block = scipy.sparse.csr_matrix(block, dtype=np.float32)
        else:
            block = np.asarray(block, dtype=np.float32)
        if self.transform is not None:
            block = self.transform(block)
        return block

    def read(self, start, stop):
        """Rows `start:stop` as a dense float32 array."""
        start, stop, _ = slice(start, stop).indices(self.shape[0])
        return _densify(self.raw_block(start, max(start, stop)))

    def take(self, rows):
        """The given rows (any order, repeats allowed) as a dense float32 array.

        Reads each needed row once, in file order, through contiguous runs.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < -self.shape[0] or rows.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for {self.shape[0]} rows")
        rows = np.where(rows < 0, rows + self.shape[0], rows)
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.empty((unique.size, self.shape[1]), dtype=np.float32)
        # Contiguous runs of the sorted unique rows, each read in one slice.
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        position = 0
        for run in np.split(unique, breaks):
            if run.size:
                out[position : position + run.size] = self.read(int(run[0]), int(run[-1]) + 1)
                position += run.size
        return out[inverse]

    def __getitem__(self, key):
        if isinstance(key, slice):
            if key.step not in (None, 1):
                return self.take(np.arange(self.shape[0])[key])
            start, stop, _ = key.indices(self.shape[0])
            return self.read(start, stop)
        if isinstance(key, (int, np.integer)):
            return self.take([key])[0]
        return self.take(key)

    def blocks(self, block_rows=None):
        """Yield `(start, dense block)` over all rows, in order."""
        block_rows = block_rows or max(1, SCAN_BYTES // self.row_bytes)
        for start in range(0, self.shape[0], block_rows):
            yield start, self.read(start, min(start + block_rows, self.shape[0]))

    def _scan(self):
        if self._stats is None:
            low, high = np.inf, -np.inf
            for start, block in self.blocks():
                finite = np.isfinite(block)
                if not finite.all():
                    row = start + int(np.argwhere(~finite)[0][0])
                    raise ValueError(
                        f"`{self.name}` contains NaN or infinite values (first in row {row}); "
                        "remove or impute them first."
                    )
                low, high = min(low, float(block.min())), max(high, float(block.max()))
            self._stats = (low, high)
        return self._stats

    def min(self):
        """Smallest value (one scan of the data, cached)."""
        return self._scan()[0]

    def max(self):
        """Largest value (one scan of the data, cached)."""
        return self._scan()[1]

    def map(self, transform, name=None):
        """A new `StreamedMatrix` over the same source with `transform` applied after this one's."""
        if self.transform is None:
            combined = transform
        else:
            first = self.transform

            def combined(block):
                return transform(first(block))

        return StreamedMatrix(self.source, transform=combined, name=name or self.name)


# ----------------------------------------------------------------- batches


def _source_kind(x):
    if isinstance(x, StreamedMatrix):
        return "disk"
    if scipy.sparse.issparse(x):
        return "sparse"
    return "dense"


class RowBatches(keras.utils.PyDataset):
    """Shuffled batches of a matrix for `model.fit`, densified one batch at a time.

    Yields `(batch,)` (an autoencoder's input, which a `ReconstructionModel`
    also takes as its target) or, with `y`, `(batch, y[rows])`. In-memory NumPy arrays and `scipy.sparse` matrices are
    shuffled with one permutation per epoch, drawn from NumPy's global
    generator as Keras does for arrays on JAX (so seeding the run seeds the
    order); on-disk matrices (`StreamedMatrix`) in windows of chunks (see the
    module docstring). Pass `shuffle=False` to `model.fit`: the order is this
    object's.

    Args:
        x: NumPy array, `scipy.sparse` matrix or `StreamedMatrix`.
        batch_size: Rows per batch (before `shard`).
        shuffle: Shuffle every epoch. Without shuffling the rows come in order.
        y: Optional targets (in memory), indexed like the rows of `x`.
        multiple_of: Every batch is cut to a multiple of this (the number of
            data-parallel replicas, which must divide the batch); a last batch
            smaller than it is dropped. Default 1.
        shard: Optional `(index, count)`: this process reads only rows
            `[index * n // count, (index + 1) * n // count)`, every shard cut to
            the same length, with `batch_size // count` rows per batch (multi-host
            data parallelism, one process per host).
        window_bytes: Memory for one window of an on-disk matrix.
        window_chunks: Number of chunks mixed into each window.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset` (threads help hide disk reads).
    """

    def __init__(
        self,
        x,
        batch_size,
        shuffle=True,
        y=None,
        multiple_of=1,
        shard=None,
        window_bytes=DEFAULT_WINDOW_BYTES,
        window_chunks=DEFAULT_WINDOW_CHUNKS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.x = x
        self.y = y
        self.shuffle = bool(shuffle)
        if is_streamed(x):
            x = self.x = as_streamed(x)
        self.kind = _source_kind(x)
        n = int(x.shape[0])
        batch_size = int(batch_size)
        multiple_of = int(multiple_of)
        if batch_size <= 0 or multiple_of <= 0:
            raise ValueError("`batch_size` and `multiple_of` must be positive integers.")
        self.offset, self.n = 0, n
        if shard is not None:
            index, count = (int(v) for v in shard)
            if not 0 <= index < count:
                raise ValueError(f"`shard` must be (index, count) with 0 <= index < count; received {shard!r}.")
            if batch_size % count:
                raise ValueError(
                    f"`batch_size` {batch_size} must be a multiple of the number of processes {count}."
                )
            self.n = n // count
            self.offset = index * self.n
            batch_size //= count
        if batch_size % multiple_of:
            raise ValueError(
                f"`batch_size` {batch_size} must be a multiple of {multiple_of} (the number of "
                "data-parallel replicas), so every replica gets the same number of rows."
            )
        if self.n == 0:
            raise ValueError(f"no rows to batch ({n} rows, shard {shard!r}).")
        self.batch_size = batch_size
        self.multiple_of = multiple_of
        if self.kind == "disk":
            per_chunk = window_bytes // (window_chunks * batch_size * x.row_bytes)
            self.chunk_rows = batch_size * max(1, int(per_chunk))
            self.window_chunks = int(window_chunks)
        self._lock = threading.Lock()
        self._window = (None, None)
        self._plan(shuffled=False)

    # Which rows each batch holds, for the coming epoch: a list of
    # (window, positions in the window) on disk, (None, rows) in memory,
    # each cut to a multiple of `multiple_of`, empty ones left out.
    def _plan(self, shuffled):
        bs, n = self.batch_size, self.n
        batches = []
        if self.kind != "disk":
            order = np.random.permutation(n) if shuffled else np.arange(n)
            batches = [(None, order[s : s + bs]) for s in range(0, n, bs)]
        else:
            n_chunks = -(-n // self.chunk_rows)
            chunks = np.random.permutation(n_chunks) if shuffled else np.arange(n_chunks)
            self._windows = []
            for w in range(0, n_chunks, self.window_chunks):
                members = np.sort(chunks[w : w + self.window_chunks])
                ranges = [
                    (int(c) * self.chunk_rows, min((int(c) + 1) * self.chunk_rows, n))
                    for c in members
                ]
                size = sum(stop - start for start, stop in ranges)
                order = np.random.permutation(size) if shuffled else np.arange(size)
                window = len(self._windows)
                self._windows.append(ranges)
                batches.extend((window, order[s : s + bs]) for s in range(0, size, bs))
            self._window = (None, None)
        m = self.multiple_of
        batches = [(w, rows[: len(rows) - len(rows) % m]) for w, rows in batches]
        self._batches = [(w, rows) for w, rows in batches if len(rows)]

    def __len__(self):
        return len(self._batches)

    def on_epoch_begin(self):
        if self.shuffle:
            self._plan(shuffled=True)

    def _read_window(self, window):
        with self._lock:
            cached, block = self._window
            if cached == window:
                return block
            parts = [self.x.raw_block(self.offset + a, self.offset + b) for a, b in self._windows[window]]
            if any(scipy.sparse.issparse(p) for p in parts):
                block = scipy.sparse.vstack(
                    [scipy.sparse.csr_matrix(p) for p in parts], format="csr"
                )
            else:
                block = np.concatenate(parts, axis=0)
            self._window = (window, block)
            return block

    def _window_rows(self, window, positions):
        """Global row numbers (within the shard) of positions inside a window."""
        ranges = self._windows[window]
        starts = np.cumsum([0] + [b - a for a, b in ranges])
        which = np.searchsorted(starts, positions, side="right") - 1
        return np.asarray([ranges[w][0] for w in which]) + positions - starts[which]

    def __getitem__(self, index):
        if not 0 <= index < len(self._batches):
            raise IndexError(f"batch {index} out of range for {len(self._batches)} batches")
        window, positions = self._batches[index]
        if window is not None:
            batch = _densify(self._read_window(window)[positions])
            rows = self._window_rows(window, positions) if self.y is not None else None
        else:
            rows = positions
            batch = _densify(self.x[rows + self.offset])
        if self.y is None:
            return (batch,)
        return batch, np.asarray(self.y)[rows + self.offset]


# ------------------------------------------------------------------- codes


def _temporary_npy(directory):
    fd, path = tempfile.mkstemp(prefix="tiedae-codes-", suffix=".npy", dir=directory)
    os.close(fd)
    return path


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def stack_rows(blocks, n_rows):
    """The float32 `blocks` (consecutive rows, `n_rows` in all) as one array.

    Written into one array allocated at the first block: the peak is the
    result and one block, where `np.concatenate` of the list held every block
    and the result at once (twice the codes: +206 MiB of peak RSS for the
    1000-wide codes of 54,000 rows).
    """
    out, start = None, 0
    for block in blocks:
        if out is None:
            out = np.empty((n_rows, *block.shape[1:]), dtype=np.float32)
        out[start : start + len(block)] = block
        start += len(block)
    if out is None or start != n_rows:
        raise ValueError(f"expected {n_rows} rows of output, received {start}.")
    return out


def map_rows(fn, x, batch_size, spill=None, directory=None):
    """Apply `fn` (tensor -> tensor) to the rows of `x` in batches.

    Args:
        fn: A function of a `(batch, features)` tensor, e.g. `layer.encode`.
        x: NumPy array, `scipy.sparse` matrix or `StreamedMatrix`.
        batch_size: Rows per call.
        spill: Write the result to a temporary memory-mapped `.npy` file and
            return it as a `StreamedMatrix`, instead of a NumPy array in
            memory. Default: when `x` is a `StreamedMatrix` (on disk).
        directory: Folder of the temporary file (default: the system's, see
            `tempfile.gettempdir`, e.g. `$TMPDIR`).

    Returns:
        A float32 NumPy array, or a `StreamedMatrix` whose file is deleted
        once nothing uses it. Its `min()`/`max()` come for free (tracked while
        writing).
    """
    spill = isinstance(x, StreamedMatrix) if spill is None else spill
    n = x.shape[0]

    def batches():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            if isinstance(x, StreamedMatrix):
                block = x.read(start, stop)
            else:
                block = _densify(x[start:stop])
            out = fn(keras.ops.convert_to_tensor(block))
            yield np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)

    if not spill:
        return stack_rows(batches(), n)
    path = _temporary_npy(directory)
    try:
        low, high = np.inf, -np.inf
        with open(path, "wb") as handle:
            header_written = False
            for out in batches():
                if not header_written:
                    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                              "fortran_order": False, "shape": (n, int(out.shape[1]))}
                    np.lib.format.write_array_header_2_0(handle, header)
                    header_written = True
                if not np.isfinite(out).all():
                    raise ValueError("the codes contain NaN or infinite values; lower the learning rate.")
                low, high = min(low, float(out.min())), max(high, float(out.max()))
                handle.write(np.ascontiguousarray(out).tobytes())
        codes = np.load(path, mmap_mode="r")
    except BaseException:
        _remove(path)
        raise
    matrix = StreamedMatrix(codes, name="codes", _stats=(low, high))
    if os.name == "posix":
        _remove(path)  # the map keeps the data alive; the disk space returns with it
    else:  # pragma: no cover - Windows cannot delete a mapped file
        matrix._finalizer = weakref.finalize(matrix, _remove, path)
    return matrix


def dense_rows(x, start, stop):
    """Rows `start:stop` of any supported matrix as a dense float32 array."""
    if isinstance(x, StreamedMatrix):
        return x.read(start, stop)
    return _densify(x[start:stop])
