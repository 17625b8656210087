"""ONNX export (skvae.onnx): ONNX Runtime gives skvae's results, alone and in a Pipeline."""

import importlib
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from numpy.testing import assert_allclose  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

import skvae.onnx  # noqa: E402
from skvae import (  # noqa: E402
    ConditionalVAETransformer,
    VAEOutlierDetector,
    VAETransformer,
)
from skvae.base import map_batches  # noqa: E402
from skvae.onnx import to_onnx  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:150] / 16).astype(np.float32), y[:150]


def _run(model, **feeds):
    session = ort.InferenceSession(model.SerializeToString())
    return session.run(None, feeds)


def _fit(X, **params):
    params = {"n_components": 2, "max_iter": 2, "batch_size": 64, "random_state": 0, **params}
    return VAETransformer(**params).fit(X)


@pytest.mark.parametrize("architecture", ["mlp", "conv", "ladder"])
def test_encoder_and_decoder_match_skvae(digits, architecture):
    X, _ = digits
    small = {"mlp": {"hidden_sizes": (16,)}, "conv": {"filters": (4,), "dense_units": None},
             "ladder": {"latent_sizes": (4,), "hidden_sizes": (16,)}}[architecture]
    vae = _fit(X, architecture=_plugin(architecture, small))
    encoder = to_onnx(vae, log_var=True)
    decoder = to_onnx(vae, "inverse_transform")
    for rows in (X[:1], X[:37]):  # the batch dimension is dynamic
        Z, log_var = _run(encoder, X=rows)
        assert_allclose(Z, vae.transform(rows), rtol=RTOL, atol=ATOL)
        expected = map_batches(vae, lambda xb: vae.module_.encode(xb)[1], rows, 2)
        assert_allclose(log_var, expected, rtol=RTOL, atol=ATOL)
        (X_hat,) = _run(decoder, Z=Z)
        assert_allclose(X_hat, vae.inverse_transform(Z), rtol=RTOL, atol=ATOL)


def _plugin(name, params):
    from skvae import resolve_plugin

    return resolve_plugin("architecture", name).set_params(**params)


def test_gaussian_mean_and_missing_values(digits):
    X, _ = digits
    X = X.copy()
    X[::3, 5] = np.nan  # the encoder takes NaN as transform does
    vae = _fit(X, likelihood="gaussian", missing_values=np.nan)
    (Z,) = _run(to_onnx(vae), X=X[:20])
    assert_allclose(Z, vae.transform(X[:20]), rtol=RTOL, atol=ATOL)
    (X_hat,) = _run(to_onnx(vae, "inverse_transform"), Z=Z)
    assert_allclose(X_hat, vae.inverse_transform(Z), rtol=RTOL, atol=ATOL)


def test_table_of_floats_is_standardised_in_the_graph():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"mass": rng.normal(4000, 500, 80), "bill": rng.normal(40, 5, 80)})
    vae = VAETransformer(n_components=2, likelihood="columns", max_iter=2,
                         random_state=0).fit(frame)
    assert vae.table_schema_.columns[0].standardized
    rows = frame.to_numpy(np.float32)[:10]
    (Z,) = _run(to_onnx(vae), X=rows)
    assert_allclose(Z, vae.transform(frame.iloc[:10]), rtol=RTOL, atol=ATOL)
    (X_hat,) = _run(to_onnx(vae, "inverse_transform"), Z=Z)
    expected = vae.inverse_transform(Z).to_numpy(np.float64)
    assert_allclose(X_hat, expected, rtol=RTOL, atol=1e-3)  # values of order 4000


def test_table_with_categories_is_refused():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"mass": np.linspace(0, 1, 40), "island": ["a", "b"] * 20})
    vae = VAETransformer(n_components=2, max_iter=1, random_state=0).fit(frame)
    with pytest.raises(ValueError, match="'island' \\(categorical"):
        to_onnx(vae)


def test_conditional_with_and_without_label(digits):
    X, y = digits
    cvae = ConditionalVAETransformer(n_components=2, max_iter=2, random_state=0).fit(X, y)
    (Z,) = _run(to_onnx(cvae), X=X[:10])
    assert_allclose(Z, cvae.transform(X[:10]), rtol=RTOL, atol=ATOL)
    onehot = (y[:10, None] == cvae.classes_[None, :]).astype(np.float32)
    (Z,) = _run(to_onnx(cvae, conditions=True), X=X[:10], C=onehot)
    assert_allclose(Z, cvae.transform(X[:10], y[:10]), rtol=RTOL, atol=ATOL)


