"""The training data: rows on the device, or read from a memmap batch by batch.

:class:`TrainingData` is what a fit trains on: the validated rows and, for
the models that learn from labels, the per-row conditions (one-hot labels)
that travel with them. Neither the estimator nor the training loop branches
on where the rows are or whether labels exist: they split, move, shard and
batch a :class:`TrainingData`, and a batch is always ``(x, c)`` with ``c``
None for a model without labels.

Where the rows live is decided once, by ``VAETransformer(data_on_device=...)``:
either the engine's fast path (the whole training set copied to the device
once, batches taken by index) or :class:`HostRows`: the rows stay in their
host array (typically a :class:`numpy.memmap` of a file larger than memory)
and each minibatch is read from it and copied to the device on its own.

:class:`HostRows` looks to the engine like the device tensor it otherwise
gets: ``shape``, ``device`` and indexing by a device index tensor (the
epoch's permutation) or by a slice (validation). A batch's rows are read in
increasing file order (the indices sorted, for locality and the kernel's
read-ahead) and then put back in the permutation's order, so that a batch
holds exactly the rows, in exactly the order, that the in-memory path would
use: with the same ``random_state`` both paths give the same model (bit for
bit on the same CPU kernels).

Validation (:func:`scan`) reads the array in chunks of about
:data:`CHUNK_BYTES`, never the whole.

Pages of a memory map that were read count in the process's resident set
(RSS) until the kernel reclaims them, and the kernel maps neighbouring
pages with each one read ("fault-around", 64 KiB), so that reading a random
minibatch through the map soon maps the whole file. Rows of a shared,
file-backed map (numpy modes "r", "r+", "w+", with contiguous rows) are
therefore read from its file with positioned reads (``os.preadv``, one per
run of consecutive rows) straight into the batch's buffer: they go through
the page cache, never into the process. This reads what the map shows,
since a shared map's writes go to the same page cache. Otherwise (a
copy-on-write map, mode "c", whose changes are only in memory; rows that
are not contiguous; no ``os.preadv``) rows are read through the map, and
the pages of a shared map are dropped from the process with
``madvise(MADV_DONTNEED)`` every :data:`RELEASE_BYTES` bytes read (the data
stay in the file and the page cache).
"""

import hashlib
import math
import mmap
import os

import numpy as np
import torch


#: Bytes per chunk of a validation pass.
CHUNK_BYTES = 4 << 20
#: Bytes read from a memory map between two releases of its pages.
RELEASE_BYTES = 16 << 20
_PAGE = mmap.PAGESIZE


class PageReleaser:
    """Drop the read pages of a shared memory map from the process every so often.

    Parameters
    ----------
    array : ndarray
        A :class:`numpy.memmap` (or a view of one); anything else makes a
        releaser that does nothing.
    budget : int, default=RELEASE_BYTES
        Bytes read between two releases.
    """

    def __init__(self, array, budget=RELEASE_BYTES):
        mapping = getattr(array, "_mmap", None)
        shared = getattr(array, "mode", None) in ("r", "r+", "w+")
        self._mmap = mapping if shared and hasattr(mapping, "madvise") else None
        self.budget = budget
        self._read = 0

    def touched(self, nbytes):
        """Count ``nbytes`` read; release the pages when the budget is spent."""
        if self._mmap is None:
            return
        self._read += nbytes
        if self._read >= self.budget:
            self.release()

    def release(self):
        """Drop the map's resident pages from this process now."""
        self._read = 0
        if self._mmap is None:
            return
        try:
            self._mmap.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError, ValueError):  # closed, or not supported
            self._mmap = None


