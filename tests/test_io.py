"""Safe model files: skvae.save / skvae.load (JSON + safetensors, no pickle)."""

import hashlib
import json
import os
import pickle
import stat
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

import skvae
from skvae import AuxiliaryClassifierVAE, ConditionalVAETransformer, ModelFileError, VAETransformer
from skvae_plugins.columns import ColumnLikelihood
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.conv import Conv
from skvae_plugins.mlp import MLP
from skvae_plugins.normal import Normal
from skvae_plugins.presets import KerasConv
from skvae_plugins.student_t_likelihood import StudentT

SMALL = MLP(hidden_sizes=(16,))


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    counts = np.rint(X[:96] * 16).astype(np.float32)
    standardized = StandardScaler().fit_transform(counts).astype(np.float32)
    codes = np.rint(X[:96] * 3).astype(np.float32)  # 4 categories per pixel
    return {
        "unit": counts / 16,
        "counts": counts,
        "standardized": standardized,
        "codes": codes,
        "mixed": np.hstack([standardized[:, :32], codes[:, 32:]]),
        "y": y[:96],
    }


@pytest.fixture
def clean_registry():
    skvae.reset_registry()
    yield
    skvae.reset_registry()


def _fit(estimator, X, y=None):
    if isinstance(estimator, (ConditionalVAETransformer, AuxiliaryClassifierVAE)):
        return estimator.fit(X, y)
    return estimator.fit(X)


def _round_trip(estimator, tmp_path, **kwargs):
    path = skvae.save(estimator, tmp_path / "model.skvae", **kwargs)
    return skvae.load(path)


def _assert_same_predictions(a, b, X, y=None):
    assert np.array_equal(a.transform(X), b.transform(X))
    assert np.array_equal(a.score_samples(X), b.score_samples(X))
    assert np.array_equal(a.sample(7, random_state=3), b.sample(7, random_state=3))
    assert np.array_equal(
        a.sample(4, random_state=1, decode="draw"), b.sample(4, random_state=1, decode="draw")
    )
    Z = np.random.RandomState(0).normal(size=(5, a.n_components))
    assert np.array_equal(a.inverse_transform(Z), b.inverse_transform(Z))
    if y is not None and isinstance(a, ConditionalVAETransformer):
        assert np.array_equal(a.transform(X, y), b.transform(X, y))
        assert np.array_equal(a.score_samples(X, y), b.score_samples(X, y))
        label = a.classes_[1]
        assert np.array_equal(
            a.sample(3, random_state=0, y=label), b.sample(3, random_state=0, y=label)
        )
    if isinstance(a, AuxiliaryClassifierVAE):
        assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
        assert np.array_equal(a.predict(X), b.predict(X))


def _same_params(a, b):
    pa, pb = a.get_params(deep=False), b.get_params(deep=False)
    assert pa.keys() == pb.keys()
    for key in pa:
        va, vb = pa[key], pb[key]
        if hasattr(va, "get_params") and not isinstance(va, type):
            assert type(va) is type(vb), key
            assert va.get_params() == vb.get_params(), key
            for k, v in va.get_params().items():
                assert type(v) is type(vb.get_params()[k]), f"{key}__{k}"
        else:
            assert type(va) is type(vb), key
            assert va == vb, key


ESTIMATORS = {
    "vae": lambda: VAETransformer(n_components=3, architecture=SMALL, max_iter=2, random_state=0),
    "cvae": lambda: ConditionalVAETransformer(
        n_components=3, architecture=SMALL, max_iter=2, random_state=0
    ),
    "acvae": lambda: AuxiliaryClassifierVAE(
        n_components=3, architecture=SMALL, max_iter=2, random_state=0,
        classifier_hidden_sizes=(8,),
    ),
}


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_round_trip_is_exact(kind, data, tmp_path):
    X, y = data["unit"], data["y"]
    original = _fit(ESTIMATORS[kind](), X, y)
    loaded = _round_trip(original, tmp_path)
    assert type(loaded) is type(original)
    _same_params(original, loaded)
    _assert_same_predictions(original, loaded, X, y)
    assert loaded.history_ == original.history_
    assert loaded.n_iter_ == original.n_iter_ and loaded.n_features_in_ == 64
    assert loaded._device == torch.device("cpu")
    for key, tensor in original.module_.state_dict().items():
        assert torch.equal(tensor, loaded.module_.state_dict()[key]), key
    if kind != "vae":
        assert np.array_equal(loaded.classes_, original.classes_)
        assert loaded.classes_.dtype == original.classes_.dtype
        assert np.array_equal(loaded.class_prior_, original.class_prior_)


