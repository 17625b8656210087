"""Data sets for VAEs, loaded the scikit-learn way.

Every loader returns a :class:`sklearn.utils.Bunch` with

- ``data``: ``float32`` array of shape ``(n_samples, n_features)``, one flattened
  image per row, scaled to ``[0, 1]`` by default (``scaled=False`` keeps the raw
  pixel counts, as ``float32``, for count likelihoods such as ``poisson``);
- ``target``: ``int64`` labels of shape ``(n_samples,)``;
- ``images``: the same values as images, ``(n, height, width)`` or
  ``(n, height, width, channels)``;
- ``target_names``, ``feature_names`` and ``DESCR``;

or ``(data, target)`` with ``return_X_y=True``.

==========================  =======  =========  ================================
loader                      samples  features   source
==========================  =======  =========  ================================
:func:`load_digits`         1,797    64         ships with scikit-learn (default)
:func:`load_mnist`          70,000   784        IDX files, downloaded once
:func:`load_fashion_mnist`  70,000   784        IDX files, Debian package or download
:func:`load_cifar10`        60,000   3072/1024  python tarball, downloaded once
:func:`load_textures`       any      784        patches of images you have
==========================  =======  =========  ================================

Where files are looked for
--------------------------
The file loaders look, in this order, in the sub-folder named after the data set
(``mnist``, ``fashion-mnist``, ``cifar-10``) of

1. the ``data_home`` argument;
2. the folder named by the ``SKVAE_DATA`` environment variable;
3. the cache folder ``~/skvae_data`` (see :func:`get_data_home`);
4. for Fashion-MNIST, ``/usr/share/datasets`` where Debian's package
   ``dataset-fashion-mnist`` puts the files.

The first folder holding every file needed wins. IDX files are read gzipped
(``train-images-idx3-ubyte.gz``) or not (``train-images-idx3-ubyte``); CIFAR-10 as
``cifar-10-python.tar.gz`` or as the folder ``cifar-10-batches-py`` it unpacks to.
Files found this way are parsed and validated but not checksummed: copies made
by others are often recompressed (Debian's are), so their bytes differ from the
published downloads even when the data are the same.

When nothing is found and ``download_if_missing=True`` (the default), the missing
files are downloaded with :mod:`urllib` into ``get_data_home(data_home)``: each to
a temporary file that is checked against the published SHA-256 digest and only
then renamed into place, so a failed or forged download leaves nothing behind.
Otherwise a :class:`FileNotFoundError` lists every folder looked in and how to
get the files.

CIFAR-10's python files are pickles. They are read with a restricted unpickler
that rebuilds numpy arrays and nothing else: a pickle that names any other
function or class (``os.system``, say) is refused before anything runs.

Data by name or from a file
---------------------------
:func:`load` takes what ``skvae fit --data`` and ``skvae encode`` take: the
name of a data set above (:data:`DATASET_NAMES`) or the path of a ``.npy`` or
``.csv`` file holding a 2-D array, and returns a :class:`Dataset` (samples,
labels, the shape of a sample as an image, the data set's own test split);
:func:`split` holds out a test set and subsamples it.
"""

import gzip
import hashlib
import http.client
import logging
import math
import os
import pickle
import struct
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections import namedtuple
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "data_name",
    "get_data_home",
    "load",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_textures",
    "split",
]

logger = logging.getLogger(__name__)

#: Root of Debian's data set packages (``dataset-fashion-mnist``).
_DEBIAN_DATASETS = "/usr/share/datasets"

_SUBSETS = ("train", "test", "all")

#: One file to download: its name in the cache, the URLs to try in order, the
#: published SHA-256 digest of the file as served and its size in bytes.
_Remote = namedtuple("_Remote", ["filename", "urls", "sha256", "size"])

# ---------------------------------------------------------------------------
# Published digests. Sources (checked against each other, see the tests):
# - Fashion-MNIST: tensorflow/datasets url_checksums/fashion_mnist.txt (sizes
#   match the upstream README); the digests of the decompressed IDX payloads are
#   published by several projects and match Debian's dataset-fashion-mnist here.
# - MNIST: tensorflow/datasets url_checksums/mnist.txt (CVDF mirror of LeCun's
#   files; torchvision's ossci mirror serves the same files, md5 as LeCun's).
# - CIFAR-10: the digest Keras' cifar10.load_data passes to get_file.
# ---------------------------------------------------------------------------
_FASHION_URLS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
_MNIST_URLS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)


def _idx_remotes(base_urls, table):
    return {
        name: _Remote(name, tuple(base + name for base in base_urls), sha256, size)
        for name, (sha256, size) in table.items()
    }


_FASHION_REMOTES = _idx_remotes(
    _FASHION_URLS,
    {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            26421880,
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            29515,
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            4422102,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            5148,
        ),
    },
)

#: SHA-256 of the decompressed Fashion-MNIST IDX files (the data, whoever
#: compressed them). Debian's recompressed copies decompress to exactly these.
_FASHION_RAW_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

_MNIST_REMOTES = _idx_remotes(
    _MNIST_URLS,
    {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            9912422,
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            28881,
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            1648877,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            4542,
        ),
    },
)

_CIFAR10_REMOTE = _Remote(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    170498071,
)

#: (images file, labels file) of each IDX subset.
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

#: ITU-R BT.601 luma weights: the grey of CIFAR-10 and of colour texture images.
_LUMA = (0.299, 0.587, 0.114)


# ---------------------------------------------------------------------------
# Where the data live
# ---------------------------------------------------------------------------
def _data_home(data_home=None):
    """The folder downloads go to, without creating it."""
    if data_home is None:
        data_home = os.environ.get("SKVAE_DATA") or os.path.join("~", "skvae_data")
    return os.path.expanduser(os.fspath(data_home))


def get_data_home(data_home=None):
    """Return the path of the skvae data folder, creating it if needed.

    Downloaded data sets are cached there so that they are fetched once. The
    folder is ``data_home`` when given, otherwise the ``SKVAE_DATA`` environment
    variable when set, otherwise ``~/skvae_data``; ``~`` is expanded to the home
    folder (the same rule as :func:`sklearn.datasets.get_data_home`). Each data
    set lives in a sub-folder: ``mnist``, ``fashion-mnist``, ``cifar-10``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. ``None`` means ``$SKVAE_DATA`` or ``~/skvae_data``.

    Returns
    -------
    data_home : str
        The path of the data folder, which exists on return.

    Examples
    --------
    >>> import os, tempfile
    >>> from skvae.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = get_data_home(os.path.join(tmp, "skvae_data"))
    ...     print(os.path.isdir(path), os.path.basename(path))
    True skvae_data
    """
    path = _data_home(data_home)
    os.makedirs(path, exist_ok=True)
    return path