class FileRows:
    """Positioned reads of the rows of a shared memmap from its file.

    Use :meth:`of`, which returns None where this does not apply.
    """

    def __init__(self, path, first_row, row_stride, row_bytes):
        self._file = open(path, "rb", buffering=0)  # closed when collected
        self.first_row = first_row
        self.row_stride = row_stride
        self.row_bytes = row_bytes

    @classmethod
    def of(cls, array):
        """A reader for ``array`` (a 2-D memmap or a view of one), or None."""
        mapping = getattr(array, "_mmap", None)
        if (
            not isinstance(array, np.memmap)
            or mapping is None
            or getattr(array, "mode", None) not in ("r", "r+", "w+")
            or not getattr(array, "filename", None)
            or array.ndim != 2
            or array.strides[1] != array.itemsize
            or array.strides[0] <= 0
            or not hasattr(os, "preadv")
        ):
            return None
        try:
            base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
        except (TypeError, ValueError):  # a closed map
            return None
        # numpy maps the file from offset rounded down to the allocation granularity.
        map_start = array.offset - array.offset % mmap.ALLOCATIONGRANULARITY
        first_row = map_start + (array.ctypes.data - base)
        try:
            return cls(array.filename, first_row, array.strides[0],
                       array.shape[1] * array.itemsize)
        except OSError:
            return None

    def _read_into(self, buffer, position):
        view = memoryview(buffer).cast("B")
        while view.nbytes:
            n = os.preadv(self._file.fileno(), [view], position)
            if n <= 0:
                raise OSError(f"unexpected end of file reading {self._file.name!r}")
            view, position = view[n:], position + n

    def read(self, sorted_rows, out):
        """Read rows (increasing indices) into ``out``, a C-contiguous array."""
        if sorted_rows.shape[0] == 0:
            return
        if self.row_stride == self.row_bytes:  # runs of consecutive rows: one read each
            breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
            starts = np.concatenate(([0], breaks))
            stops = np.concatenate((breaks, [sorted_rows.shape[0]]))
        else:
            starts = np.arange(sorted_rows.shape[0])
            stops = starts + 1
        for a, b in zip(starts.tolist(), stops.tolist()):
            self._read_into(out[a:b], self.first_row + int(sorted_rows[a]) * self.row_stride)