@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_partial_fit_and_warm_start_continue_exactly(kind, data, tmp_path):
    X, y = data["unit"], data["y"]
    original = _fit(ESTIMATORS[kind](), X, y)
    loaded = _round_trip(original, tmp_path)
    args = (X,) if kind == "vae" else (X, y)
    original.partial_fit(*args)
    loaded.partial_fit(*args)
    assert loaded.n_iter_ == original.n_iter_ == 3
    assert np.array_equal(original.transform(X), loaded.transform(X))
    for estimator in (original, loaded):
        estimator.set_params(warm_start=True, max_iter=1).fit(*args)
    assert loaded.n_iter_ == 4
    assert loaded.history_[-1]["loss"] == original.history_[-1]["loss"]
    assert np.array_equal(original.score_samples(X), loaded.score_samples(X))


def test_without_optimizer_state(data, tmp_path):
    X = data["unit"]
    original = VAETransformer(architecture=SMALL, max_iter=2, random_state=0).fit(X)
    path = skvae.save(original, tmp_path / "light.skvae", include_optimizer=False)
    assert zipfile.ZipFile(path).namelist() == ["model.json", "weights.safetensors"]
    loaded = skvae.load(path)
    _assert_same_predictions(original, loaded, X)
    loaded.partial_fit(X)  # a fresh optimizer, but training goes on
    assert loaded.n_iter_ == 3


def _assert_same_training_state(a, b):
    # Copies of stored state (no arithmetic): equal bit for bit on any CPU.
    assert type(a.optimizer_) is type(b.optimizer_)
    sa, sb = a.optimizer_.state_dict(), b.optimizer_.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for index, entry in sa["state"].items():
        assert entry.keys() == sb["state"][index].keys()
        for key, value in entry.items():
            assert torch.equal(value, sb["state"][index][key]), (index, key)
    assert torch.equal(a._generator.get_state(), b._generator.get_state())


def test_load_and_unpickling_rebuild_the_same_training_state(data, tmp_path):
    # One mechanism (skvae._state.rebuild) gives a loaded and an unpickled
    # estimator their optimizer and generator: both as the original's.
    X = data["unit"]
    original = VAETransformer(architecture=SMALL, max_iter=2, random_state=0).fit(X)
    loaded = _round_trip(original, tmp_path)
    _assert_same_training_state(loaded, original)
    _assert_same_training_state(pickle.loads(pickle.dumps(original)), original)
    # Without the saved state: a fresh optimizer, the generator seeded with _seed.
    light = _round_trip(original, tmp_path, include_optimizer=False)
    assert type(light.optimizer_) is type(original.optimizer_)
    assert light.optimizer_.state_dict()["state"] == {}
    seeded = torch.Generator().manual_seed(original._seed).get_state()
    assert torch.equal(light._generator.get_state(), seeded)


def test_generator_saved_on_another_device_type_is_seeded(saved, tmp_path):
    # A CUDA generator's state means nothing to a CPU generator: the loaded
    # one is seeded with _seed, while the optimizer state is still restored.
    reference = skvae.load(saved)
    path = _edit_json(
        saved, tmp_path, lambda m: m["optimizer"]["generator"].update(device_type="cuda")
    )
    loaded = skvae.load(path)
    seeded = torch.Generator().manual_seed(reference._seed).get_state()
    assert torch.equal(loaded._generator.get_state(), seeded)
    assert not torch.equal(reference._generator.get_state(), seeded)
    reference._generator.set_state(seeded)
    _assert_same_training_state(loaded, reference)