def _places(folder, data_home, debian_package=None):
    """Folders to look in, in order, as ``(path, why)`` pairs without repeats."""
    candidates = []
    if data_home is not None:
        candidates.append((data_home, "the data_home argument"))
    env = os.environ.get("SKVAE_DATA")
    if env:
        candidates.append((env, "the SKVAE_DATA environment variable"))
    candidates.append((os.path.join("~", "skvae_data"), "the default cache folder"))
    if debian_package is not None:
        candidates.append((_DEBIAN_DATASETS, f"Debian's package {debian_package}"))
    places, seen = [], set()
    for root, why in candidates:
        path = os.path.join(os.path.expanduser(os.fspath(root)), folder)
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            places.append((path, why))
    return places


class _Spec(namedtuple("_Spec", ["title", "folder", "what", "remotes", "debian_package"])):
    """What a loader looks for: used for searching, downloading and errors."""


def _resolve(spec, data_home, download_if_missing, find):
    """Return ``find(folder)`` for the first folder where it is not None.

    Downloads ``spec.remotes`` into ``get_data_home(data_home)/spec.folder`` when
    nothing is found and ``download_if_missing``; otherwise raises a
    :class:`FileNotFoundError` that lists every folder looked in.
    """
    places = _places(spec.folder, data_home, spec.debian_package)
    for path, _ in places:
        if os.path.isdir(path):
            found = find(path)
            if found is not None:
                return found
    target = os.path.join(_data_home(data_home), spec.folder)
    if not download_if_missing:
        raise FileNotFoundError(
            _not_found_message(spec, places, target, "download_if_missing=False, so nothing was downloaded.")
        )
    missing = [
        remote
        for remote in spec.remotes
        if not any(os.path.isfile(os.path.join(target, name)) for name in _local_names(remote.filename))
    ]
    try:
        os.makedirs(target, exist_ok=True)
        for remote in missing:
            _fetch(remote, target)
    except _DownloadError as exc:
        raise FileNotFoundError(_not_found_message(spec, places, target, f"The download failed: {exc}")) from exc
    found = find(target)
    if found is None:  # pragma: no cover - the downloads are checked files
        raise FileNotFoundError(_not_found_message(spec, places, target, "The downloaded files are incomplete."))
    return found


def _local_names(filename):
    """A ``.gz`` file may also be found decompressed."""
    return (filename, filename[:-3]) if filename.endswith(".gz") else (filename,)


def _not_found_message(spec, places, target, reason):
    lines = [f"{spec.title}: {spec.what} not found. Looked in:"]
    lines += [f"  - {path}  ({why})" for path, why in places]
    lines.append(reason)
    lines.append("To get the files, do one of:")
    megabytes = sum(remote.size for remote in spec.remotes) / 1e6
    lines.append(
        f"  - call again with download_if_missing=True: downloads {megabytes:.1f} MB into "
        f"{target}, checked against published SHA-256 digests;"
    )
    if spec.debian_package:
        lines.append(f"  - on Debian or Ubuntu: sudo apt-get install {spec.debian_package};")
    urls = sorted({remote.urls[0].rsplit("/", 1)[0] + "/" for remote in spec.remotes})
    lines.append(
        f"  - download {', '.join(r.filename for r in spec.remotes)} from {' or '.join(urls)} "
        f"yourself and put the file(s) in one of the folders above (or set SKVAE_DATA=/some/folder "
        f"and put them in /some/folder/{spec.folder})."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------
class _DownloadError(OSError):
    """Every URL of a file failed for network reasons."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(remote, folder):
    """Download ``remote`` into ``folder``, atomically and checked; return its path.

    Each URL is tried in turn. The bytes go to a temporary file in ``folder``
    whose SHA-256 digest must equal ``remote.sha256``; only then is it renamed to
    ``remote.filename``. A mismatch raises :class:`OSError` (after trying the
    other URLs) and network errors :class:`_DownloadError`; either way the
    temporary file is removed.
    """
    path = os.path.join(folder, remote.filename)
    failures, mismatch = [], False
    for url in remote.urls:
        logger.info("Downloading %s to %s", url, path)
        fd, tmp = tempfile.mkstemp(prefix=f".{remote.filename}.", suffix=".part", dir=folder)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                request = urllib.request.Request(url, headers={"User-Agent": "skvae (python urllib)"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
            if digest.hexdigest() != remote.sha256:
                mismatch = True
                failures.append(
                    f"{url}: SHA-256 mismatch: expected {remote.sha256}, got {digest.hexdigest()} "
                    f"({size} bytes, expected {remote.size}); the file was discarded"
                )
                continue
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            return path
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    detail = "; ".join(failures)
    if mismatch:
        raise OSError(f"Could not download {remote.filename} intact: {detail}")
    raise _DownloadError(f"{remote.filename}: {detail}")


# ---------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)
# ---------------------------------------------------------------------------
#: IDX type codes (third byte of the magic number) to big-endian numpy types.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path):
    """Read an IDX file, gzipped when its name ends in ``.gz``, as a numpy array.

    Raises
    ------
    ValueError
        If the file is not valid gzip, or not a valid IDX file: bad magic number,
        unknown type code, truncated header or data, or bytes left over.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path} is corrupt or truncated: not a valid gzip file ({exc}).") from exc
    return _parse_idx(raw, path)


def _parse_idx(raw, source):
    if len(raw) < 4:
        raise ValueError(f"{source} is not an IDX file: {len(raw)} bytes, fewer than the 4-byte magic number.")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or code not in _IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{source} is not an IDX file: magic number 0x{raw[:4].hex()}; expected two zero "
            "bytes, a type code (0x08 for unsigned bytes) and the number of dimensions."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{source} is truncated: its header needs {header} bytes, the file has {len(raw)}.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[code])
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(
            f"{source} is {state}: dimensions {dims} need {expected} bytes, the file has {len(raw)}."
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _find_idx(names):
    """A ``find`` for :func:`_resolve`: paths of ``names`` (or their .gz-less twins)."""

    def find(folder):
        paths = []
        for name in names:
            for candidate in _local_names(name):
                path = os.path.join(folder, candidate)
                if os.path.isfile(path):
                    paths.append(path)
                    break
            else:
                return None
        return paths

    return find


def _check_subset(subset):
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}; got {subset!r}.")
    return ("train", "test") if subset == "all" else (subset,)


