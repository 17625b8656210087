"""Scaling out: searches on a Dask cluster, and training on memmaps larger than memory."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

import skvae
from skvae import VAETransformer
from skvae._data import HostRows, TrainingData

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------ Dask clusters
@pytest.fixture
def tinynet_on_path(tmp_path, monkeypatch):
    """pip-install the example third-party plugin into a folder on PYTHONPATH.

    PYTHONPATH is read when an interpreter starts, so that worker processes
    started after this (Dask's nannies spawn them) see the plugin too.
    """
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--target", str(target),
            str(REPO / "examples" / "third_party_plugin"),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.setenv("PYTHONPATH", str(target))
    skvae.reset_registry()
    yield target
    skvae.reset_registry()


def _search(n_jobs):
    pipe = Pipeline([
        ("scale", MinMaxScaler(clip=True)),
        ("vae", VAETransformer(n_components=2, max_iter=2, batch_size=64, random_state=0)),
    ])
    # One built-in and one third-party entry-point plugin, both by name.
    return GridSearchCV(
        pipe, {"vae__architecture": ["mlp", "tinynet"]}, cv=2, n_jobs=n_jobs,
        error_score="raise",
    )


def test_grid_search_on_a_dask_cluster_matches_a_local_search(tinynet_on_path, digits_small):
    pytest.importorskip("distributed")
    import joblib
    from distributed import Client, LocalCluster

    X = digits_small[0][:200]
    t0 = time.perf_counter()
    local = _search(n_jobs=1).fit(X)
    local_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    ) as cluster, Client(cluster) as client:
        t1 = time.perf_counter()
        with joblib.parallel_backend("dask"):
            remote = _search(n_jobs=-1).fit(X)
        search_seconds = time.perf_counter() - t1
        # The fits ran on the workers, which found the plugin by its entry point.
        on_workers = client.run(lambda: "skvae_tinynet" in sys.modules)
    total_seconds = time.perf_counter() - t0
    print(
        f"\nlocal n_jobs=1: {local_seconds:.1f} s; dask search {search_seconds:.1f} s "
        f"(with cluster start and stop {total_seconds:.1f} s)"
    )
    assert any(on_workers.values())
    assert remote.best_params_ == local.best_params_
    for key in ("mean_test_score", "std_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_allclose(remote.cv_results_[key], local.cv_results_[key], rtol=1e-5)
    assert np.all(np.isfinite(remote.cv_results_["mean_test_score"]))


# ------------------------------------------------------------------ memmaps
def _write_memmap(path, n_rows, n_features, seed=0, chunk=20_000):
    """A .npy file of uniform [0, 1) float32 values, written chunk by chunk."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    rng = np.random.default_rng(seed)
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        out[start:stop] = rng.random((stop - start, n_features), dtype=np.float32)
    out.flush()
    del out
    return path


# Peak RSS of the child from /proc/self/status (VmHWM, KiB): its own address
# space's high-water mark. getrusage's ru_maxrss would not do: Linux carries
# the parent's peak across fork and exec, so that a child of a big pytest
# process reports at least the parent's RSS.
_PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from skvae import VAETransformer
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "baseline":
        X = np.random.default_rng(0).random((1024, 64), dtype=np.float32)
        kwargs = {}
    else:
        X = np.load(path, mmap_mode="r")
        kwargs = {"data_on_device": mode == "in_memory"}
    def peak_kib():
        with open("/proc/self/status") as status:
            return int(next(l for l in status if l.startswith("VmHWM:")).split()[1])
    before = peak_kib()
    vae = VAETransformer(max_iter=1, batch_size=1024, random_state=0, device="cpu", **kwargs)
    vae.fit(X)
    print(json.dumps({
        "before_kib": before,
        "peak_kib": peak_kib(),
        "loss": vae.history_[-1]["loss"],
        "seconds": vae.history_[-1]["seconds"],
    }))
    """
)


def _peak(mode, path, script=_PEAK_SCRIPT):
    out = subprocess.run(
        [sys.executable, "-c", script, mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status")
def test_fit_on_a_memmap_does_not_load_it_whole(tmp_path):
    path = _write_memmap(tmp_path / "big.npy", 400_000, 64)  # 102 MB
    file_kib = path.stat().st_size / 1024
    baseline = _peak("baseline", path)
    streamed = _peak("auto", path)
    extra = streamed["peak_kib"] - baseline["peak_kib"]
    print(
        f"\nfile {file_kib / 1024:.1f} MiB; peak RSS baseline {baseline['peak_kib'] / 1024:.1f} "
        f"MiB, memmap fit {streamed['peak_kib'] / 1024:.1f} MiB: extra "
        f"{extra / 1024:.1f} MiB = {extra / file_kib:.1%} of the file; epoch "
        f"{streamed['seconds']:.2f} s"
    )
    assert np.isfinite(streamed["loss"])
    assert extra < 0.4 * file_kib
    # The measurement sees a whole copy: the device path loads the file.
    loaded = _peak("in_memory", path)
    print(
        f"data_on_device=True on the same memmap: extra "
        f"{(loaded['peak_kib'] - baseline['peak_kib']) / 1024:.1f} MiB; epoch "
        f"{loaded['seconds']:.2f} s"
    )
    assert loaded["peak_kib"] - baseline["peak_kib"] > 0.9 * file_kib


_TRANSFORM_PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from skvae import VAETransformer
    mode, path = sys.argv[1], sys.argv[2]
    small = np.random.default_rng(0).random((1024, 64), dtype=np.float32)
    vae = VAETransformer(max_iter=1, random_state=0, device="cpu").fit(small)
    X = small if mode == "baseline" else np.load(path, mmap_mode="r")
    if mode == "copied":
        X = np.array(X)
    def peak_kib():
        with open("/proc/self/status") as status:
            return int(next(l for l in status if l.startswith("VmHWM:")).split()[1])
    Z = vae.transform(X)
    print(json.dumps({"peak_kib": peak_kib(), "finite": bool(np.isfinite(Z).all())}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status")
def test_transform_of_a_memmap_keeps_memory_bounded(tmp_path):
    """transform reads a memmap batch by batch and drops its pages as it goes."""
    from skvae._data import RELEASE_BYTES

    path = _write_memmap(tmp_path / "big.npy", 400_000, 64)  # 102 MB
    file_kib = path.stat().st_size / 1024

    baseline, streamed, copied = (
        _peak(mode, path, _TRANSFORM_PEAK_SCRIPT) for mode in ("baseline", "memmap", "copied")
    )
    extra = streamed["peak_kib"] - baseline["peak_kib"]
    print(f"\nfile {file_kib / 1024:.1f} MiB; transform of the memmap: extra {extra / 1024:.1f} MiB")
    assert streamed["finite"]
    # At most one release budget of the map's pages, the output (400,000 x 2
    # float32: 3.2 MB) and the batches: not the file.
    assert extra < RELEASE_BYTES / 1024 + 12 * 1024
    assert extra < 0.3 * file_kib
    # The measurement sees a whole copy.
    assert copied["peak_kib"] - baseline["peak_kib"] > 0.9 * file_kib


@pytest.fixture
def digits_memmap(tmp_path, digits_small):
    X = digits_small[0]
    np.save(tmp_path / "digits.npy", X)
    return X, np.load(tmp_path / "digits.npy", mmap_mode="r")


@pytest.mark.parametrize(
    "params",
    [{}, {"early_stopping": True, "n_iter_no_change": 2}, {"likelihood": "gaussian"}],
    ids=["bernoulli", "early_stopping", "gaussian"],
)
def test_memmap_fit_equals_in_memory_fit(digits_memmap, params):
    X, M = digits_memmap
    kwargs = dict(max_iter=3, batch_size=64, random_state=0, **params)
    in_memory = VAETransformer(**kwargs).fit(X)
    streamed = VAETransformer(**kwargs).fit(M)
    assert isinstance(M, np.memmap)
    # The same rows in the same order in every batch: the same model.
    assert [h["loss"] for h in streamed.history_] == [h["loss"] for h in in_memory.history_]
    for key, value in in_memory.module_.state_dict().items():
        assert torch.equal(streamed.module_.state_dict()[key], value), key
    assert np.isfinite(streamed.score(M))
    assert streamed.score(M) == in_memory.score(X)
    assert type(streamed.likelihood_) is type(in_memory.likelihood_)


def test_data_on_device_false_streams_in_memory_arrays_too(digits_memmap):
    X, _ = digits_memmap
    kwargs = dict(max_iter=2, batch_size=64, random_state=0)
    on_device = VAETransformer(**kwargs).fit(X)
    host = VAETransformer(data_on_device=False, **kwargs).fit(X.tolist())
    assert [h["loss"] for h in host.history_] == [h["loss"] for h in on_device.history_]
    host = VAETransformer(data_on_device=False, **kwargs).fit(X)
    assert [h["loss"] for h in host.history_] == [h["loss"] for h in on_device.history_]


def test_data_on_device_true_puts_a_memmap_on_the_device(digits_memmap, monkeypatch):
    _, M = digits_memmap
    seen = []
    original = HostRows.__init__
    monkeypatch.setattr(HostRows, "__init__", lambda self, *a, **k: seen.append(1) or original(self, *a, **k))
    VAETransformer(max_iter=1, data_on_device=True, random_state=0).fit(M)
    assert not seen
    VAETransformer(max_iter=1, random_state=0).fit(M)
    assert seen


def test_partial_fit_over_memmap_chunks(digits_memmap):
    X, M = digits_memmap
    vae = VAETransformer(max_iter=4, batch_size=64, random_state=0)
    for part in np.array_split(np.arange(M.shape[0]), 3):
        vae.partial_fit(M[part[0] : part[-1] + 1])
    assert vae.n_iter_ == 3
    reference = VAETransformer(max_iter=4, batch_size=64, random_state=0)
    for part in np.array_split(np.arange(X.shape[0]), 3):
        reference.partial_fit(X[part[0] : part[-1] + 1])
    assert [h["loss"] for h in vae.history_] == [h["loss"] for h in reference.history_]


def test_transform_on_a_memmap_is_batched(digits_memmap, monkeypatch):
    X, M = digits_memmap
    vae = VAETransformer(max_iter=2, random_state=0).fit(X)
    monkeypatch.setattr(skvae._estimator, "_INFERENCE_ROWS", 64)
    rows = []
    to_tensor = skvae._data.to_tensor
    monkeypatch.setattr(
        skvae._data, "to_tensor", lambda a, *args, **kw: rows.append(len(a)) or to_tensor(a, *args, **kw)
    )
    Z = vae._map_batches(lambda xb: vae.module_.encode(xb)[0], M, vae.n_components, rows=64)
    assert max(rows) == 64 and len(rows) == -(-M.shape[0] // 64)
    np.testing.assert_array_equal(vae.transform(M), vae.transform(X))
    np.testing.assert_array_equal(Z, vae.transform(X))
    np.testing.assert_array_equal(vae.score_samples(M), vae.score_samples(X))


@pytest.mark.parametrize(
    "value, message",
    [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")],
)
def test_memmap_validation_finds_bad_values_in_any_chunk(tmp_path, monkeypatch, value, message):
    monkeypatch.setattr(skvae._data, "CHUNK_BYTES", 64 * 4 * 10)  # 10 rows a chunk
    X = np.random.default_rng(0).random((100, 64), dtype=np.float32)
    X[95, 3] = value  # far past the first chunk, which scikit-learn checks
    np.save(tmp_path / "bad.npy", X)
    M = np.load(tmp_path / "bad.npy", mmap_mode="r")
    vae = VAETransformer(max_iter=1)
    with pytest.raises(ValueError, match=message):
        vae.fit(M)
    assert not hasattr(vae, "module_")


def test_memmap_likelihood_checks_run_on_every_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(skvae._data, "CHUNK_BYTES", 8 * 4 * 10)
    X = np.random.default_rng(0).random((100, 8), dtype=np.float32)
    X[90, 0] = 3.0
    np.save(tmp_path / "x.npy", X)
    M = np.load(tmp_path / "x.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="'bernoulli' likelihood needs data in \\[0, 1\\]"):
        VAETransformer(likelihood="bernoulli", max_iter=1).fit(M)
    # likelihood="auto" sees the whole range: Gaussian.
    vae = VAETransformer(max_iter=1, random_state=0).fit(M)
    assert type(vae.likelihood_).__name__ == "Gaussian"
    counts = np.floor(X * 5)
    np.save(tmp_path / "c.npy", counts)
    VAETransformer(likelihood="poisson", max_iter=1).fit(np.load(tmp_path / "c.npy", mmap_mode="r"))
    counts[97, 1] = 0.5
    np.save(tmp_path / "c.npy", counts)
    with pytest.raises(ValueError, match="poisson"):
        VAETransformer(likelihood="poisson", max_iter=1).fit(
            np.load(tmp_path / "c.npy", mmap_mode="r")
        )


def test_memmap_with_other_dtypes_and_shapes(tmp_path):
    X = np.random.default_rng(0).integers(0, 2, (60, 5)).astype(np.int16)
    np.save(tmp_path / "i.npy", X)
    M = np.load(tmp_path / "i.npy", mmap_mode="r")
    a = VAETransformer(max_iter=2, random_state=0).fit(M)
    b = VAETransformer(max_iter=2, random_state=0).fit(X)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    np.save(tmp_path / "v.npy", X[:, 0])
    with pytest.raises(ValueError, match="Expected 2D array"):
        VAETransformer(max_iter=1).fit(np.load(tmp_path / "v.npy", mmap_mode="r"))
    np.save(tmp_path / "e.npy", X[:0])
    with pytest.raises(ValueError, match="0 sample"):
        VAETransformer(max_iter=1).fit(np.load(tmp_path / "e.npy", mmap_mode="r"))
    fitted = VAETransformer(max_iter=1).fit(M)
    np.save(tmp_path / "w.npy", np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="5 features"):
        fitted.partial_fit(np.load(tmp_path / "w.npy", mmap_mode="r"))


def test_memmap_checkpoint_digest_matches_in_memory(tmp_path, digits_memmap):
    X, M = digits_memmap
    path = tmp_path / "ckpt.skvae"
    VAETransformer(max_iter=2, random_state=0, checkpoint_path=path).fit(X)
    # The same data as a memmap resumes (and finds the fit finished).
    resumed = VAETransformer(max_iter=2, random_state=0, checkpoint_path=path).fit(M)
    assert resumed.n_iter_ == 2
    assert TrainingData(HostRows(M, np.float32)).digest() == TrainingData(X).digest()


def test_copy_on_write_memmaps_keep_their_changes(tmp_path):
    X = np.random.default_rng(0).random((50, 4), dtype=np.float32)
    np.save(tmp_path / "x.npy", X)
    M = np.load(tmp_path / "x.npy", mmap_mode="c")
    M[0, 0] = 0.25
    VAETransformer(max_iter=1, random_state=0).fit(M)
    assert M[0, 0] == 0.25


def test_data_on_device_is_validated():
    with pytest.raises(ValueError, match="'data_on_device' parameter"):
        VAETransformer(data_on_device="yes").fit(np.zeros((4, 2)))


@pytest.mark.parametrize("method", ["transform", "score_samples", "kl_per_dimension"])
def test_inference_reads_a_memmap_once_batch_by_batch(tmp_path, digits_small, method, monkeypatch):
    """No whole-array NaN scan before the batches; NaN in a batch still raises."""
    import sklearn.utils.validation as validation

    X = np.tile(digits_small[0], (10, 1))[:2500]  # 2500 rows: three inference batches
    vae = VAETransformer(max_iter=1, random_state=0).fit(digits_small[0])
    path = tmp_path / "big.npy"
    np.save(path, X)
    scanned = []
    original = validation._assert_all_finite

    def spy(array, *args, **kwargs):
        scanned.append(np.shape(array)[0])
        return original(array, *args, **kwargs)

    monkeypatch.setattr(validation, "_assert_all_finite", spy)
    result = getattr(vae, method)(np.load(path, mmap_mode="r"))
    assert scanned and max(scanned) <= 1024, scanned  # batch by batch
    expected = getattr(vae, method)(X)
    np.testing.assert_array_equal(result, expected)  # same answer as in memory

    X[2400, 3] = np.nan  # in the last batch
    np.save(path, X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        getattr(vae, method)(np.load(path, mmap_mode="r"))