def test_file_layout_and_digest(data, tmp_path):
    X = data["unit"]
    vae = VAETransformer(architecture=SMALL, max_iter=1, random_state=0).fit(X)
    path = skvae.save(vae, tmp_path / "m.skvae")
    assert path == tmp_path / "m.skvae"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.skvae"]  # no temporary left
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["model.json", "weights.safetensors", "training.safetensors"]
        model = json.loads(archive.read("model.json"))
        weights = archive.read("weights.safetensors")
    assert model["format"] == "skvae-model" and model["format_version"] == "1.0"
    assert model["estimator"] == "VAETransformer"
    assert model["skvae_version"] == skvae.__version__
    assert model["files"]["weights.safetensors"]["sha256"] == hashlib.sha256(weights).hexdigest()
    mlp = model["fitted"]["architecture_"]
    assert mlp["plugin"] == "mlp" and mlp["kind"] == "architecture"
    assert mlp["params"]["hidden_sizes"] == {"type": "tuple", "items": [16]}
    assert mlp["class"] == "skvae_plugins.mlp.MLP"
    assert mlp["distribution"] == "skvae" and mlp["version"] == skvae.__version__
    first_layer = model["module"]["tensors"]["net.encoder.0.weight"]
    assert first_layer == {"dtype": "float32", "shape": [16, 64]}
    # The same model gives the same bytes.
    again = skvae.save(vae, tmp_path / "again.skvae")
    assert again.read_bytes() == path.read_bytes()


# Every built-in plugin: each architecture with a likelihood it suits, each
# likelihood and each prior with a small MLP.
ARCHITECTURES = {
    "mlp": ("mlp", "unit"),
    "csnl_small_dense": ("csnl_small_dense", "unit"),
    "csnl_dense": ("csnl_dense", "unit"),
    "cifar_gray_mlp": ("cifar_gray_mlp", "standardized"),
    "sigmoid_mlp": ("sigmoid_mlp", "unit"),
    "ladder": ("ladder", "unit"),  # batch norm buffers
    "conv": (Conv(image_shape=(8, 8, 1), filters=(4, 8)), "unit"),
    "keras_conv": (KerasConv(image_shape=(8, 8, 1)), "unit"),
}
LIKELIHOODS = {
    "bernoulli": "unit",
    "continuous_bernoulli": "unit",
    "gaussian": "standardized",
    "laplace": "standardized",
    "student_t": "standardized",
    "poisson": "counts",
    "negative_binomial": "counts",
    "categorical": "codes",
    "columns": "mixed",
}
# Likelihoods that need parameters: given as instances.
LIKELIHOOD_SPECS = {
    "columns": ColumnLikelihood([("gaussian", list(range(32))),
                                 ("categorical", list(range(32, 64)))]),
}
PRIORS = ["normal", "student_t", "mixture", "vamp"]
CASES = (
    [(f"architecture={a}", {"architecture": spec}, d) for a, (spec, d) in ARCHITECTURES.items()]
    + [(f"likelihood={n}", {"likelihood": LIKELIHOOD_SPECS.get(n, n)}, d)
       for n, d in LIKELIHOODS.items()]
    + [(f"prior={p}", {"prior": p}, "unit") for p in PRIORS]
)


def test_every_builtin_plugin_is_covered():
    # keras_dcgan_conv (about 61M parameters) is too big for a CPU test.
    names = {p["name"] for p in skvae.list_plugins("architecture")} - {"keras_dcgan_conv"}
    assert names <= set(ARCHITECTURES)
    assert {p["name"] for p in skvae.list_plugins("likelihood")} <= set(LIKELIHOODS)
    assert {p["name"] for p in skvae.list_plugins("prior")} <= set(PRIORS)