def _load_idx_dataset(title, folder, remotes, debian_package, subset, data_home,
                      download_if_missing, scaled):
    parts = _check_subset(subset)
    names = [name for part in parts for name in _IDX_FILES[part]]
    spec = _Spec(
        title, folder, f"the {subset!r} files ({', '.join(names)}, or the same without .gz)",
        [remotes[name] for name in names], debian_package,
    )
    paths = _resolve(spec, data_home, download_if_missing, _find_idx(names))
    images, labels = [], []
    for images_path, labels_path in zip(paths[::2], paths[1::2]):
        x = _read_idx(images_path)
        y = _read_idx(labels_path)
        if x.ndim != 3 or x.dtype != np.uint8:
            raise ValueError(
                f"{images_path} is not an IDX image file: expected unsigned bytes in 3 "
                f"dimensions (magic number 0x00000803), got {x.dtype} in {x.ndim}."
            )
        if y.ndim != 1 or y.dtype != np.uint8:
            raise ValueError(
                f"{labels_path} is not an IDX label file: expected unsigned bytes in 1 "
                f"dimension (magic number 0x00000801), got {y.dtype} in {y.ndim}."
            )
        if len(x) != len(y):
            raise ValueError(f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels.")
        images.append(x)
        labels.append(y)
    x = images[0] if len(images) == 1 else np.concatenate(images)
    images = x.astype(np.float32)
    if scaled:
        images /= np.float32(255)
    target = np.concatenate(labels).astype(np.int64)
    return images, target


def _pixel_names(height, width, prefix="pixel"):
    return [f"{prefix}_{i}_{j}" for i in range(height) for j in range(width)]


def _bunch(images, target, target_names, descr, return_X_y, data=None, **extra):
    if data is None:
        data = images.reshape(len(images), -1)
    if return_X_y:
        return data, target
    extra.setdefault("feature_names", _pixel_names(*images.shape[1:3]))
    return Bunch(data=data, target=target, images=images, target_names=np.asarray(target_names),
                 DESCR=descr, **extra)


_MNIST_DESCR = """\
.. _mnist_dataset:

MNIST handwritten digits
------------------------

=================   ==========================================
Classes             10 (digits 0-9)
Samples             60,000 train + 10,000 test
Dimensionality      784 (28 x 28 grey pixels)
Features            [0, 1] (raw counts 0-255 with scaled=False)
=================   ==========================================

Handwritten digits from NIST, size-normalised and centred by Yann LeCun,
Corinna Cortes and Christopher J. C. Burges. Read from the original IDX files
(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-...).
Licence: Creative Commons Attribution-Share Alike 3.0.

Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied
to document recognition", Proceedings of the IEEE 86(11), 1998.
"""

_FASHION_DESCR = """\
.. _fashion_mnist_dataset:

Fashion-MNIST
-------------

=================   ==========================================
Classes             10 (T-shirt/top, Trouser, Pullover, Dress, Coat,
                    Sandal, Shirt, Sneaker, Bag, Ankle boot)
Samples             60,000 train + 10,000 test
Dimensionality      784 (28 x 28 grey pixels)
Features            [0, 1] (raw counts 0-255 with scaled=False)
=================   ==========================================

Zalando's article images, a drop-in replacement for MNIST with the same file
format, image size and splits. Licence: MIT. Debian ships the files in the
package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).

H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.
"""


def load_mnist(subset="train", *, data_home=None, download_if_missing=True, scaled=True, return_X_y=False):
    """Load the MNIST handwritten digits (classification, 28x28 grey images).

    =================   ===================================
    Classes             10
    Samples             60,000 train, 10,000 test
    Dimensionality      784
    Features            float32 in [0, 1] (0-255 unscaled)
    =================   ===================================

    The four IDX files are looked for in the ``mnist`` sub-folder of
    ``data_home``, ``$SKVAE_DATA`` and ``~/skvae_data``, in that order (see
    :mod:`skvae.datasets`), and downloaded (about 12 MB, SHA-256 checked) into
    ``get_data_home(data_home)/mnist`` when none holds them.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Which split to load; ``"all"`` is the training rows then the test rows.
    data_home : str or path-like, default=None
        A folder whose ``mnist`` sub-folder is searched first and which receives
        downloads; ``None`` means ``$SKVAE_DATA`` or ``~/skvae_data``.
    download_if_missing : bool, default=True
        Download the files when they are found nowhere. When False, a missing
        file raises :class:`FileNotFoundError` listing every folder looked in.
    scaled : bool, default=True
        Divide the pixel counts by 255 so that the data lie in ``[0, 1]`` (what
        a Bernoulli likelihood needs). ``False`` keeps the counts 0-255, as
        ``float32``, for count likelihoods (``poisson``, ``negative_binomial``).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes ``data`` (float32, shape
        ``(n_samples, 784)``), ``target`` (int64, shape ``(n_samples,)``),
        ``images`` (float32, shape ``(n_samples, 28, 28)``, the same values),
        ``target_names``, ``feature_names`` and ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        When the files are found nowhere and cannot be downloaded.
    OSError
        When a download does not match its published SHA-256 digest.
    ValueError
        When a file is not a valid (or is a truncated) IDX file.

    Examples
    --------
    >>> from skvae.datasets import load_mnist
    >>> X, y = load_mnist("test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, float(X.max())  # doctest: +SKIP
    ((10000, 784), dtype('float32'), 1.0)
    """
    images, target = _load_idx_dataset(
        "MNIST", "mnist", _MNIST_REMOTES, None, subset, data_home, download_if_missing, scaled,
    )
    return _bunch(images, target, np.arange(10), _MNIST_DESCR, return_X_y)


def load_fashion_mnist(subset="train", *, data_home=None, download_if_missing=True, scaled=True,
                       return_X_y=False):
    """Load Fashion-MNIST (classification, 28x28 grey images of clothes).

    =================   ===================================
    Classes             10
    Samples             60,000 train, 10,000 test
    Dimensionality      784
    Features            float32 in [0, 1] (0-255 unscaled)
    =================   ===================================

    The four IDX files are looked for in the ``fashion-mnist`` sub-folder of
    ``data_home``, ``$SKVAE_DATA``, ``~/skvae_data`` and ``/usr/share/datasets``
    (Debian's package ``dataset-fashion-mnist``), in that order (see
    :mod:`skvae.datasets`), and downloaded (about 30 MB, SHA-256 checked) into
    ``get_data_home(data_home)/fashion-mnist`` when none holds them.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Which split to load; ``"all"`` is the training rows then the test rows.
    data_home : str or path-like, default=None
        A folder whose ``fashion-mnist`` sub-folder is searched first and which
        receives downloads; ``None`` means ``$SKVAE_DATA`` or ``~/skvae_data``.
    download_if_missing : bool, default=True
        Download the files when they are found nowhere. When False, a missing
        file raises :class:`FileNotFoundError` listing every folder looked in.
    scaled : bool, default=True
        Divide the pixel counts by 255 so that the data lie in ``[0, 1]``.
        ``False`` keeps the counts 0-255, as ``float32``.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes ``data`` (float32, shape
        ``(n_samples, 784)``), ``target`` (int64, shape ``(n_samples,)``),
        ``images`` (float32, shape ``(n_samples, 28, 28)``, the same values),
        ``target_names`` (the ten clothing classes), ``feature_names`` and
        ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        When the files are found nowhere and cannot be downloaded.
    OSError
        When a download does not match its published SHA-256 digest.
    ValueError
        When a file is not a valid (or is a truncated) IDX file.

    Examples
    --------
    >>> from skvae.datasets import load_fashion_mnist
    >>> fashion = load_fashion_mnist("test")  # doctest: +SKIP
    >>> fashion.data.shape, fashion.images.shape  # doctest: +SKIP
    ((10000, 784), (10000, 28, 28))
    >>> str(fashion.target_names[fashion.target[0]])  # doctest: +SKIP
    'Ankle boot'
    """
    images, target = _load_idx_dataset(
        "Fashion-MNIST", "fashion-mnist", _FASHION_REMOTES, "dataset-fashion-mnist",
        subset, data_home, download_if_missing, scaled,
    )
    return _bunch(images, target, list(_FASHION_CLASSES), _FASHION_DESCR, return_X_y)


# ---------------------------------------------------------------------------
# CIFAR-10 (python pickles, read without running code)
# ---------------------------------------------------------------------------
class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a function or class that CIFAR-10 batches never need."""


def _numpy_global(module, name):
    import importlib

    return getattr(importlib.import_module(module), name)


def _latin1_encode(obj, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes: latin-1 only."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _RefusedGlobal("refusing _codecs.encode with anything but a str and 'latin1'")
    return obj.encode("latin1")


_new_core = "numpy._core" if hasattr(np, "_core") else "numpy.core"
#: The only globals a CIFAR-10 batch may name: what numpy needs to rebuild an
#: array (the old and new module names), and latin-1 bytes from Python 3
#: protocol-2 pickles.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_global(f"{_new_core}.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_global(f"{_new_core}.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): _numpy_global(f"{_new_core}.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): _numpy_global(f"{_new_core}.numeric", "_frombuffer"),
    ("_codecs", "encode"): _latin1_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and plain containers, nothing else.

    A pickle can call any importable function while it loads (``os.system``
    included). CIFAR-10 batches are dicts of lists, strings and one numpy array,
    so every global outside ``_SAFE_GLOBALS`` is refused before it is called.
    """

    def find_class(self, module, name):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(
                f"refusing to load {module}.{name}: CIFAR-10 batches hold only numpy arrays, "
                "lists and strings, so this pickle is not a CIFAR-10 batch (and may be "
                "malicious)."
            ) from None


def _restricted_load(fileobj, source):
    """Unpickle a CIFAR-10 batch with :class:`_RestrictedUnpickler` and check it."""
    try:
        batch = _RestrictedUnpickler(fileobj, encoding="latin1").load()
    except _RefusedGlobal:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error,
            zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{source} is not a valid CIFAR-10 batch: {exc!r}") from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{source} is not a CIFAR-10 batch: it holds a {type(batch).__name__}, not a dict.")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise ValueError(
            f"{source} is not a CIFAR-10 batch: 'data' must be a uint8 array of shape (n, 3072), got "
            f"{type(data).__name__} {shape}."
        )
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (len(data),):
        raise ValueError(f"{source}: {len(data)} images but {labels.size} labels.")
    return data, labels