def chunk_rows(n_features, itemsize, chunk_bytes=CHUNK_BYTES):
    """Rows per chunk of about ``chunk_bytes`` bytes (at least 1)."""
    return max(1, chunk_bytes // max(1, n_features * itemsize))


class HostRows:
    """Rows of a 2-D host array, handed to the device one batch at a time.

    Parameters
    ----------
    array : ndarray of shape (n_rows, n_features)
        The data, usually a :class:`numpy.memmap`; never copied whole.
    dtype : numpy dtype
        The validated dtype (float32 or float64): chunks for checks and
        digests are converted to it; batches for training go to float32.
    rows : ndarray of int or None, default=None
        Which rows of ``array`` this object holds, in order (a train or
        validation split); None for all of them.
    device : torch.device or None, default=None
        Where batches go.
    releaser : PageReleaser or None, default=None
        Shared by the splits of one array; made from ``array`` when None.

    Examples
    --------
    >>> import numpy as np, torch
    >>> data = HostRows(np.arange(12.0).reshape(6, 2), np.float64, device=torch.device("cpu"))
    >>> data.shape
    (6, 2)
    >>> data[torch.tensor([4, 1])]
    tensor([[8., 9.],
            [2., 3.]])
    >>> data.subset(np.array([5, 0]))[0:1]
    tensor([[10., 11.]])
    """

    #: (min, max) of the values, set by validation.
    value_range = None
    #: Non-NaN values per feature, set by validation with missing values.
    observed_count = None

    def __init__(self, array, dtype, rows=None, device=None, releaser=None, reader=False):
        self.array = array
        self.dtype = np.dtype(dtype)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.device = device
        self.releaser = PageReleaser(array) if releaser is None else releaser
        self.reader = FileRows.of(array) if reader is False else reader
        n = array.shape[0] if self.rows is None else self.rows.shape[0]
        self.shape = (n, array.shape[1])
        # Pages a scattered row may touch: its bytes plus one page.
        self._row_cost = array.shape[1] * array.dtype.itemsize + _PAGE

    def __len__(self):
        return self.shape[0]

    def subset(self, rows):
        """The rows at positions ``rows`` of this object (same array, no copy)."""
        rows = np.asarray(rows, dtype=np.int64)
        mapped = rows if self.rows is None else self.rows[rows]
        return HostRows(self.array, self.dtype, mapped, self.device, self.releaser, self.reader)

    def to(self, device):
        """The same rows, with batches going to ``device``."""
        return HostRows(
            self.array, self.dtype, self.rows, torch.device(device), self.releaser, self.reader
        )

    def read(self, index):
        """Rows at positions ``index`` (slice or integer array), as a numpy array."""
        if isinstance(index, slice) and self.rows is None:
            if self.reader is not None:
                rows = np.arange(self.shape[0], dtype=np.int64)[index]
                if rows.shape[0] < 2 or np.all(np.diff(rows) == 1):
                    part = np.empty((rows.shape[0], self.shape[1]), dtype=self.array.dtype)
                    self.reader.read(rows, part)
                    return part
            part = np.array(self.array[index])  # a copy: never a view of the file
            self.releaser.touched(part.nbytes)
            return part
        if isinstance(index, slice):
            rows = self.rows[index]
        else:
            rows = np.asarray(index, dtype=np.int64).reshape(-1)
            if self.rows is not None:
                rows = self.rows[rows]
        order = np.argsort(rows, kind="stable")
        # Read in file order (locality), store in the requested order.
        if self.reader is not None:
            in_file_order = np.empty((rows.shape[0], self.shape[1]), dtype=self.array.dtype)
            self.reader.read(rows[order], in_file_order)
        else:
            in_file_order = self.array[rows[order]]
            self.releaser.touched(rows.shape[0] * self._row_cost)
        part = np.empty((rows.shape[0], self.shape[1]), dtype=self.array.dtype)
        part[order] = in_file_order
        return part

    def __getitem__(self, index):
        """A float32 batch on ``device``: rows at a slice or an index tensor/array."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        return to_tensor(self.read(index), self.device)

    def chunks(self, chunk_bytes=CHUNK_BYTES):
        """Yield consecutive chunks of rows, converted to ``dtype``, pages released."""
        step = chunk_rows(self.shape[1], max(self.dtype.itemsize, self.array.dtype.itemsize),
                          chunk_bytes)
        for start in range(0, self.shape[0], step):
            yield np.asarray(self.read(slice(start, start + step)), dtype=self.dtype)
        self.releaser.release()


def scan(data, estimator_name, check_finite=True, allow_nan=False):
    """Check a :class:`HostRows` chunk by chunk; return its (min, max).

    Raises the ValueError of :func:`sklearn.utils.assert_all_finite` (the
    message of the in-memory path) on NaN or infinite values. With
    ``allow_nan`` (missing values), NaN passes, the range is that of the
    other values, and ``data.observed_count`` is set to the number of
    non-NaN values of each feature.
    """
    from sklearn.utils import assert_all_finite

    low, high = np.inf, -np.inf
    observed = np.zeros(data.shape[1], dtype=np.int64) if allow_nan else None
    for chunk in data.chunks():
        if check_finite and chunk.dtype.kind in "fc":
            assert_all_finite(
                chunk, allow_nan=allow_nan, estimator_name=estimator_name, input_name="X"
            )
        if allow_nan:
            observed += (~np.isnan(chunk)).sum(axis=0)
        chunk_low, chunk_high = value_range(chunk, allow_nan)
        low, high = min(low, chunk_low), max(high, chunk_high)
    if allow_nan:
        data.observed_count = observed
    return low, high


def value_range(X, allow_nan=False):
    """(min, max) of X's values; NaN ignored with ``allow_nan``; (inf, -inf) if none.

    Examples
    --------
    >>> value_range(np.array([[np.nan, 2.0], [0.5, np.nan]]), allow_nan=True)
    (0.5, 2.0)
    """
    if allow_nan:
        X = X[~np.isnan(X)]
    if not X.size:
        return np.inf, -np.inf
    return float(np.min(X)), float(np.max(X))


def observed_values(X):
    """X with each NaN replaced by its column's smallest value, for the domain check.

    A domain check is a condition on each value of a column (a likelihood
    may model each column differently, as ``ColumnLikelihood`` does), so
    that an observed value of the same column standing in for the missing
    ones passes or fails with them; a column with no observed value takes
    X's smallest value. None when X has no observed value (nothing to check).

    Examples
    --------
    >>> observed_values(np.array([[np.nan, 3.0], [1.0, 2.0], [0.0, np.nan]]))
    array([[0., 3.],
           [1., 2.],
           [0., 2.]])
    """
    nan = np.isnan(X)
    if not nan.any():
        return X
    if nan.all():
        return None
    low = np.fmin.reduce(X, axis=0)  # NaN only for a column with no observed value
    low = np.where(np.isnan(low), np.nanmin(X), low).astype(X.dtype, copy=False)
    return np.where(nan, low, X)


def mean_filled(X):
    """X with each NaN replaced by its feature's mean (0 for a feature with none).

    What a likelihood's ``check_training_data`` (a warning about the scale
    of the features) sees when X has missing values.

    Examples
    --------
    >>> mean_filled(np.array([[np.nan, 3.0], [1.0, np.nan], [3.0, np.nan]]))
    array([[2., 3.],
           [1., 3.],
           [3., 3.]])
    """
    nan = np.isnan(X)
    if not nan.any():
        return X
    counts = (~nan).sum(axis=0)
    means = np.where(nan, 0, X).sum(axis=0) / np.maximum(counts, 1)
    return np.where(nan, means.astype(X.dtype), X)


def check_data(likelihood, X, missing=False):
    """``likelihood.check_data(X)``; with ``missing``, on its observed values only."""
    if missing:
        X = observed_values(X)
        if X is None:
            return
    likelihood.check_data(X)


def check_likelihood(likelihood, data, missing=False):
    """Run ``likelihood.check_data`` on each chunk of a :class:`HostRows`.

    A likelihood's domain check is a condition on each value (such as "in
    [0, 1]" or "non-negative integers"), so that checking every chunk checks
    the whole; an error describes the first chunk that fails. With
    ``missing``, NaN entries are left out (:func:`observed_values`).
    """
    for chunk in data.chunks():
        check_data(likelihood, chunk, missing)


def to_tensor(array, device, rows=None):
    """Copy a 2-D numpy array (or a slice of a memmap) to a float32 tensor on ``device``.

    With ``rows``, the result is padded with zero rows to exactly that many.

    Examples
    --------
    >>> import numpy as np, torch
    >>> to_tensor(np.ones((2, 3)), torch.device("cpu"), rows=4).shape
    torch.Size([4, 3])
    """
    array = np.ascontiguousarray(array, dtype=np.float32)
    if rows is not None and array.shape[0] < rows:
        padded = np.zeros((rows,) + array.shape[1:], dtype=np.float32)
        padded[: array.shape[0]] = array
        array = padded
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).to(device)


class TrainingData:
    """Training rows with their optional per-row conditions, on the host or on a device.

    Parameters
    ----------
    rows : ndarray, HostRows or Tensor of shape (n_rows, n_features)
        Validated rows: an array (in memory), a :class:`HostRows` (streamed
        from its host array) or, after :meth:`to`, a device tensor.
    conditions : ndarray, Tensor or None, default=None
        The per-row conditions of a model that learns from labels, float32
        of shape (n_rows, width); None for a model without labels. An
        unlabelled row (y == -1) has the all-zero condition
        (:attr:`has_unlabelled`).
    labelled_share : float or None, default=None
        With labelled and unlabelled rows: the share of labelled rows that
        :meth:`epoch_order` gives an epoch, labelled rows repeated to reach
        it (None: every row once).

    Examples
    --------
    >>> import numpy as np, torch
    >>> data = TrainingData(np.arange(12.0).reshape(6, 2), np.eye(6, 2, dtype=np.float32))
    >>> train, val = data.split(0.5, seed=0)
    >>> len(train), len(val)
    (3, 3)
    >>> x, c = train.to(torch.device("cpu")).batch(torch.tensor([0, 1]))
    >>> x.shape, c.shape
    (torch.Size([2, 2]), torch.Size([2, 2]))
    >>> TrainingData(np.zeros((3, 2))).to("cpu").batch(slice(0, 2))[1] is None
    True
    """

    #: Whether NaN entries are missing values (set by the estimator): the
    #: checks then look at the observed values only.
    missing = False

    def __init__(self, rows, conditions=None, missing=False, labelled_share=None):
        self.rows = rows
        self.conditions = conditions
        self.missing = missing
        self.labelled_share = labelled_share
        self._labelled_split = None  # (labelled, unlabelled) row indices, on the device

    def __len__(self):
        return self.rows.shape[0]

    @property
    def n_features(self):
        return self.rows.shape[1]

    @property
    def has_unlabelled(self):
        """Whether some row's condition is all zero: an unlabelled row (y == -1).

        The models that learn from labels give an unlabelled row the
        all-zero condition; computed on the host conditions (no device
        synchronisation once they are on a device: call it before).
        """
        conditions = self.conditions
        if conditions is None or not len(conditions):
            return False
        if isinstance(conditions, torch.Tensor):
            return bool((conditions.abs().sum(dim=1) == 0).any())
        return bool((np.abs(conditions).sum(axis=1) == 0).any())

    @property
    def streamed(self):
        """Whether the rows are read from a host array batch by batch."""
        return isinstance(self.rows, HostRows)

    @property
    def device(self):
        return getattr(self.rows, "device", None)

    # ------------------------------------------------------- on the host
    def split(self, validation_fraction, seed):
        """Return (train, validation), the validation rows drawn from ``seed``."""
        n = len(self)
        n_val = int(math.ceil(validation_fraction * n))
        if n - n_val < 1 or n_val < 1:
            raise ValueError(
                f"early_stopping needs at least 2 samples to hold out "
                f"validation_fraction={validation_fraction} of them; got {n} samples."
            )
        perm = np.random.RandomState(seed).permutation(n)
        return self.take(perm[n_val:]), self.take(perm[:n_val])

    def take(self, index):
        """The rows (and conditions) at positions ``index`` (an integer array or CPU tensor)."""
        if isinstance(index, torch.Tensor) and not isinstance(self.rows, torch.Tensor):
            index = index.numpy()
        return TrainingData(
            _take(self.rows, index), _take(self.conditions, index), missing=self.missing,
            labelled_share=self.labelled_share,
        )

    def head(self, n):
        """The first ``n`` rows (and conditions)."""
        return TrainingData(
            self.rows[:n], None if self.conditions is None else self.conditions[:n],
            missing=self.missing,
        )

    def to(self, device):
        """The same data with batches on ``device`` (arrays copied there once)."""
        device = torch.device(device)
        rows = self.rows.to(device) if isinstance(self.rows, (HostRows, torch.Tensor)) else (
            to_tensor(self.rows, device)
        )
        conditions = self.conditions
        if conditions is not None and not isinstance(conditions, torch.Tensor):
            conditions = to_tensor(conditions, device)
        return TrainingData(rows, conditions, missing=self.missing,
                            labelled_share=self.labelled_share)

    def value_range(self):
        """(min, max) of the values (of every chunk, for streamed rows)."""
        if self.streamed:
            return self.rows.value_range
        if self.missing:
            return value_range(self.rows, allow_nan=True)
        return float(np.min(self.rows)), float(np.max(self.rows))

    def check_likelihood(self, likelihood):
        """``likelihood.check_data`` on the rows (chunk by chunk when streamed)."""
        if self.streamed:
            check_likelihood(likelihood, self.rows, self.missing)
        else:
            check_data(likelihood, self.rows, self.missing)

    def check_training(self, likelihood):
        """``likelihood.check_training_data`` (on the first chunk when streamed)."""
        check = getattr(likelihood, "check_training_data", None)  # plugins made before the hook
        if check is not None:
            rows = next(iter(self.rows.chunks())) if self.streamed else self.rows
            check(mean_filled(rows) if self.missing else rows)

    def empty_features(self):
        """Indices of the features with no observed (non-NaN) value; needs ``missing``."""
        if self.streamed:
            counts = self.rows.observed_count
        else:
            counts = (~np.isnan(self.rows)).sum(axis=0)
        return np.flatnonzero(counts == 0)

    def digest(self):
        """SHA-256 of the rows and conditions (dtype, shape and bytes).

        Streamed rows are hashed chunk by chunk, to the digest of the array
        they hold once validated in memory.
        """
        digest = hashlib.sha256()
        for array in (self.rows, self.conditions):
            if array is None:
                continue
            if isinstance(array, HostRows):
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                for chunk in array.chunks():
                    digest.update(memoryview(np.ascontiguousarray(chunk)).cast("B"))
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(memoryview(array).cast("B"))
        return digest.hexdigest()

    # ----------------------------------------------------- on the device
    def epoch_order(self, generator):
        """The rows of one epoch, in a random order: an index tensor on the device.

        Every row once (a permutation), or, with :attr:`labelled_share` above
        the labelled rows' own share, every unlabelled row once and labelled
        rows in turn (each as often as the others, to within one) until they
        make up that share of the epoch. Drawn from ``generator``; no host
        synchronisation after the first call.
        """
        n, device = len(self), self.device
        split = self._split_labelled() if self.labelled_share else None
        if split is None:
            return torch.randperm(n, generator=generator, device=device)
        labelled, unlabelled = split
        share = self.labelled_share
        draws = int(round(share / (1.0 - share) * len(unlabelled)))
        if draws <= len(labelled):  # the rows' own share reaches it
            return torch.randperm(n, generator=generator, device=device)
        # Rounds of the labelled rows, each round in its own random order (one
        # permutation per row of ``keys``), cut at ``draws``.
        rounds = -(-draws // len(labelled))
        keys = torch.rand((rounds, len(labelled)), generator=generator, device=device)
        repeats = labelled[keys.argsort(dim=1)].flatten()[:draws]
        order = torch.cat([unlabelled, repeats])
        return order[torch.randperm(len(order), generator=generator, device=device)]

    def _split_labelled(self):
        """(labelled, unlabelled) row indices on the device, or None when a kind is
        missing; computed once (one synchronisation)."""
        if self._labelled_split is None:
            conditions = self.conditions
            if conditions is None:
                self._labelled_split = ()
            else:
                known = conditions.abs().sum(dim=1) != 0
                labelled, unlabelled = known.nonzero().flatten(), (~known).nonzero().flatten()
                both = len(labelled) and len(unlabelled)
                self._labelled_split = (labelled, unlabelled) if both else ()
        return self._labelled_split or None

    def batch(self, index):
        """Rows ``index`` (a device index tensor or a slice) and their conditions, or None."""
        conditions = self.conditions
        return self.rows[index], None if conditions is None else conditions[index]


def _take(data, index):
    """Rows ``index`` of an array, a tensor or a HostRows (no copy of the latter)."""
    if data is None:
        return None
    if isinstance(data, HostRows):
        return data.subset(np.asarray(index))
    if isinstance(data, torch.Tensor):
        return data[torch.as_tensor(index).to(data.device)]
    return data[index]
