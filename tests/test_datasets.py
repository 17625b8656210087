"""skvae.datasets: loaders, file formats, search order, downloads, safety.

No test touches the network: ``urllib.request.urlopen`` is replaced by a stub
that fails (or serves bytes the test chose), HOME points at a temporary folder
and SKVAE_DATA is unset, so that nothing on this machine is read or written
except Debian's Fashion-MNIST in the one test that asks for it.
"""

import gzip
import hashlib
import io
import os
import pickle
import shlex
import struct
import tarfile
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from skvae import datasets
from skvae.datasets import (
    get_data_home,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_textures,
)

REAL_DEBIAN = datasets._DEBIAN_DATASETS
REAL_FASHION = os.path.join(REAL_DEBIAN, "fashion-mnist")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, an empty HOME, no SKVAE_DATA, no Debian folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SKVAE_DATA", raising=False)
    monkeypatch.setattr(datasets, "_DEBIAN_DATASETS", str(tmp_path / "debian"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return home


# ---------------------------------------------------------------------------
# Writers for the real formats
# ---------------------------------------------------------------------------
def idx_bytes(array):
    """An IDX file of unsigned bytes: magic 0x0000080N, big-endian dims, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx_set(folder, subset, images, labels, gz=True):
    """Write one subset's image and label files as MNIST names them."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if subset == "train" else "t10k"
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        name = f"{prefix}-{kind}-ubyte"
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def fake_images(n, seed, size=28):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return {
        "batch_label": f"batch {seed}",
        "labels": rng.integers(0, 10, n).tolist(),
        "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        "filenames": [f"img_{seed}_{i}.png" for i in range(n)],
    }


def py2_like_pickle(obj):
    """Protocol 2 with numpy's old module name, as the published batches have it."""
    blob = pickle.dumps(obj, protocol=2)
    return blob.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_cifar_tar(path, batches, dumps=py2_like_pickle):
    """cifar-10-python.tar.gz with cifar-10-batches-py/<name> members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in batches.items():
            blob = obj if isinstance(obj, bytes) else dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def cifar_batches(n=3):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: cifar_batch(n, seed) for seed, name in enumerate(names)}


# ---------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------
def test_load_digits_is_scaled_float32():
    digits = load_digits()
    assert digits.data.shape == (1797, 64) and digits.data.dtype == np.float32
    assert digits.data.min() == 0 and digits.data.max() == 1
    np.testing.assert_array_equal(digits.images.reshape(1797, 64), digits.data)
    assert digits.target.dtype == np.int64 and len(digits.feature_names) == 64
    X, y = load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, digits.data)
    raw, _ = load_digits(return_X_y=True, scaled=False)
    np.testing.assert_array_equal(raw / 16, X)
    assert load_digits(n_class=3).target.max() == 2


def test_load_digits_as_frame():
    pytest.importorskip("pandas")
    digits = load_digits(as_frame=True)
    assert digits.frame.shape == (1797, 65)
    assert list(digits.data.columns) == digits.feature_names
    assert digits.data.to_numpy().max() == 1


# ---------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_reads_idx_files(tmp_path, gz):
    train_x, train_y = fake_images(7, 0)
    test_x, test_y = fake_images(3, 1)
    write_idx_set(tmp_path / "mnist", "train", train_x, train_y, gz=gz)
    write_idx_set(tmp_path / "mnist", "test", test_x, test_y, gz=gz)

    train = load_mnist(data_home=tmp_path, download_if_missing=False)
    assert train.data.shape == (7, 784) and train.data.dtype == np.float32
    assert train.images.shape == (7, 28, 28)
    np.testing.assert_array_equal(train.images, train_x.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(train.target, train_y)
    assert train.target.dtype == np.int64
    assert list(train.target_names) == list(range(10)) and "MNIST" in train.DESCR

    X, y = load_mnist("test", data_home=tmp_path, download_if_missing=False, return_X_y=True)
    np.testing.assert_array_equal(y, test_y)
    X, y = load_mnist("all", data_home=tmp_path, download_if_missing=False, scaled=False, return_X_y=True)
    np.testing.assert_array_equal(X, np.concatenate([train_x, test_x]).reshape(10, 784).astype(np.float32))
    np.testing.assert_array_equal(y, np.concatenate([train_y, test_y]))


def test_fashion_mnist_reads_idx_files_and_names_classes(tmp_path):
    x, y = fake_images(4, 2)
    write_idx_set(tmp_path / "fashion-mnist", "test", x, y)
    fashion = load_fashion_mnist("test", data_home=tmp_path, download_if_missing=False)
    assert fashion.data.shape == (4, 784)
    assert fashion.target_names[9] == "Ankle boot"


def test_bad_subset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="subset must be one of"):
        load_mnist("validation", data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize("winner", ["data_home", "SKVAE_DATA", "cache", "debian"])
def test_search_order(tmp_path, offline, monkeypatch, winner):
    roots = {
        "data_home": tmp_path / "dh",
        "SKVAE_DATA": tmp_path / "env",
        "cache": offline / "skvae_data",
        "debian": tmp_path / "debian",
    }
    monkeypatch.setenv("SKVAE_DATA", str(roots["SKVAE_DATA"]))
    order = list(roots)
    # Every place from the winner on holds a set whose size tells it apart.
    for rank, name in enumerate(order[order.index(winner):]):
        x, y = fake_images(rank + 1 + order.index(winner), rank)
        write_idx_set(roots[name] / "fashion-mnist", "test", x, y)
    X, _ = load_fashion_mnist("test", data_home=roots["data_home"], download_if_missing=False,
                              return_X_y=True)
    assert len(X) == order.index(winner) + 1


def test_place_needs_every_file_of_the_subset(tmp_path, offline):
    x, y = fake_images(2, 0)
    write_idx_set(tmp_path / "mnist", "train", x, y)  # data_home: train only
    x, y = fake_images(5, 1)
    write_idx_set(offline / "skvae_data" / "mnist", "train", x, y)
    write_idx_set(offline / "skvae_data" / "mnist", "test", x, y)
    X, _ = load_mnist("all", data_home=tmp_path, download_if_missing=False, return_X_y=True)
    assert len(X) == 10  # the complete cache, not a mix


def test_missing_data_error_lists_every_place(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist("test", data_home=tmp_path / "dh", download_if_missing=False)
    message = str(info.value)
    for place in (tmp_path / "dh", tmp_path / "env", offline / "skvae_data", tmp_path / "debian"):
        assert str(place / "fashion-mnist") in message
    for hint in ("download_if_missing=True", "apt-get install dataset-fashion-mnist", "SKVAE_DATA",
                 "https://", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert hint in message


def test_failed_download_is_a_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)network disabled in tests.*Looked in|Looked in.*network"):
        load_mnist("test", data_home=tmp_path)
    assert not any(p.is_file() for p in (tmp_path / "mnist").iterdir())


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b[:-10], "truncated"),
        (lambda b: b + b"\x00", "longer than its header says"),
        (lambda b: b"\x01\x02" + b[2:], "not an IDX file: magic number"),
        (lambda b: b[:2] + b"\x42" + b[3:], "not an IDX file: magic number"),
        (lambda b: b[:6], "header needs"),
        (lambda b: b[:2], "fewer than the 4-byte magic number"),
    ],
    ids=["truncated-data", "trailing-bytes", "bad-zeros", "bad-type", "truncated-header", "tiny"],
)
def test_corrupt_idx_raises_value_error(tmp_path, mutate, match):
    x, y = fake_images(3, 0)
    folder = tmp_path / "mnist"
    write_idx_set(folder, "test", x, y)
    bad = mutate(idx_bytes(x))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bad))
    with pytest.raises(ValueError, match=match):
        load_mnist("test", data_home=tmp_path, download_if_missing=False)


def test_corrupt_gzip_and_swapped_files_raise_value_error(tmp_path):
    x, y = fake_images(3, 0)
    folder = tmp_path / "mnist"
    write_idx_set(folder, "test", x, y)
    path = folder / "t10k-images-idx3-ubyte.gz"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="not a valid gzip file"):
        load_mnist("test", data_home=tmp_path, download_if_missing=False)
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(ValueError, match="not a valid gzip file"):
        load_mnist("test", data_home=tmp_path, download_if_missing=False)
    path.write_bytes(gzip.compress(idx_bytes(y)))  # labels where images belong
    with pytest.raises(ValueError, match="not an IDX image file"):
        load_mnist("test", data_home=tmp_path, download_if_missing=False)
    write_idx_set(folder, "test", x, y[:2])
    with pytest.raises(ValueError, match="3 images but .* 2 labels"):
        load_mnist("test", data_home=tmp_path, download_if_missing=False)


# ---------------------------------------------------------------------------
# Downloads (urlopen stubbed)
# ---------------------------------------------------------------------------
def serve(monkeypatch, files):
    """Make urlopen serve ``files`` (url -> bytes or exception); record the calls."""
    calls = []

    def fake_urlopen(request, timeout=None):
        url = request.full_url if hasattr(request, "full_url") else request
        calls.append(url)
        body = files.get(url, urllib.error.URLError(f"no such url {url}"))
        if isinstance(body, Exception):
            raise body
        return io.BytesIO(body)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return calls


def fake_remote(monkeypatch, table, name, body, n_urls=1):
    """Point ``table[name]`` at fake URLs whose good content is ``body``."""
    urls = tuple(f"https://mirror{i}.invalid/{name}" for i in range(n_urls))
    remote = datasets._Remote(name, urls, hashlib.sha256(body).hexdigest(), len(body))
    monkeypatch.setitem(table, name, remote)
    return urls


def test_download_checks_sha256_and_caches(tmp_path, monkeypatch):
    x, y = fake_images(4, 3)
    bodies = {
        "t10k-images-idx3-ubyte.gz": gzip.compress(idx_bytes(x)),
        "t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(y)),
    }
    files = {}
    for name, body in bodies.items():
        first, second = fake_remote(monkeypatch, datasets._MNIST_REMOTES, name, body, n_urls=2)
        files[first] = urllib.error.URLError("first mirror down")  # falls back to the second
        files[second] = body
    calls = serve(monkeypatch, files)

    X, Y = load_mnist("test", data_home=tmp_path, return_X_y=True)
    np.testing.assert_array_equal(Y, y)
    assert len(calls) == 4
    folder = tmp_path / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(bodies)  # no temporary file left
    assert (folder / "t10k-images-idx3-ubyte.gz").read_bytes() == bodies["t10k-images-idx3-ubyte.gz"]
    # A second call reads the cache and does not download.
    load_mnist("test", data_home=tmp_path, download_if_missing=False)
    assert len(calls) == 4


def test_checksum_mismatch_raises_and_leaves_no_file(tmp_path, monkeypatch):
    x, y = fake_images(4, 3)
    good = gzip.compress(idx_bytes(x))
    (url,) = fake_remote(monkeypatch, datasets._FASHION_REMOTES, "t10k-images-idx3-ubyte.gz", good)
    fake_remote(monkeypatch, datasets._FASHION_REMOTES, "t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(y)))
    forged = bytearray(good)
    forged[len(good) // 2] ^= 0xFF  # a damaged or forged file
    serve(monkeypatch, {url: bytes(forged)})
    with pytest.raises(OSError, match="SHA-256 mismatch") as info:
        load_fashion_mnist("test", data_home=tmp_path)
    assert not isinstance(info.value, FileNotFoundError)
    assert list((tmp_path / "fashion-mnist").iterdir()) == []


def test_real_digests_are_recorded():
    """The published digests (sources in skvae/datasets.py) are all there, well-formed."""
    remotes = [*datasets._MNIST_REMOTES.values(), *datasets._FASHION_REMOTES.values(), datasets._CIFAR10_REMOTE]
    assert len({r.sha256 for r in remotes}) == 9
    for remote in remotes:
        assert len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0
        assert all(url.endswith(remote.filename) for url in remote.urls)
    assert datasets._FASHION_REMOTES["train-images-idx3-ubyte.gz"].sha256.startswith("3aede38d")
    assert datasets._CIFAR10_REMOTE.sha256.startswith("6d958be0")


# ---------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dumps", [py2_like_pickle, lambda o: pickle.dumps(o, protocol=5)],
                         ids=["protocol2-old-numpy-name", "protocol5"])
def test_load_cifar10_from_tarball(tmp_path, dumps):
    batches = cifar_batches()
    write_cifar_tar(tmp_path / "cifar-10" / "cifar-10-python.tar.gz", batches, dumps)
    train = load_cifar10(data_home=tmp_path, download_if_missing=False)
    raw = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    assert train.data.shape == (15, 3072) and train.data.dtype == np.float32
    np.testing.assert_array_equal(train.data, raw.astype(np.float32) / np.float32(255))
    # images are channels last; data rows channel-first as in the file
    n, i, j, c = 4, 5, 17, 2
    assert train.images.shape == (15, 32, 32, 3)
    assert train.images[n, i, j, c] == raw[n, c * 1024 + i * 32 + j] / np.float32(255)
    assert train.feature_names[0] == "red_0_0" and train.feature_names[1024] == "green_0_0"
    assert train.target_names[0] == "airplane"
    np.testing.assert_array_equal(
        train.target, np.concatenate([batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)])
    )
    X, y = load_cifar10("test", data_home=tmp_path, download_if_missing=False, return_X_y=True, scaled=False)
    np.testing.assert_array_equal(X, batches["test_batch"]["data"].astype(np.float32))
    X, y = load_cifar10("all", data_home=tmp_path, download_if_missing=False, return_X_y=True)
    assert X.shape == (18, 3072) and y.shape == (18,)


def test_load_cifar10_from_unpacked_folder(tmp_path):
    batches = cifar_batches(2)
    folder = tmp_path / "cifar-10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(py2_like_pickle(batch))
    X, y = load_cifar10("test", data_home=tmp_path, download_if_missing=False, return_X_y=True)
    np.testing.assert_array_equal(y, batches["test_batch"]["labels"])


def test_cifar10_grayscale_is_the_bt601_luma(tmp_path):
    batches = cifar_batches()
    pixels = batches["test_batch"]["data"]
    pixels[0, :1024], pixels[0, 1024:2048], pixels[0, 2048:] = 255, 0, 0  # pure red
    pixels[1, :1024], pixels[1, 1024:2048], pixels[1, 2048:] = 10, 20, 30
    write_cifar_tar(tmp_path / "cifar-10" / "cifar-10-python.tar.gz", batches)
    gray = load_cifar10("test", grayscale=True, data_home=tmp_path, download_if_missing=False)
    assert gray.data.shape == (3, 1024) and gray.images.shape == (3, 32, 32)
    r, g, b = (pixels[:, k * 1024:(k + 1) * 1024].astype(np.float64) for k in range(3))
    expected = ((0.299 * r + 0.587 * g + 0.114 * b) / 255).astype(np.float32)
    np.testing.assert_array_equal(gray.data, expected)
    assert gray.data[0, 0] == np.float32(0.299)
    assert gray.data[1, 0] == np.float32((0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255)
    raw, _ = load_cifar10("test", grayscale=True, scaled=False, data_home=tmp_path,
                          download_if_missing=False, return_X_y=True)
    assert raw[1, 0] == np.float32(0.299 * 10 + 0.587 * 20 + 0.114 * 30)


class RunsShellCommand:
    """Unpickling this calls os.system: what a malicious 'batch' would do."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"data": RunsShellCommand(f"touch {shlex.quote(str(marker))}"), "labels": []})
    # Directly ...
    with pytest.raises(pickle.UnpicklingError, match="refusing to load (posix|os|nt).system"):
        datasets._RestrictedUnpickler(io.BytesIO(evil)).load()
    # ... and as a batch inside an archive.
    batches = cifar_batches(1)
    batches["test_batch"] = evil
    write_cifar_tar(tmp_path / "cifar-10" / "cifar-10-python.tar.gz", batches)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        load_cifar10("test", data_home=tmp_path, download_if_missing=False)
    assert not marker.exists()
    # The guard is the unpickler: plain pickle would have run the command.
    other = tmp_path / "plain"
    pickle.loads(pickle.dumps(RunsShellCommand(f"touch {shlex.quote(str(other))}")))
    assert other.exists()


def test_restricted_unpickler_refuses_codecs_tricks():
    blob = pickle.dumps(b"bytes", protocol=2)  # _codecs.encode('bytes', 'latin1'): allowed
    assert datasets._RestrictedUnpickler(io.BytesIO(blob)).load() == b"bytes"
    tricky = blob.replace(b"latin1", b"rot_13")
    with pytest.raises(pickle.UnpicklingError, match="_codecs.encode"):
        datasets._RestrictedUnpickler(io.BytesIO(tricky)).load()


def test_corrupt_cifar_archives_raise_value_error(tmp_path):
    path = tmp_path / "cifar-10" / "cifar-10-python.tar.gz"
    batches = cifar_batches(1)
    del batches["data_batch_3"]
    write_cifar_tar(path, batches)
    with pytest.raises(ValueError, match="lacks cifar-10-batches-py/data_batch_3"):
        load_cifar10(data_home=tmp_path, download_if_missing=False)
    write_cifar_tar(path, cifar_batches(1))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_cifar10(data_home=tmp_path, download_if_missing=False)
    bad = cifar_batches(1)
    bad["test_batch"]["data"] = bad["test_batch"]["data"][:, :100]
    write_cifar_tar(path, bad)
    with pytest.raises(ValueError, match=r"shape \(n, 3072\)"):
        load_cifar10("test", data_home=tmp_path, download_if_missing=False)
    bad = cifar_batches(1)
    bad["test_batch"] = b"\x80\x02garbage"
    write_cifar_tar(path, bad)
    with pytest.raises(ValueError, match="not a valid CIFAR-10 batch"):
        load_cifar10("test", data_home=tmp_path, download_if_missing=False)


def test_cifar10_missing_lists_places(tmp_path, offline):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(data_home=tmp_path, download_if_missing=False)
    message = str(info.value)
    assert str(tmp_path / "cifar-10") in message and str(offline / "skvae_data" / "cifar-10") in message
    assert "https://www.cs.toronto.edu/~kriz/" in message


# ---------------------------------------------------------------------------
# Textures
# ---------------------------------------------------------------------------
@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / "b_colour.png")
    Image.fromarray(rng.integers(0, 256, (30, 33), dtype=np.uint8)).save(folder / "a_grey.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_textures_from_a_folder(image_folder):
    textures = load_textures(image_folder, n_patches=11, random_state=0)
    assert textures.data.shape == (11, 784) and textures.data.dtype == np.float32
    assert textures.images.shape == (11, 28, 28)
    assert list(textures.target_names) == ["a_grey.png", "b_colour.png"]
    assert np.bincount(textures.target).tolist() == [6, 5]
    # every patch of the grey image is a window of it
    grey = np.asarray(Image.open(image_folder / "a_grey.png"), dtype=np.float64) / 255
    windows = np.lib.stride_tricks.sliding_window_view(grey, (28, 28)).reshape(-1, 784)
    for patch in textures.data[textures.target == 0]:
        assert np.abs(windows - patch).max(axis=1).min() < 1e-6
    # colour images become 0.299 R + 0.587 G + 0.114 B
    rgb = np.asarray(Image.open(image_folder / "b_colour.png"), dtype=np.float64) / 255
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    windows = np.lib.stride_tricks.sliding_window_view(luma, (28, 28)).reshape(-1, 784)
    for patch in textures.data[textures.target == 1]:
        assert np.abs(windows - patch).max(axis=1).min() < 1e-6


def test_textures_are_reproducible(image_folder):
    a = load_textures(image_folder, n_patches=8, random_state=3, contrast=(0, 2))
    b = load_textures(image_folder, n_patches=8, random_state=3, contrast=(0, 2))
    c = load_textures(image_folder, n_patches=8, random_state=4, contrast=(0, 2))
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.target, b.target)
    assert not np.array_equal(a.data, c.data)


def test_textures_binarize(image_folder):
    X, _ = load_textures(image_folder, n_patches=10, binarize=True, random_state=0, return_X_y=True)
    assert set(np.unique(X).tolist()) == {0.0, 1.0}
    Xs, _ = load_textures(image_folder, n_patches=10, random_state=0, return_X_y=True)
    np.testing.assert_array_equal(X, (Xs >= 0.5).astype(np.float32))


def test_textures_contrast_range(tmp_path):
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((30, 30), 64, dtype=np.uint8)).save(flat)
    x = 64 / 255
    low, high = 0.5, 1.5
    X, _ = load_textures(flat, n_patches=400, contrast=(low, high), random_state=0, return_X_y=True)
    c = (0.5 - X[:, 0].astype(np.float64)) / (0.5 - x)  # x' = c (x - 0.5) + 0.5
    assert np.all(c >= low - 1e-5) and np.all(c <= high + 1e-5)
    assert c.min() < low + 0.05 and c.max() > high - 0.05  # spans the range
    assert np.all(X == X[:, :1])  # one contrast per patch
    X, _ = load_textures(flat, n_patches=20, contrast=(3, 4), random_state=0, return_X_y=True)
    assert np.all(X == 0)  # clipped to [0, 1]