_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _find_cifar(folder):
    archive = os.path.join(folder, _CIFAR10_REMOTE.filename)
    if os.path.isfile(archive):
        return archive
    unpacked = os.path.join(folder, _CIFAR_DIR)
    names = _CIFAR_BATCHES["train"] + _CIFAR_BATCHES["test"]
    if all(os.path.isfile(os.path.join(unpacked, name)) for name in names):
        return unpacked
    return None


def _read_cifar_batches(source, names):
    """``{name: (data, labels)}`` from the tarball (one pass) or the unpacked folder."""
    batches = {}
    if os.path.isdir(source):
        for name in names:
            path = os.path.join(source, name)
            with open(path, "rb") as f:
                batches[name] = _restricted_load(f, path)
        return batches
    wanted = {f"{_CIFAR_DIR}/{name}": name for name in names}
    try:
        with tarfile.open(source, "r|gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                if name is not None and member.isfile():
                    batches[name] = _restricted_load(tar.extractfile(member), f"{source}:{member.name}")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{source} is corrupt or truncated: not a valid .tar.gz archive ({exc}).") from exc
    missing = [f"{_CIFAR_DIR}/{name}" for name in names if name not in batches]
    if missing:
        raise ValueError(f"{source} is not the CIFAR-10 python archive: it lacks {', '.join(missing)}.")
    return batches


def _to_gray(data, scaled):
    """ITU-R BT.601 luma, 0.299 R + 0.587 G + 0.114 B, of channel-first rows, in float64."""
    out = np.empty((len(data), 1024), dtype=np.float32)
    for start in range(0, len(data), 4096):
        chunk = data[start:start + 4096]
        gray = _LUMA[0] * chunk[:, :1024].astype(np.float64)
        gray += _LUMA[1] * chunk[:, 1024:2048].astype(np.float64)
        gray += _LUMA[2] * chunk[:, 2048:].astype(np.float64)
        if scaled:
            gray /= 255.0
        out[start:start + 4096] = gray
    return out


_CIFAR10_DESCR = """\
.. _cifar10_dataset:

CIFAR-10
--------

=================   ==========================================
Classes             10 (airplane, automobile, bird, cat, deer,
                    dog, frog, horse, ship, truck)
Samples             50,000 train + 10,000 test
Dimensionality      3072 (32 x 32 x 3 colour), 1024 with grayscale=True
Features            [0, 1] (raw counts 0-255 with scaled=False)
=================   ==========================================

Small colour images collected by Alex Krizhevsky, Vinod Nair and Geoffrey
Hinton, read from the python version (cifar-10-python.tar.gz). Each row of
``data`` is channel-first as in the files: the 1024 red values, then the green,
then the blue, each row-major (the layout of skvae's ``conv`` architecture with
``channels_last=False``); ``images`` shows the same values as
(n, 32, 32, 3) for ``plt.imshow``. With grayscale=True, the ITU-R BT.601 luma
0.299 R + 0.587 G + 0.114 B gives 1024 features and (n, 32, 32) images.
The batches are pickles, read with an unpickler that rebuilds numpy arrays only.

A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
technical report, University of Toronto, 2009.
"""


def load_cifar10(subset="train", *, grayscale=False, data_home=None, download_if_missing=True, scaled=True,
                 return_X_y=False):
    """Load CIFAR-10 (classification, 32x32 colour or grey images).

    =================   ===================================
    Classes             10
    Samples             50,000 train, 10,000 test
    Dimensionality      3072, or 1024 with ``grayscale=True``
    Features            float32 in [0, 1] (0-255 unscaled)
    =================   ===================================

    ``cifar-10-python.tar.gz`` (or the ``cifar-10-batches-py`` folder it unpacks
    to) is looked for in the ``cifar-10`` sub-folder of ``data_home``,
    ``$SKVAE_DATA`` and ``~/skvae_data``, in that order (see
    :mod:`skvae.datasets`), and downloaded (163 MB, SHA-256 checked) into
    ``get_data_home(data_home)/cifar-10`` when none holds it. The tarball is read
    in place; nothing is extracted.

    The batches inside are Python pickles. Unpickling can run arbitrary code, so
    they are read with a restricted :class:`pickle.Unpickler` whose
    ``find_class`` allows only what numpy needs to rebuild an array
    (``numpy.ndarray``, ``numpy.dtype``, numpy's ``_reconstruct`` and
    ``_frombuffer``); a pickle naming anything else, such as ``os.system``, is
    refused with :class:`pickle.UnpicklingError` before it runs.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        ``"train"`` is ``data_batch_1`` to ``data_batch_5``, ``"test"`` is
        ``test_batch``, ``"all"`` both in that order.
    grayscale : bool, default=False
        Convert to grey with the ITU-R BT.601 luma weights,
        ``0.299 R + 0.587 G + 0.114 B`` (computed in float64), giving 1024
        features and ``(n, 32, 32)`` images.
    data_home : str or path-like, default=None
        A folder whose ``cifar-10`` sub-folder is searched first and which
        receives downloads; ``None`` means ``$SKVAE_DATA`` or ``~/skvae_data``.
    download_if_missing : bool, default=True
        Download the archive when it is found nowhere. When False, a missing
        archive raises :class:`FileNotFoundError` listing every folder looked in.
    scaled : bool, default=True
        Divide by 255 so that the data lie in ``[0, 1]``. ``False`` keeps the
        values 0-255, as ``float32``.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes ``data`` (float32, shape
        ``(n_samples, 3072)``, each row channel-first: 1024 red, 1024 green,
        1024 blue values; ``(n_samples, 1024)`` in grey), ``target`` (int64),
        ``images`` (float32 ``(n_samples, 32, 32, 3)``, channels last for
        ``plt.imshow``, or ``(n_samples, 32, 32)`` in grey; a view of ``data``),
        ``target_names``, ``feature_names`` and ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        When the archive is found nowhere and cannot be downloaded.
    OSError
        When a download does not match its published SHA-256 digest.
    ValueError
        When the archive is corrupt or its batches are not CIFAR-10 batches.
    pickle.UnpicklingError
        When a batch names a function or class other than numpy's.

    Examples
    --------
    >>> from skvae.datasets import load_cifar10
    >>> X, y = load_cifar10("test", grayscale=True, return_X_y=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (10000, 1024)
    """
    parts = _check_subset(subset)
    spec = _Spec("CIFAR-10", "cifar-10", f"{_CIFAR10_REMOTE.filename} (or the folder {_CIFAR_DIR})",
                 [_CIFAR10_REMOTE], None)
    source = _resolve(spec, data_home, download_if_missing, _find_cifar)
    names = [name for part in parts for name in _CIFAR_BATCHES[part]]
    batches = _read_cifar_batches(source, names)
    raw = np.concatenate([batches[name][0] for name in names])
    target = np.concatenate([batches[name][1] for name in names])
    data, images, feature_names = _cifar_features(raw, grayscale, scaled)
    return _bunch(images, target, list(_CIFAR10_CLASSES), _CIFAR10_DESCR, return_X_y, data=data,
                  feature_names=feature_names)


def _cifar_features(raw, grayscale, scaled):
    """``(data, images, feature_names)`` of CIFAR-10's uint8 rows, in colour or grey."""
    if grayscale:
        data = _to_gray(raw, scaled)
        return data, data.reshape(-1, 32, 32), _pixel_names(32, 32)
    data = raw.astype(np.float32)
    if scaled:
        data /= np.float32(255)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    feature_names = [name for c in ("red", "green", "blue") for name in _pixel_names(32, 32, c)]
    return data, images, feature_names


# ---------------------------------------------------------------------------
# Digits (embedded in scikit-learn)
# ---------------------------------------------------------------------------
def load_digits(*, n_class=10, return_X_y=False, as_frame=False, scaled=True):
    """Load scikit-learn's 8x8 digits scaled to [0, 1]: the default data set.

    =================   ===================================
    Classes             10
    Samples             1,797
    Dimensionality      64
    Features            float32 in [0, 1] (0-16 unscaled)
    =================   ===================================

    :func:`sklearn.datasets.load_digits` with the pixel counts (0 to 16)
    divided by 16 and cast to ``float32``, so that the data suit a Bernoulli
    likelihood as they are. It ships with scikit-learn: no file, no download.

    Parameters
    ----------
    n_class : int, default=10
        The number of classes to return, between 0 and 10.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return ``data`` as a pandas DataFrame and ``target`` as a Series (and
        the Bunch gets ``frame``, both together). Needs pandas.
    scaled : bool, default=True
        Divide by 16 so that the data lie in ``[0, 1]``. ``False`` keeps the
        counts 0-16, as ``float32``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes ``data`` (float32, shape
        ``(n_samples, 64)``), ``target`` (int64), ``images`` (float32, shape
        ``(n_samples, 8, 8)``, the same values), ``target_names``,
        ``feature_names``, ``frame`` and ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from skvae.datasets import load_digits
    >>> digits = load_digits()
    >>> digits.data.shape, digits.data.dtype, float(digits.data.max())
    ((1797, 64), dtype('float32'), 1.0)
    >>> X, y = load_digits(return_X_y=True)
    >>> from skvae import VAETransformer
    >>> VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X).transform(X).shape
    (1797, 2)
    """
    from sklearn.datasets import load_digits as _sklearn_load_digits

    original = _sklearn_load_digits(n_class=n_class)
    data = original.data.astype(np.float32)
    if scaled:
        data /= np.float32(16)
    target = original.target.astype(np.int64)
    images = data.reshape(-1, 8, 8)
    feature_names = list(original.feature_names)
    frame = None
    if as_frame:
        frame = _digits_frame(data, target, feature_names)
        data, target = frame[feature_names], frame["target"]
    if return_X_y:
        return data, target
    return Bunch(
        data=data, target=target, frame=frame, images=images, target_names=np.arange(10),
        feature_names=feature_names,
        DESCR=(
            "skvae.datasets.load_digits: the pixel counts 0..16 described below are "
            + ("divided by 16 (float32 in [0, 1]).\n\n" if scaled else "kept as float32.\n\n")
            + original.DESCR
        ),
    )


def _digits_frame(data, target, feature_names):
    """The digits as a pandas DataFrame: the pixel columns, then ``target``."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas comes with the test extras
        raise ImportError("load_digits(as_frame=True) needs pandas: pip install pandas") from exc
    frame = pd.DataFrame(data, columns=feature_names)
    frame["target"] = target
    return frame


# ---------------------------------------------------------------------------
# Texture patches
# ---------------------------------------------------------------------------
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _default_texture_images():
    """(name, path or None, RGB uint8 array) of the images that ship with sklearn and matplotlib."""
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    images = [(os.path.basename(f), f, im) for f, im in zip(sample.filenames, sample.images)]
    try:
        from matplotlib import cbook

        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        images.append(("grace_hopper.jpg", os.fspath(path), _read_image(path)))
    except (ImportError, OSError, ValueError):  # pragma: no cover - matplotlib ships it
        pass
    return images


def _read_image(path):
    """An image file as a numpy array (``(H, W)`` or ``(H, W, C)``) via Pillow."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in ("1", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA"):
                image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
            elif image.mode.startswith("I;16"):
                return np.asarray(image, dtype=np.uint16)
            elif image.mode in ("I", "F"):
                image = image.convert("F")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read {path} as an image: {exc}") from exc