@pytest.mark.parametrize("params, kind", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_builtin_plugin_round_trips(params, kind, data, tmp_path):
    X = data[kind][:64]
    params = {"architecture": SMALL, **params}
    vae = VAETransformer(n_components=2, max_iter=1, batch_size=32, random_state=0, **params)
    vae.fit(X)
    loaded = _round_trip(vae, tmp_path)
    _same_params(vae, loaded)
    _assert_same_predictions(vae, loaded, X)
    vae.partial_fit(X)
    loaded.partial_fit(X)
    assert np.array_equal(vae.transform(X), loaded.transform(X))


def test_plugin_parameters_classes_tuples_and_devices_restored(data, tmp_path):
    X = data["standardized"][:64]
    vae = VAETransformer(
        architecture=MLP(hidden_sizes=(12, 6), decoder_hidden_sizes=[6], activation="tanh"),
        likelihood=StudentT(scale="learned", min_scale=0.01, df=4.0),
        prior=Normal,  # a class, not an instance
        device=torch.device("cpu"),
        max_iter=1,
        random_state=0,
    ).fit(X)
    loaded = _round_trip(vae, tmp_path)
    params = loaded.get_params(deep=False)
    assert params["architecture"].hidden_sizes == (12, 6)
    assert params["architecture"].decoder_hidden_sizes == [6]  # lists stay lists
    assert params["likelihood"].get_params() == {"scale": "learned", "min_scale": 0.01, "df": 4.0}
    assert params["prior"] is Normal
    assert params["device"] == torch.device("cpu") and isinstance(params["device"], torch.device)
    assert isinstance(loaded.likelihood_, StudentT) and loaded.likelihood_.df == 4.0
    _assert_same_predictions(vae, loaded, X)

    acvae = AuxiliaryClassifierVAE(
        architecture=SMALL, likelihood=Gaussian(scale=0.5), classifier_hidden_sizes=(8, 4),
        classifier_activation="relu", max_iter=1, random_state=0,
    ).fit(X, data["y"][:64])
    loaded = _round_trip(acvae, tmp_path)
    assert loaded.classifier_hidden_sizes == (8, 4)
    assert loaded.likelihood.scale == 0.5
    assert loaded.module_.classifier_hidden_sizes == (8, 4)
    _assert_same_predictions(acvae, loaded, X)


@pytest.mark.parametrize("cls", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_string_labels_restored(cls, data, tmp_path):
    X = data["unit"]
    y = np.array(["zero", "one", "two"])[data["y"] % 3]
    model = cls(architecture=SMALL, max_iter=1, random_state=0).fit(X, y)
    loaded = _round_trip(model, tmp_path)
    assert loaded.classes_.dtype == model.classes_.dtype
    assert loaded.classes_.tolist() == ["one", "two", "zero"]
    assert np.array_equal(loaded.class_count_, model.class_count_)
    assert np.array_equal(
        loaded.sample(3, random_state=0, y="two"), model.sample(3, random_state=0, y="two")
    )
    if cls is AuxiliaryClassifierVAE:
        assert loaded.predict(X[:5]).tolist() == model.predict(X[:5]).tolist()
    loaded.partial_fit(X, y)  # the labels are still known


def test_feature_names_restored(data, tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(data["unit"], columns=[f"pixel_{i}" for i in range(64)])
    vae = VAETransformer(architecture=SMALL, max_iter=1, random_state=0).fit(X)
    loaded = _round_trip(vae, tmp_path)
    assert loaded.feature_names_in_.dtype == object
    assert loaded.feature_names_in_.tolist() == vae.feature_names_in_.tolist()
    assert loaded.get_feature_names_out().tolist() == vae.get_feature_names_out().tolist()
    assert np.array_equal(loaded.transform(X), vae.transform(X))


def test_load_device_argument(data, tmp_path):
    vae = VAETransformer(architecture=SMALL, max_iter=1, random_state=0).fit(data["unit"])
    path = skvae.save(vae, tmp_path / "m.skvae")
    loaded = skvae.load(path, device="auto")
    assert loaded.device == "auto"  # the parameter keeps its saved value
    assert loaded._device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            skvae.load(path, device="cuda")


def test_load_runs_no_pickle(data, tmp_path, monkeypatch):
    X, y = data["unit"], data["y"]
    model = ConditionalVAETransformer(architecture=SMALL, max_iter=1, random_state=0).fit(X, y)
    path = skvae.save(model, tmp_path / "m.skvae")

    def forbidden(*args, **kwargs):
        raise AssertionError("load must not unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    loaded = skvae.load(path)
    monkeypatch.undo()
    _assert_same_predictions(model, loaded, X, y)


# ---------------------------------------------------------------- save errors
def test_save_refuses_unrepresentable_parameters(data, tmp_path):
    X = data["unit"]
    vae = VAETransformer(architecture=SMALL, max_iter=1, random_state=np.random.RandomState(0))
    vae.fit(X)
    with pytest.raises(ValueError, match="random_state.*int or None"):
        skvae.save(vae, tmp_path / "m.skvae")
    assert not list(tmp_path.iterdir())

    class Unregistered(Normal):
        name = "io_test_unregistered"

    vae = VAETransformer(architecture=SMALL, prior=Unregistered(), max_iter=1, random_state=0)
    vae.fit(X)
    with pytest.raises(ValueError, match=r"prior=.*io_test_unregistered.*entry point"):
        skvae.save(vae, tmp_path / "m.skvae")

    class Impostor(MLP):  # inherits the name "mlp", registered to MLP
        pass

    vae = VAETransformer(architecture=Impostor, max_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="architecture=.*registered to skvae_plugins.mlp.MLP"):
        skvae.save(vae, tmp_path / "m.skvae")

    vae = VAETransformer(architecture=MLP(hidden_sizes=(8,)), max_iter=1, random_state=0).fit(X)
    vae.architecture.activation = torch.nn.ReLU  # a class, not a name
    with pytest.raises(ValueError, match="architecture__activation=.*not representable as JSON"):
        skvae.save(vae, tmp_path / "m.skvae")


def test_save_refuses_other_classes_and_unfitted_estimators(data, tmp_path):
    class MyVAE(VAETransformer):
        pass

    with pytest.raises(TypeError, match="skvae's own estimators"):
        skvae.save(MyVAE(architecture=SMALL, max_iter=1).fit(data["unit"]), tmp_path / "m.skvae")
    with pytest.raises(NotFittedError):
        skvae.save(VAETransformer(), tmp_path / "m.skvae")


# ---------------------------------------------------------------- load errors
@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    X, y = data["unit"], data["y"]
    model = ConditionalVAETransformer(architecture=SMALL, max_iter=1, random_state=0).fit(X, y)
    path = skvae.save(model, tmp_path_factory.mktemp("saved") / "cvae.skvae")
    return path


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_saved_files_get_the_mode_of_a_new_file(data, tmp_path):
    model = VAETransformer(architecture=SMALL, max_iter=1, random_state=0).fit(data["unit"])
    umask = os.umask(0o027)
    try:
        path = skvae.save(model, tmp_path / "new.skvae")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640  # not mkstemp's 0o600
        os.chmod(path, 0o604)
        skvae.save(model, path)  # a file replaced keeps its mode
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o604
    finally:
        os.umask(umask)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_the_umask_is_read_without_proc_too(monkeypatch):
    from skvae import _io

    umask = os.umask(0o027)
    try:
        assert _io._current_umask() == 0o027

        def no_proc(*args, **kwargs):
            raise OSError("no /proc here")

        monkeypatch.setattr(_io, "open", no_proc, raising=False)
        assert _io._current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # and it is left as it was
    finally:
        os.umask(umask)


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _edit_json(saved, tmp_path, edit):
    members = _members(saved)
    model = json.loads(members["model.json"])
    edit(model)
    members["model.json"] = json.dumps(model).encode()
    return _write(tmp_path / "edited.skvae", members)


def test_tampered_weights_are_refused(saved, tmp_path):
    members = _members(saved)
    weights = bytearray(members["weights.safetensors"])
    weights[-3] ^= 0x01  # one bit of one weight
    members["weights.safetensors"] = bytes(weights)
    with pytest.raises(ModelFileError, match="weights.safetensors does not match the SHA-256"):
        skvae.load(_write(tmp_path / "t.skvae", members))

    members = _members(saved)
    training = bytearray(members["training.safetensors"])
    training[-1] ^= 0xFF
    members["training.safetensors"] = bytes(training)
    with pytest.raises(ModelFileError, match="training.safetensors does not match the SHA-256"):
        skvae.load(_write(tmp_path / "t2.skvae", members))


def test_weights_that_do_not_parse_are_refused(saved, tmp_path):
    members = _members(saved)
    members["weights.safetensors"] = garbage = b"\xff" * 64
    model = json.loads(members["model.json"])
    model["files"]["weights.safetensors"]["sha256"] = hashlib.sha256(garbage).hexdigest()
    members["model.json"] = json.dumps(model).encode()
    with pytest.raises(ModelFileError, match="not a valid safetensors file"):
        skvae.load(_write(tmp_path / "g.skvae", members))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m["fitted"].update(n_features_in_=63), "does not describe the network"),
        (
            lambda m: m["fitted"]["architecture_"]["params"].update(
                hidden_sizes={"type": "tuple", "items": [100000]}
            ),
            r"does not describe the network.*100000",
        ),
        (
            lambda m: m["module"]["tensors"]["net.encoder.0.bias"].update(shape=[17]),
            "tensors listed in model.json differ",
        ),
        (
            lambda m: m["fitted"]["classes_"]["data"].append(10)
            or m["fitted"]["classes_"].update(shape=[11]),
            "classes_ has 11 labels",
        ),
        (lambda m: m["fitted"].update(transform_=1, __class__=2), "fitted attribute"),
        (lambda m: m["params"].update(optimizer="nadam"), "invalid parameter"),
        (lambda m: m["params"].update(not_a_parameter=1), "not_a_parameter"),
        (lambda m: m.update(format="something-else"), "does not describe an skvae model"),
    ],
    ids=[
        "n_features", "hidden_sizes", "tensor_list", "classes", "attribute", "param",
        "unknown_param", "format",
    ],
)
def test_edited_json_is_refused(saved, tmp_path, edit, match):
    with pytest.raises(ModelFileError, match=match):
        skvae.load(_edit_json(saved, tmp_path, edit))


def test_truncated_or_incomplete_files_are_refused(saved, tmp_path):
    data = saved.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 30):
        path = tmp_path / f"cut{size}.skvae"
        path.write_bytes(data[:size])
        with pytest.raises(ModelFileError, match="not a .skvae model file"):
            skvae.load(path)
    members = _members(saved)
    del members["weights.safetensors"]
    with pytest.raises(ModelFileError, match="missing weights.safetensors"):
        skvae.load(_write(tmp_path / "no_weights.skvae", members))
    with pytest.raises(ModelFileError, match="missing model.json"):
        skvae.load(_write(tmp_path / "no_json.skvae", {"weights.safetensors": b""}))
    with pytest.raises(ModelFileError, match="not valid JSON"):
        skvae.load(_write(tmp_path / "bad_json.skvae", {"model.json": b'{"format": '}))
    # A damaged member inside an intact archive: the zip CRC catches it.
    damaged = bytearray(data)
    offset = data.index(b"weights.safetensors") + 200
    damaged[offset] ^= 0xFF
    path = tmp_path / "crc.skvae"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError):
        skvae.load(path)