def test_textures_default_images_and_checks(tmp_path):
    textures = load_textures(n_patches=6, random_state=0)
    assert list(textures.target_names) == ["china.jpg", "flower.jpg", "grace_hopper.jpg"]
    assert textures.data.min() >= 0 and textures.data.max() <= 1
    X, y = load_textures(patch_size=(8, 12), n_patches=3, random_state=0, return_X_y=True)
    assert X.shape == (3, 96)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(small)
    with pytest.raises(ValueError, match="smaller than the 28x28 patches"):
        load_textures([small], random_state=0)
    with pytest.raises(ValueError, match="contrast"):
        load_textures(small, patch_size=4, contrast=(2, 1))
    with pytest.raises(ValueError, match="n_patches"):
        load_textures(small, patch_size=4, n_patches=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image file"):
        load_textures(tmp_path / "empty")


# ---------------------------------------------------------------------------
# Data home
# ---------------------------------------------------------------------------
def test_get_data_home(tmp_path, offline, monkeypatch):
    assert get_data_home() == str(offline / "skvae_data")
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "env"))
    assert get_data_home() == str(tmp_path / "env")
    assert get_data_home(tmp_path / "arg") == str(tmp_path / "arg")
    assert (tmp_path / "arg").is_dir() and (tmp_path / "env").is_dir()