def _to_unit_gray(array, name):
    """Grey values in [0, 1] (float64) from an image array of any usual type."""
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.float64)
    elif np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float64) / np.iinfo(array.dtype).max
    else:
        array = array.astype(np.float64)
        if array.size and (array.min() < 0 or array.max() > 1):
            low, high = array.min(), array.max()
            array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    if array.ndim == 3:
        channels = array.shape[2]
        if channels in (3, 4):
            array = array[..., 0] * _LUMA[0] + array[..., 1] * _LUMA[1] + array[..., 2] * _LUMA[2]
        elif channels in (1, 2):  # grey, grey + alpha
            array = array[..., 0]
        else:
            raise ValueError(f"{name} has {channels} channels; expected 1 to 4.")
    if array.ndim != 2:
        raise ValueError(f"{name} is not a 2-D image: shape {array.shape}.")
    return array


def _texture_sources(path):
    if path is None:
        sources = _default_texture_images()
        return [(name, file, _to_unit_gray(im, name)) for name, file, im in sources]
    if isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        if os.path.isdir(path):
            files = sorted(
                os.path.join(path, f) for f in os.listdir(path)
                if f.lower().endswith(_IMAGE_SUFFIXES) and os.path.isfile(os.path.join(path, f))
            )
            if not files:
                raise ValueError(f"{path} holds no image file ({', '.join(_IMAGE_SUFFIXES)}).")
        elif os.path.isfile(path):
            files = [path]
        else:
            raise FileNotFoundError(f"{path} is neither an image file nor a folder of images.")
    else:
        files = [os.fspath(p) for p in path]
        if not files:
            raise ValueError("path is an empty list of image files.")
    return [(os.path.basename(f), f, _to_unit_gray(_read_image(f), f)) for f in files]