def test_future_format_version_is_refused(saved, tmp_path):
    with pytest.raises(ModelFileError, match=r"format 2\.0.*Upgrade skvae"):
        skvae.load(_edit_json(saved, tmp_path, lambda m: m.update(format_version="2.0")))
    # A newer minor version only adds keys: it loads.
    loaded = skvae.load(
        _edit_json(saved, tmp_path, lambda m: m.update(format_version="1.9", new_key={"x": 1}))
    )
    assert isinstance(loaded, ConditionalVAETransformer)


@pytest.mark.parametrize("name", ["Pipeline", "os.system", "skvae._io.ModelFileError", "__class__"])
def test_unknown_estimator_class_is_refused(saved, tmp_path, name):
    with pytest.raises(ModelFileError, match="not one of skvae's estimators"):
        skvae.load(_edit_json(saved, tmp_path, lambda m: m.update(estimator=name)))


def test_unknown_plugin_names_its_distribution(saved, tmp_path):
    def rename(model):
        model["fitted"]["prior_"].update(
            plugin="fancy_prior", distribution="skvae-fancy", version="2.1"
        )

    with pytest.raises(ModelFileError) as excinfo:
        skvae.load(_edit_json(saved, tmp_path, rename))
    message = str(excinfo.value)
    assert "prior plugin 'fancy_prior'" in message
    assert "'skvae-fancy' version '2.1'" in message
    assert "pip install 'skvae-fancy==2.1'" in message