# ---------------------------------------------------------------------------
# The real Fashion-MNIST from Debian's dataset-fashion-mnist, where installed
# ---------------------------------------------------------------------------
@pytest.mark.skipif(
    not os.path.isfile(os.path.join(REAL_FASHION, "t10k-images-idx3-ubyte.gz")),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist_test_subset(monkeypatch):
    monkeypatch.setattr(datasets, "_DEBIAN_DATASETS", REAL_DEBIAN)
    start = time.perf_counter()
    fashion = load_fashion_mnist("test", download_if_missing=False)
    assert time.perf_counter() - start < 10
    assert fashion.data.shape == (10000, 784) and fashion.data.dtype == np.float32
    assert fashion.data.min() == 0 and fashion.data.max() == 1
    assert np.bincount(fashion.target).tolist() == [1000] * 10
    # Debian recompressed the files, but their contents are the published data.
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(os.path.join(REAL_FASHION, name + ".gz"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == datasets._FASHION_RAW_SHA256[name]


# ---------------------------------------------------------------------------
# load, split, data_name: data by name or from a file
# ---------------------------------------------------------------------------
def test_load_digits_and_textures_by_name():
    digits = datasets.load("digits")
    np.testing.assert_array_equal(digits.X, load_digits().data)
    np.testing.assert_array_equal(digits.y, load_digits().target)
    assert (digits.name, digits.image_shape, digits.label_name) == ("digits", (8, 8, 1), "digit")
    assert digits.X_test is None and digits.y_test is None
    textures = datasets.load("textures", n_patches=30, random_state=2)
    bunch = load_textures(n_patches=30, random_state=2)
    np.testing.assert_array_equal(textures.X, bunch.data)
    # Classes by name: the image each patch was cut from.
    assert textures.y.tolist() == [str(bunch.target_names[t]) for t in bunch.target]
    assert (textures.image_shape, textures.label_name) == ((28, 28, 1), "source image")


def test_load_keeps_the_own_test_split(tmp_path):
    train_x, train_y = fake_images(7, 0)
    test_x, test_y = fake_images(3, 1)
    for folder in ("mnist", "fashion-mnist"):
        write_idx_set(tmp_path / folder, "train", train_x, train_y)
        write_idx_set(tmp_path / folder, "test", test_x, test_y)
    files = {"data_home": tmp_path, "download_if_missing": False}
    mnist = datasets.load("mnist", **files)
    assert mnist.X.shape == (7, 784) and mnist.X_test.shape == (3, 784)
    np.testing.assert_array_equal(mnist.y, train_y)  # digits as numbers
    np.testing.assert_array_equal(mnist.y_test, test_y)
    assert (mnist.image_shape, mnist.label_name) == ((28, 28, 1), "digit")
    whole = datasets.load("mnist", test_split=False, **files)
    assert whole.X.shape == (10, 784) and whole.X_test is None and whole.y_test is None
    fashion = datasets.load("fashion-mnist", **files)
    names = np.asarray(load_fashion_mnist(**files).target_names)
    assert fashion.y.tolist() == names[train_y].tolist()  # classes by name
    assert (fashion.name, fashion.label_name) == ("fashion-mnist", "class")


@pytest.mark.parametrize("grayscale, shape, name", [
    (False, (32, 32, 3), "cifar10"), (True, (32, 32, 1), "cifar10-grayscale"),
])
def test_load_cifar10_shape_and_name(tmp_path, grayscale, shape, name):
    write_cifar_tar(tmp_path / "cifar-10" / "cifar-10-python.tar.gz", cifar_batches())
    data = datasets.load("cifar10", data_home=tmp_path, download_if_missing=False, grayscale=grayscale)
    assert (data.image_shape, data.name) == (shape, name)
    assert data.X.shape == (15, int(np.prod(shape))) and data.X_test.shape[0] == 3
    assert data.y[0] in ("airplane", "automobile", "bird", "cat", "deer",
                         "dog", "frog", "horse", "ship", "truck")


def test_load_missing_data_set_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST: .* not found. Looked in:"):
        datasets.load("mnist", data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize("write, suffix", [
    (lambda path, X: np.save(path, X), ".npy"),
    (lambda path, X: np.savetxt(path, X, delimiter=","), ".csv"),
    (lambda path, X: np.savetxt(path, X, delimiter=",", header="a,b,c", comments=""), ".csv"),
], ids=["npy", "csv", "csv-with-header"])
def test_load_a_file(tmp_path, write, suffix):
    X = np.random.default_rng(0).normal(size=(6, 3))
    path = tmp_path / f"my data{suffix}"
    write(path, X)
    data = datasets.load(str(path))
    assert data.X.dtype == np.float32
    np.testing.assert_allclose(data.X, X, rtol=1e-6)
    assert (data.y, data.name, data.image_shape, data.label_name) == (None, "my data", None, None)
    assert data.X_test is None


def _truncated_npy(path):
    with open(path, "wb") as f:  # declares 10^9 rows, holds 2
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 4)}
        )
        f.write(np.zeros((2, 4), np.float32).tobytes())


@pytest.mark.parametrize("name, write, error, match", [
    ("imagenet", None, ValueError, r"unknown data 'imagenet': use a data set name \(digits, "),
    ("X.txt", None, ValueError, "unknown data '.*X.txt': use a data set name"),
    ("none.npy", None, FileNotFoundError, "data file not found: .*none.npy"),
    ("text.npy", lambda p: p.write_bytes(b"not numpy"), ValueError, "is not a .npy file"),
    ("cube.npy", lambda p: np.save(p, np.zeros((2, 2, 2))), ValueError, "must hold a 2-D array"),
    ("one.npy", lambda p: np.save(p, np.zeros((1, 3))), ValueError, "at least 2 samples"),
    ("complex.npy", lambda p: np.save(p, np.zeros((2, 2), complex)), ValueError, "real numbers"),
    ("objects.npy", lambda p: np.save(p, np.array([[1, "a"]], dtype=object), allow_pickle=True),
     ValueError, "holds Python objects"),
    ("huge.npy", _truncated_npy, ValueError,
     r"truncated or corrupt: .* shape \(1000000000, 4\) and dtype float32 \(14.9 GiB\) but the "
     r"file holds 32 bytes"),
    ("words.csv", lambda p: p.write_text("a,b\n1,2\n3,x\n"), ValueError, "cannot read .*words.csv: "),
], ids=["name", "suffix", "missing", "not-npy", "3-D", "one-sample", "complex", "objects",
        "truncated", "text-csv"])
def test_load_refuses_what_is_no_data(tmp_path, name, write, error, match):
    path = tmp_path / name
    if write is not None:
        write(path)
    with pytest.raises(error, match=match):
        datasets.load(name if name == "imagenet" else str(path))


def test_data_name():
    assert datasets.data_name("mnist") == "mnist"
    assert datasets.data_name("cifar10") == "cifar10"
    assert datasets.data_name("cifar10", grayscale=True) == "cifar10-grayscale"
    assert datasets.data_name("mnist", grayscale=True) == "mnist"
    assert datasets.data_name("runs/my.data.csv") == "my.data"


def _numbered(n, labels=True):
    """Rows that carry their own index, so that a split can be checked row by row."""
    X = np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1)
    return datasets.Dataset(X, np.arange(n) if labels else None, "numbered", None, None)