def _check_contrast(contrast):
    if contrast is None:
        return None
    try:
        low, high = (float(v) for v in contrast)
    except (TypeError, ValueError):
        raise ValueError(f"contrast must be None or a pair (low, high); got {contrast!r}.") from None
    if not (0 <= low <= high) or not math.isfinite(high):
        raise ValueError(f"contrast must be a pair (low, high) with 0 <= low <= high; got {contrast!r}.")
    return low, high


def load_textures(path=None, *, patch_size=28, n_patches=1000, binarize=False, contrast=None,
                  random_state=None, return_X_y=False):
    """Cut grey patches at random places from images: a texture data set, one class per image.

    Each image becomes one class: ``target`` is the index of the image a patch
    comes from, and ``target_names`` the image file names. Colour images
    are made grey with ``0.299 R + 0.587 G + 0.114 B`` and every image is
    scaled to ``[0, 1]`` by its type's maximum (255 for 8-bit files).

    Parameters
    ----------
    path : str, path-like, list of them or None, default=None
        A folder (every ``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``,
        ``.tif``, ``.tiff`` or ``.webp`` file in it, sorted by name), one image
        file, or a list of image files, read with Pillow. ``None`` uses the
        photographs that ship with installed packages: scikit-learn's
        ``china.jpg`` and ``flower.jpg`` (see
        :func:`sklearn.datasets.load_sample_images`) and matplotlib's sample
        ``grace_hopper.jpg``, so three classes.
    patch_size : int or (int, int), default=28
        Height and width of the patches; every image must be at least this big.
    n_patches : int, default=1000
        Number of patches in all, shared as evenly as possible among the
        images (the first images get one more when it does not divide).
    binarize : bool, default=False
        Set every value to 1.0 where it is ``>= 0.5`` and to 0.0 elsewhere
        (after ``contrast``): binary data for a Bernoulli likelihood.
    contrast : (float, float) or None, default=None
        Random contrast augmentation: each patch draws ``c ~ U(low, high)``
        and becomes ``clip(c (x - 0.5) + 0.5, 0, 1)``; ``(0, 2)`` ranges from
        flat grey to doubled contrast. ``None`` leaves the patches alone.
    random_state : int, RandomState instance or None, default=None
        Seeds the patch positions, the order of the rows and the contrasts.
        Pass an int for the same patches on every call.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes ``data`` (float32, shape
        ``(n_patches, patch_height * patch_width)``, values in ``[0, 1]``),
        ``target`` (int64, the index of the source image), ``images``
        (float32, shape ``(n_patches, patch_height, patch_width)``),
        ``target_names`` (the image file names), ``filenames`` (their paths),
        ``feature_names`` and ``DESCR``. The rows are shuffled.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.datasets import load_textures
    >>> textures = load_textures(n_patches=300, random_state=0)
    >>> textures.data.shape, textures.images.shape
    ((300, 784), (300, 28, 28))
    >>> [str(name) for name in textures.target_names]
    ['china.jpg', 'flower.jpg', 'grace_hopper.jpg']
    >>> np.bincount(textures.target).tolist()
    [100, 100, 100]
    >>> X, y = load_textures(n_patches=30, binarize=True, contrast=(0, 2),
    ...                      random_state=0, return_X_y=True)
    >>> sorted(np.unique(X).tolist())
    [0.0, 1.0]
    """
    ph, pw = _check_patch_size(patch_size)
    if not isinstance(n_patches, (int, np.integer)) or isinstance(n_patches, bool) or n_patches < 1:
        raise ValueError(f"n_patches must be a positive int; got {n_patches!r}.")
    contrast = _check_contrast(contrast)
    rng = check_random_state(random_state)
    sources = _texture_sources(path)
    images, target = _cut_patches(sources, (ph, pw), n_patches, rng)
    if contrast is not None:
        c = rng.uniform(contrast[0], contrast[1], size=(len(images), 1, 1))
        images = np.clip(c * (images - 0.5) + 0.5, 0.0, 1.0)
    if binarize:
        images = images >= 0.5
    images = images.astype(np.float32)
    names = [name for name, _, _ in sources]
    descr = _texture_descr(sources, len(images), (ph, pw), contrast, binarize)
    return _bunch(images, target, names, descr, return_X_y,
                  filenames=[file for _, file, _ in sources])