def test_outlier_detector_decision_and_predict(digits):
    X, y = digits
    det = VAEOutlierDetector(n_components=2, max_iter=2, random_state=0).fit(X[y == 0])
    label, scores = _run(to_onnx(det, "decision_function"), X=X)
    expected = det.decision_function(X)
    assert label.shape == scores.shape == (len(X), 1)
    assert_allclose(scores[:, 0], expected, rtol=RTOL, atol=1e-3)  # scores of order 10 nats
    clear = np.abs(expected) > 1e-2  # a float32 rounding cannot flip these
    assert clear.sum() > len(X) // 2
    np.testing.assert_array_equal(label[clear, 0], det.predict(X)[clear])


def test_pipeline_converts_with_skl2onnx(digits):
    from skl2onnx import to_onnx as skl_to_onnx

    X, y = load_digits(return_X_y=True)
    X, y = X[:200].astype(np.float32), y[:200]
    pipe = Pipeline([
        ("scale", MinMaxScaler(clip=True)),
        ("vae", VAETransformer(n_components=4, max_iter=3, random_state=0)),
        ("clf", LogisticRegression(max_iter=500)),
    ]).fit(X, y)
    model = skl_to_onnx(pipe, X[:1], options={"zipmap": False})
    session = ort.InferenceSession(model.SerializeToString())
    labels, probabilities = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_array_equal(labels, pipe.predict(X))
    assert_allclose(probabilities, pipe.predict_proba(X), rtol=RTOL, atol=ATOL)


def test_refusals(digits):
    X, y = digits
    vae = _fit(X[:60], max_iter=1)
    with pytest.raises(ValueError, match="decision_function"):
        to_onnx(vae, "decision_function")
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(vae, "score_samples")
    with pytest.raises(ValueError, match="target_opset must be an integer >= 18"):
        to_onnx(vae, target_opset=13)
    with pytest.raises(ValueError, match="takes no label"):
        to_onnx(vae, conditions=True)
    with pytest.raises(TypeError, match="skl2onnx.to_onnx"):
        to_onnx(Pipeline([("vae", vae)]))
    from skvae import AuxiliaryClassifierVAE

    acvae = AuxiliaryClassifierVAE(n_components=2, max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="AuxiliaryClassifierVAE does not export"):
        to_onnx(acvae)


@pytest.mark.parametrize("missing", ["onnx", "skl2onnx", "onnxscript"])
def test_missing_extra_names_it(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import fails
    monkeypatch.delitem(sys.modules, "skvae.onnx")
    with pytest.raises(ImportError, match=r'pip install "skvae\[onnx\]"'):
        importlib.import_module("skvae.onnx")
    monkeypatch.undo()
    assert sys.modules["skvae.onnx"] is skvae.onnx


# ------------------------------------------------------------- skvae export
from skvae.cli import main  # noqa: E402  (the CLI tests below)


def _assert_error(code, capsys, message):
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("skvae: error: ") and message in err, err


# --- tests for tests/test_cli.py (use its digits_run fixture there) ---
@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    X = skvae.datasets.load_digits().data[:100]
    vae = skvae.VAETransformer(n_components=3, max_iter=1, random_state=0).fit(X)
    return skvae.save(vae, tmp_path_factory.mktemp("m") / "model.skvae")


def test_export_onnx_runs_like_the_model(digits_model, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxscript")
    vae = skvae.load(digits_model)
    X = skvae.datasets.load_digits().data[:10].astype(np.float32)
    out = tmp_path / "encoder.onnx"
    assert main(["export", str(digits_model), "--format", "onnx", "--out", str(out)]) == 0
    assert "inputs X; outputs Z" in capsys.readouterr().err
    session = ort.InferenceSession(str(out))
    np.testing.assert_allclose(session.run(None, {"X": X})[0], vae.transform(X),
                               rtol=1e-4, atol=1e-5)
    out = tmp_path / "decoder.onnx"
    assert main(["export", str(digits_model), "--method", "inverse_transform",
                 "--out", str(out)]) == 0
    Z = vae.transform(X)
    np.testing.assert_allclose(ort.InferenceSession(str(out)).run(None, {"Z": Z})[0],
                               vae.inverse_transform(Z), rtol=1e-4, atol=1e-5)


def test_export_errors_return_2(digits_model, tmp_path, capsys, monkeypatch):
    code = main(["export", str(digits_model), "--out", str(tmp_path / "model.txt")])
    _assert_error(code, capsys, "--out must end in .onnx")
    code = main(["export", str(digits_model), "--method", "decision_function",
                 "--out", str(tmp_path / "d.onnx")])
    _assert_error(code, capsys, "exports a VAEOutlierDetector")
    code = main(["export", str(tmp_path / "missing.skvae"), "--out", str(tmp_path / "m.onnx")])
    _assert_error(code, capsys, "model file not found")
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    monkeypatch.delitem(sys.modules, "skvae.onnx", raising=False)
    code = main(["export", str(digits_model), "--out", str(tmp_path / "m.onnx")])
    _assert_error(code, capsys, 'pip install "skvae[onnx]"')
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(SystemExit):
        main(["export", str(digits_model), "--format", "torchscript"])