def test_split_holds_out_a_test_set():
    X_train, X_test, y_train, y_test = datasets.split(_numbered(50), test_size=0.2, random_state=0)
    assert (len(X_train), len(X_test)) == (40, 10)
    assert sorted(np.concatenate([X_train[:, 0], X_test[:, 0]]).tolist()) == list(range(50))
    np.testing.assert_array_equal(X_train[:, 0], y_train)  # labels stay with their rows
    np.testing.assert_array_equal(X_test[:, 0], y_test)
    again = datasets.split(_numbered(50), test_size=0.2, random_state=0)
    np.testing.assert_array_equal(again[1], X_test)
    other = datasets.split(_numbered(50), test_size=0.2, random_state=1)
    assert not np.array_equal(other[1], X_test)
    X_train, X_test, y_train, y_test = datasets.split(_numbered(50, labels=False), test_size=0.3)
    assert (len(X_train), len(X_test), y_train, y_test) == (35, 15, None, None)


def test_split_subsamples_in_proportion_and_keeps_an_own_test_split():
    X_train, X_test, y_train, y_test = datasets.split(_numbered(100), test_size=0.2, n_train=20)
    assert (len(X_train), len(X_test)) == (20, 5)  # the test set shrinks in proportion
    np.testing.assert_array_equal(X_train[:, 0], y_train)
    np.testing.assert_array_equal(X_test[:, 0], y_test)
    whole_train, whole_test, _, _ = datasets.split(_numbered(100), test_size=0.2)
    assert set(X_train[:, 0]) <= set(whole_train[:, 0])  # subsets of the same split
    assert set(X_test[:, 0]) <= set(whole_test[:, 0])
    assert len(datasets.split(_numbered(100), n_train=1)[1]) == 1  # at least one test sample
    assert len(datasets.split(_numbered(10), n_train=500)[0]) == 8  # all when there are fewer
    own = _numbered(30)._replace(X_test=np.zeros((6, 2), np.float32), y_test=np.zeros(6))
    X_train, X_test, y_train, y_test = datasets.split(own, test_size=0.5)
    assert X_train is own.X and X_test is own.X_test and y_test is own.y_test