def _check_patch_size(patch_size):
    """``(height, width)`` of the patches from an int or a pair."""
    if isinstance(patch_size, (int, np.integer)):
        patch_size = (patch_size, patch_size)
    try:
        ph, pw = (int(v) for v in patch_size)
    except (TypeError, ValueError):
        raise ValueError(f"patch_size must be an int or a pair of ints; got {patch_size!r}.") from None
    if ph < 1 or pw < 1:
        raise ValueError(f"patch_size must be positive; got {patch_size!r}.")
    return ph, pw


def _cut_patches(sources, patch_shape, n_patches, rng):
    """``n_patches`` patches shared evenly among the images, and their image indices, shuffled."""
    ph, pw = patch_shape
    k = len(sources)
    patches, target = [], []
    for index, (name, _, image) in enumerate(sources):
        height, width = image.shape
        if height < ph or width < pw:
            raise ValueError(f"{name} is {height}x{width}, smaller than the {ph}x{pw} patches.")
        count = n_patches // k + (index < n_patches % k)
        rows = rng.randint(0, height - ph + 1, size=count)
        cols = rng.randint(0, width - pw + 1, size=count)
        windows = np.lib.stride_tricks.sliding_window_view(image, (ph, pw))
        patches.append(windows[rows, cols])
        target.append(np.full(count, index, dtype=np.int64))
    images = np.concatenate(patches)
    target = np.concatenate(target)
    order = rng.permutation(len(images))
    return images[order], target[order]


def _texture_descr(sources, n_patches, patch_shape, contrast, binarize):
    """The ``DESCR`` of a texture data set: its images, patches and augmentations."""
    ph, pw = patch_shape
    return (
        "Texture patches\n---------------\n\n"
        f"{n_patches} grey {ph}x{pw} patches cut at random positions from {len(sources)} image(s), "
        "one class per image:\n"
        + "".join(f"  {i}: {file or name}\n" for i, (name, file, _) in enumerate(sources))
        + "\nValues in [0, 1]"
        + (f"; random contrast c ~ U{contrast}, x' = clip(c (x - 0.5) + 0.5, 0, 1)" if contrast else "")
        + ("; binarized at 0.5" if binarize else "")
        + ".\nThe default images ship with scikit-learn (china.jpg, flower.jpg; see "
        "sklearn.datasets.load_sample_images) and matplotlib (grace_hopper.jpg).\n"
    )


# ---------------------------------------------------------------------------
# Data by name or from a file (what the skvae command takes)
# ---------------------------------------------------------------------------
#: The data sets that :func:`load` knows by name.
DATASET_NAMES = ("digits", "fashion-mnist", "mnist", "cifar10", "textures")
#: What the labels of each named data set are ("class" when not listed).
_LABEL_NAMES = {"digits": "digit", "mnist": "digit", "textures": "source image"}
_FILE_SUFFIXES = (".npy", ".csv")


class Dataset(NamedTuple):
    """Samples, labels and how to draw them: what :func:`load` returns.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The samples, float32, one per row.
    y : ndarray of shape (n_samples,) or None
        The labels: class names (Fashion-MNIST, CIFAR-10, the image files of
        the textures) or digits (digits, MNIST); None for files.
    name : str
        A short name of the data (see :func:`data_name`).
    image_shape : (int, int, int) or None
        ``(height, width, channels)`` of one sample; None when unknown.
    label_name : str or None
        What the labels are (``"digit"``, ``"class"``); None for files.
    X_test, y_test : ndarray or None, default=None
        The data set's own test split (Fashion-MNIST, MNIST, CIFAR-10 with
        ``test_split=True``); None otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.datasets import Dataset
    >>> data = Dataset(np.zeros((4, 2), np.float32), None, "zeros", None, None)
    >>> data.name, data.X_test is None
    ('zeros', True)
    """

    X: object
    y: object
    name: str
    image_shape: object
    label_name: object
    X_test: object = None
    y_test: object = None


def load(spec, *, data_home=None, grayscale=False, download_if_missing=True, test_split=True,
         n_patches=1000, random_state=0):
    """Load a data set by name, or a 2-D array from a ``.npy`` or ``.csv`` file.

    Parameters
    ----------
    spec : str or path-like
        A name of :data:`DATASET_NAMES`: ``"digits"`` (:func:`load_digits`),
        ``"fashion-mnist"``, ``"mnist"``, ``"cifar10"`` or ``"textures"``
        (values in [0, 1]); or the path of a ``.npy`` file, or of a
        comma-separated ``.csv`` file (its first row is skipped when it is
        not numeric, i.e. a header; an empty field reads as NaN, a missing
        value), holding a 2-D numeric array.
    data_home : str or path-like, default=None
        Passed to the loaders of Fashion-MNIST, MNIST and CIFAR-10.
    grayscale : bool, default=False
        CIFAR-10 in grey (1024 features).
    download_if_missing : bool, default=True
        Download a data set that is not found on disk.
    test_split : bool, default=True
        Keep the own test split of Fashion-MNIST, MNIST and CIFAR-10 apart
        (``X_test``); False returns all their samples in ``X``.
    n_patches : int, default=1000
        Number of texture patches.
    random_state : int, default=0
        Seed of the texture patches.

    Returns
    -------
    data : Dataset
        ``X`` (float32, samples x features), the labels ``y`` (class names
        where the data set has them, else integers; None for files), a
        short ``name``, the ``image_shape`` of a sample (None when unknown),
        the ``label_name`` of the labels, and ``X_test``, ``y_test``.

    Raises
    ------
    ValueError
        If ``spec`` is neither a data set name nor the path of a ``.npy`` or
        ``.csv`` file, or the file cannot be read or does not hold a 2-D
        array of real numbers with at least 2 samples and 1 feature. A
        ``.npy`` header that declares more data than the file holds, or
        Python objects, is refused before loading.
    FileNotFoundError
        If the file does not exist, or a data set's files are found nowhere
        and not downloaded (the message says where they were looked for and
        how to get them).

    Examples
    --------
    >>> from skvae.datasets import load
    >>> data = load("digits")
    >>> data.X.shape, data.image_shape, data.label_name
    ((1797, 64), (8, 8, 1), 'digit')
    >>> import numpy as np, os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     np.savetxt(os.path.join(tmp, "X.csv"), np.eye(3), delimiter=",", header="a,b,c")
    ...     data = load(os.path.join(tmp, "X.csv"))
    >>> data.X.shape, data.name, data.y is None
    ((3, 3), 'X', True)
    """
    if spec in DATASET_NAMES:
        return _load_named(
            spec, data_home, grayscale, download_if_missing, test_split, n_patches, random_state
        )
    return _load_file(spec)