def test_disabled_plugin(saved, monkeypatch, clean_registry):
    monkeypatch.setenv("SKVAE_DISABLE_PLUGINS", "normal")
    skvae.reset_registry()
    with pytest.raises(ModelFileError, match="prior plugin 'normal'.*disabled by SKVAE_DISABLE"):
        skvae.load(saved)


def test_plugin_from_an_uninstalled_distribution(data, tmp_path, monkeypatch, clean_registry):
    site = tmp_path / "site"
    site.mkdir()
    dist_info = site / "skvae_io_test-0.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: skvae-io-test\nVersion: 0.3\n"
    )
    (dist_info / "entry_points.txt").write_text("[skvae]\nio_test = skvae_io_test_mod\n")
    (site / "skvae_io_test_mod.py").write_text(
        textwrap.dedent(
            """
            from skvae import hookimpl
            from skvae_plugins.normal import Normal

            class WideNormal(Normal):
                name = "io_test_wide_normal"

            @hookimpl
            def skvae_register_priors():
                return [WideNormal]
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    skvae.reset_registry()
    X = data["unit"]
    vae = VAETransformer(
        architecture=SMALL, prior="io_test_wide_normal", max_iter=1, random_state=0
    )
    path = skvae.save(vae.fit(X), tmp_path / "m.skvae")
    record = json.loads(_members(path)["model.json"])["fitted"]["prior_"]
    assert record["distribution"] == "skvae-io-test" and record["version"] == "0.3"
    assert np.array_equal(skvae.load(path).transform(X), vae.transform(X))

    sys.path.remove(str(site))  # "uninstall" it
    skvae.reset_registry()
    match = r"'io_test_wide_normal'.*'skvae-io-test' version '0.3'.*not installed.*pip install"
    with pytest.raises(ModelFileError, match=match):
        skvae.load(path)


def test_plugin_registered_at_run_time(data, tmp_path, clean_registry):
    class Flat(Normal):
        name = "io_test_runtime"

    class Module:
        @staticmethod
        @skvae.hookimpl
        def skvae_register_priors():
            return [Flat]

    skvae.register_plugin(Module, name="io-test-runtime")
    vae = VAETransformer(architecture=SMALL, prior="io_test_runtime", max_iter=1, random_state=0)
    path = skvae.save(vae.fit(data["unit"]), tmp_path / "m.skvae")
    assert isinstance(skvae.load(path).prior_, Flat)
    skvae.reset_registry()
    with pytest.raises(ModelFileError, match="registered at run time.*register_plugin"):
        skvae.load(path)


def test_plugin_that_changed_its_parameters(saved, tmp_path):
    def add(model):
        model["fitted"]["architecture_"]["params"]["dropout"] = 0.5

    with pytest.raises(ModelFileError, match="does not take the parameters saved"):
        skvae.load(_edit_json(saved, tmp_path, add))


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)