def data_name(spec, grayscale=False):
    """A short name of the data that :func:`load` takes (``skvae fit`` names its folder so).

    Parameters
    ----------
    spec : str or path-like
        A data set name or the path of a file.
    grayscale : bool, default=False
        CIFAR-10 in grey.

    Returns
    -------
    name : str
        The data set's name (``"cifar10-grayscale"`` for grey CIFAR-10), or
        the file's name without its suffix.

    Examples
    --------
    >>> from skvae.datasets import data_name
    >>> data_name("digits"), data_name("cifar10", grayscale=True), data_name("a/X.npy")
    ('digits', 'cifar10-grayscale', 'X')
    """
    if spec in DATASET_NAMES:
        return "cifar10-grayscale" if spec == "cifar10" and grayscale else spec
    return Path(spec).stem


def _load_named(name, data_home, grayscale, download_if_missing, test_split, n_patches,
                random_state):
    """A :class:`Dataset` of one of :data:`DATASET_NAMES`."""
    test = None
    if name == "digits":
        train = load_digits()
    elif name == "textures":
        train = load_textures(n_patches=n_patches, random_state=random_state)
    else:
        loader = {"fashion-mnist": load_fashion_mnist, "mnist": load_mnist, "cifar10": load_cifar10}[name]
        files = {"data_home": data_home, "download_if_missing": download_if_missing}
        if name == "cifar10":
            files["grayscale"] = grayscale
        train = loader("train" if test_split else "all", **files)
        if test_split:
            test = loader("test", **files)
    shape = tuple(int(v) for v in train.images.shape[1:])
    image_shape = shape + ((1,) if len(shape) == 2 else ())
    X_test, y_test = (None, None) if test is None else (test.data, _labels(name, test))
    return Dataset(
        train.data, _labels(name, train), data_name(name, grayscale), image_shape,
        _LABEL_NAMES.get(name, "class"), X_test, y_test,
    )


def _labels(name, bunch):
    """Digits as integers, the classes of other data sets by name."""
    if name in ("digits", "mnist"):
        return bunch.target
    return np.asarray(bunch.target_names).astype(str)[bunch.target]


class _RefusedFile(ValueError):
    """A file that is refused as it is, not for an error while reading it."""


def _load_file(spec):
    """A :class:`Dataset` of the 2-D array in a ``.npy`` or ``.csv`` file, without labels."""
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix not in _FILE_SUFFIXES:
        raise ValueError(
            f"unknown data {spec!r}: use a data set name ({', '.join(DATASET_NAMES)}) or the "
            "path of a .npy or .csv file"
        )
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {spec}")
    try:
        if suffix == ".npy":
            _check_npy_header(path, spec)
            X = np.load(path, allow_pickle=False)
        else:
            X = _load_csv(path)
    except _RefusedFile:
        raise
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot read {spec}: {_reason(exc)}") from None
    except MemoryError:
        raise ValueError(f"{spec} does not fit in memory: use a smaller file") from None
    if X.ndim != 2:
        raise ValueError(f"{spec} must hold a 2-D array (samples x features); got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise ValueError(f"{spec} must hold real numbers; got dtype {X.dtype}")
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"{spec} must hold at least 2 samples and 1 feature; got shape {X.shape}")
    return Dataset(X.astype(np.float32), None, data_name(spec), None, None)


def _reason(exc):
    """What went wrong reading a file, in words (no exception class names)."""
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return f"no such file: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _check_npy_header(path, spec):
    """Refuse a ``.npy`` file whose header declares more data than the file holds.

    Reads the header only, so that a small file declaring a huge array (or
    Python objects) fails here instead of allocating it in :func:`numpy.load`.
    """
    fmt = np.lib.format
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise _RefusedFile(f"{spec} is not a .npy file (see numpy.save)")
        f.seek(0)
        version = fmt.read_magic(f)
        # Version 3.0 differs from 2.0 in the encoding of field names only.
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(f)
        data_start = f.tell()
    if dtype.hasobject:
        raise _RefusedFile(
            f"{spec} holds Python objects (dtype {dtype}), not numbers: save a numeric "
            "array (e.g. X.astype(np.float32)) with numpy.save"
        )
    declared = math.prod(shape) * dtype.itemsize
    held = path.stat().st_size - data_start
    if declared > held:
        raise _RefusedFile(
            f"{spec} is truncated or corrupt: its header declares an array of shape "
            f"{shape} and dtype {dtype} ({_size(declared)}) but the file holds "
            f"{_size(max(held, 0))} of data; save the array again with numpy.save"
        )


def _size(n_bytes):
    """``n_bytes`` for people: '1.5 GiB'."""
    value = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024


def _load_csv(path):
    """A comma-separated file as a 2-D float64 array; a non-numeric first row is a header.

    An empty field is a missing value, NaN (as ``nan`` is).
    """
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline()
    try:
        [_csv_float(cell) for cell in first.split(",")]
        skiprows = 0
    except ValueError:
        skiprows = 1  # a header
    options = dict(
        delimiter=",", skiprows=skiprows, ndmin=2, dtype=np.float64, encoding="utf-8-sig"
    )
    try:
        return np.loadtxt(path, **options)  # fast: numpy's own parser
    except ValueError:  # empty fields? read field by field, else the same error
        return np.loadtxt(path, converters=_csv_float, **options)


def _csv_float(cell):
    """A field of a .csv file: its number, or NaN when it is empty (a missing value)."""
    return float(cell) if cell.strip() else math.nan


def split(data, *, test_size=0.2, n_train=None, random_state=0):
    """Split a :class:`Dataset` into training and test sets, optionally subsampled.

    Parameters
    ----------
    data : Dataset
        From :func:`load`. Its own test split (``X_test``) is kept;
        otherwise ``test_size`` of the samples are held out at random.
    test_size : float, default=0.2
        Share of the samples held out.
    n_train : int, default=None
        Keep a random subset of ``n_train`` training samples (all when there
        are fewer), and of the test set in proportion (at least one).
    random_state : int, default=0
        Seed of the split and of the subsets.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        The labels are None when ``data.y`` is.

    Examples
    --------
    >>> from skvae.datasets import load, split
    >>> X_train, X_test, y_train, y_test = split(load("digits"), n_train=200)
    >>> X_train.shape, X_test.shape
    ((200, 64), (51, 64))
    """
    from sklearn.model_selection import train_test_split

    X, y = data.X, data.y
    if data.X_test is not None:
        X_train, X_test, y_train, y_test = X, data.X_test, y, data.y_test
    elif y is None:
        X_train, X_test = train_test_split(X, test_size=test_size, random_state=random_state)
        y_train = y_test = None
    else:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, random_state=random_state
        )
    if n_train is not None and n_train < X_train.shape[0]:
        rng = np.random.RandomState(random_state)
        n_test = max(1, math.ceil(X_test.shape[0] * n_train / X_train.shape[0]))
        train = np.sort(rng.choice(X_train.shape[0], n_train, replace=False))
        test = np.sort(rng.choice(X_test.shape[0], n_test, replace=False))
        X_train, X_test = X_train[train], X_test[test]
        if y_train is not None:
            y_train, y_test = y_train[train], y_test[test]
    return X_train, X_test, y_train, y_test
