"""Tests of the ``skvae`` command (skvae.cli)."""

import importlib.metadata
import json
import math
import os
import pathlib
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import skvae
import skvae._report
import skvae.cli
import skvae.datasets
from skvae.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = [
    "latent_scatter.png",
    "latent_manifold.png",
    "samples.png",
    "reconstructions.png",
    "latent_traversal.png",
    "training_curves.png",
    "kl_per_dimension.png",
]
FAST = ["--epochs", "1", "--hidden-sizes", "32", "--quiet"]


def _check_run(out, n_iter=1, figures=FIGURES):
    """The files of a `skvae fit` run: model, metrics, figures and the page."""
    assert not (out / "model.joblib").exists()
    assert (out / "model.skvae").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(figures)
    assert metrics["figures"] == list(figures)
    for name in pngs:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    for key in ("train_elbo", "test_elbo", "test_log_likelihood"):
        assert math.isfinite(metrics[key]), key
    assert metrics["iwae_k"] == 100
    # The IWAE bound with k=100 is at least about the ELBO (both estimated).
    assert metrics["test_log_likelihood"] > metrics["test_elbo"] - 1.0
    assert isinstance(metrics["active_units"], int)
    assert 0 <= metrics["active_units"] <= metrics["n_components"]
    assert len(metrics["latent_variance"]) == metrics["n_components"]
    assert metrics["n_iter"] == n_iter
    assert len(metrics["history"]) == n_iter
    assert {"loss", "reconstruction", "kl"} <= set(metrics["history"][0])
    assert metrics["fit_seconds"] > 0
    for key in ("architecture", "likelihood", "prior", "n_components", "command"):
        assert key in metrics

    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    linked = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(linked) == pngs  # every PNG that exists, and only those
    assert page.count("<figcaption>") == len(pngs)
    assert f"{metrics['test_elbo']:.3f}" in page
    assert f"{metrics['test_log_likelihood']:.3f}" in page
    assert f"{metrics['active_units']} of {metrics['n_components']}" in page
    assert 'href="metrics.json"' in page and 'href="model.skvae"' in page
    assert "/" not in "".join(linked)  # relative links, next to the page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert set(re.findall(r'href="#([^"]+)"', page)) <= set(ids)  # the contents resolve
    assert len(ids) == len(set(ids))
    base = metrics["baseline"]
    assert base["n_components"] == min(metrics["n_components"], metrics["n_features"])
    assert f"{base['reconstruction_error']['pca']['test']:.3f}" in page
    assert set(metrics["params"]) == set(skvae.load(out / "model.skvae").get_params(deep=False))
    return metrics


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A quick fit on digits: 3 latent dimensions, 300 training samples."""
    out = tmp_path_factory.mktemp("cli") / "digits"
    argv = ["fit", "--epochs", "2", "--n-train", "300", "--n-components", "3", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    return out


# ---------------------------------------------------------------------- fit
def test_fit_digits_writes_every_output(digits_run):
    metrics = _check_run(digits_run, n_iter=2)
    assert metrics["likelihood"] == "Bernoulli()"
    assert metrics["architecture"] == "MLP()"
    assert metrics["prior"] == "Normal()"
    assert metrics["estimator"] == "VAETransformer"
    assert metrics["image_shape"] == [8, 8, 1]
    assert (metrics["n_train"], metrics["n_test"]) == (300, math.ceil(360 * 300 / 1437))
    assert metrics["figures_skipped"] == {}
    assert len(metrics["kl_per_dimension"]) == 3
    # The saved model is the fitted estimator, in the safe format.
    vae = skvae.load(digits_run / "model.skvae")
    assert isinstance(vae, skvae.VAETransformer)
    assert vae.n_iter_ == 2
    assert vae.sample(3, random_state=0).shape == (3, 64)
    # Three latent dimensions: the manifold varies the two most active ones.
    page = (digits_run / "index.html").read_text()
    assert "the two most active of 3 dimensions" in page
    assert "<title>skvae fit: digits</title>" in page
    # Two epochs: not converged, and the page says so first.
    assert "reached max_iter=2" in metrics["convergence_warning"]
    assert '<p class="note"><strong>Training did not converge.</strong>' in page
    assert metrics["likelihood_choice"] == (
        "chosen by likelihood='auto': every training value lies in [0, 1]"
    )
    assert metrics["columns"] is None
    assert metrics["params"]["max_iter"] == "2" and "max_iter" not in metrics["params_at_default"]


def test_fit_digits_reports_the_pca_baseline(digits_run):
    """The baseline of metrics.json: PCA on the same split, as a direct computation gives."""
    from sklearn.decomposition import PCA

    metrics = json.loads((digits_run / "metrics.json").read_text())
    data = skvae.datasets.load("digits")
    X_train, X_test, y_train, y_test = skvae.datasets.split(data, n_train=300, random_state=0)
    pca = PCA(n_components=3, random_state=0).fit(X_train)
    base = metrics["baseline"]
    for part, X in (("train", X_train), ("test", X_test)):
        error = np.mean(np.sum((X - pca.inverse_transform(pca.transform(X))) ** 2, axis=1))
        np.testing.assert_allclose(base["reconstruction_error"]["pca"][part], error, rtol=1e-4)
    assert set(base["accuracy"]) == {"vae", "pca", "chance"}
    assert 0.0 <= base["accuracy"]["vae"] <= 1.0
    assert base["pca_test_log_likelihood"] is None  # Bernoulli nats
    page = (digits_run / "index.html").read_text()
    assert f"{base['accuracy']['pca']:.1%}" in page


def test_fit_summary_prints_the_baseline(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--epochs", "1", "--n-train", "100", "--hidden-sizes", "16",
                 "--out", str(out)]) == 0  # fmt: skip
    stdout = capsys.readouterr().out
    base = json.loads((out / "metrics.json").read_text())["baseline"]
    err, acc = base["reconstruction_error"], base["accuracy"]
    assert (
        f"  PCA         2 components: test reconstruction error {err['pca']['test']:.3f}, "
        f"VAE {err['vae']['test']:.3f} (squared error per sample)"
    ) in stdout
    assert f"on the codes: PCA {acc['pca']:.1%}, VAE {acc['vae']:.1%}" in stdout


def test_fit_early_stopping_draws_the_validation_curve(tmp_path):
    out = tmp_path / "run"
    argv = ["fit", "--early-stopping", "--validation-fraction", "0.25", "--n-train", "200"]
    assert main([*argv, "--out", str(out), "--epochs", "3", "--hidden-sizes", "16",
                 "--quiet"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    figures = FIGURES[:6] + ["validation_curve.png"] + FIGURES[6:]
    _check_run(out, n_iter=metrics["n_iter"], figures=figures)
    assert metrics["params"]["early_stopping"] == "True"
    assert metrics["params"]["validation_fraction"] == "0.25"
    assert all(h["val_loss"] is not None for h in metrics["history"])
    page = (out / "index.html").read_text()
    assert '<a href="#validation_curve">Validation curve</a>' in page
    assert "the 25% of the training rows held out" in page


def test_fit_reports_with_a_progress_bar(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--epochs", "1", "--n-train", "100", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    metrics = _check_run(out)
    assert metrics["n_components"] == 2
    assert "train ELBO" in captured.out and "test ELBO" in captured.out
    assert f"{metrics['test_elbo']:.3f}" in captured.out
    assert f"{metrics['test_log_likelihood']:.3f}" in captured.out
    assert "IWAE bound, k=100" in captured.out
    assert f"{metrics['active_units']} of 2 latent units" in captured.out
    assert "1 of 1" in captured.out
    assert str(out / "index.html") in captured.out
    assert "skvae fit" in captured.err  # tqdm progress bar
    assert "Traceback" not in captured.err


def test_warnings_read_as_skvae_warnings(tmp_path, capsys):
    """A ConvergenceWarning prints as one 'skvae: warning:' line, no source line."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("always", ConvergenceWarning)
        assert main(["fit", "--epochs", "1", "--n-train", "100", "--quiet", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skvae: warning: VAETransformer reached max_iter=1" in err
    assert "ConvergenceWarning" not in err and "vae.fit(" not in err


def test_fit_options_reach_the_estimator(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "fit",
        "--epochs", "2",
        "--n-components", "3",
        "--hidden-sizes", "16, 8",
        "--batch-size", "64",
        "--learning-rate", "2e-3",
        "--beta", "0.5",
        "--kl-warmup", "0.5",
        "--likelihood", "gaussian",
        "--test-size", "0.25",
        "--n-train", "200",
        "--random-state", "3",
        "--device", "cpu",
        "--precision", "bf16-mixed",
        "--threads", "2",
        "--out", str(out),
        "--quiet",
    ]  # fmt: skip
    threads = torch.get_num_threads()
    assert main(argv) == 0
    assert torch.get_num_threads() == threads  # restored after the fit
    assert capsys.readouterr().out == ""  # --quiet
    metrics = _check_run(out, n_iter=2)
    assert metrics["n_components"] == 3
    assert metrics["n_train"] == 200
    assert metrics["args"]["threads"] == 2
    assert metrics["architecture"] == "MLP(hidden_sizes=(16, 8))"
    assert metrics["likelihood"] == "Gaussian()"
    assert [h["beta"] for h in metrics["history"]] == [0.0, 0.5]
    assert "beta and the learning rate" in (out / "index.html").read_text()
    vae = skvae.load(out / "model.skvae")
    assert vae.get_params()["batch_size"] == 64
    assert vae.get_params()["learning_rate"] == 2e-3
    assert vae.get_params()["random_state"] == 3
    assert vae.get_params()["precision"] == "bf16-mixed"


@pytest.mark.parametrize(
    "argv, expected",
    [([], False), (["--compile"], "default"), (["--compile", "reduce-overhead"], "reduce-overhead")],
)
def test_compile_option_reaches_the_estimator(argv, expected):
    from skvae.cli import build_parser, make_estimator

    args = build_parser().parse_args(["fit", *argv])
    assert make_estimator(args).compile == expected


def test_fit_npy(tmp_path):
    X = np.random.RandomState(0).normal(size=(120, 5)).astype(np.float32)
    path = tmp_path / "data.npy"
    np.save(path, X)
    out = tmp_path / "run"
    assert main(["fit", "--data", str(path), "--out", str(out), *FAST]) == 0
    metrics = _check_run(out)
    assert metrics["likelihood"] == "Gaussian()"  # auto: data outside [0, 1]
    assert (metrics["n_train"], metrics["n_test"], metrics["n_features"]) == (96, 24, 5)
    assert metrics["image_shape"] is None  # 5 features: drawn as lines
    # No labels: the points are coloured by their ELBO.
    assert "coloured by their ELBO" in (out / "index.html").read_text()


@pytest.mark.parametrize("header", [True, False])
def test_fit_csv(tmp_path, header):
    # 16 features in [0, 1]: square 4x4 images, Bernoulli likelihood.
    X = np.random.RandomState(0).uniform(size=(50, 16))
    path = tmp_path / "data.csv"
    names = ",".join(f"f{i}" for i in range(16))
    np.savetxt(path, X, delimiter=",", header=names if header else "", comments="")
    assert (path.read_text().splitlines()[0] == names) is header
    out = tmp_path / "run"
    assert main(["fit", "--data", str(path), "--out", str(out), *FAST]) == 0
    metrics = _check_run(out)
    assert metrics["n_train"] + metrics["n_test"] == 50
    assert metrics["n_features"] == 16
    assert metrics["likelihood"] == "Bernoulli()"


def test_fit_textures_with_n_train(tmp_path):
    out = tmp_path / "run"
    argv = ["fit", "--data", "textures", "--n-train", "60", "--n-components", "1"]
    assert main([*argv, "--out", str(out), *FAST]) == 0
    # A 1-D latent space has no manifold; the page says why.
    figures = [f for f in FIGURES if f != "latent_manifold.png"]
    metrics = _check_run(out, figures=figures)
    assert metrics["n_train"] == 60
    assert metrics["n_features"] == 784
    assert metrics["image_shape"] == [28, 28, 1]
    assert "latent_manifold.png" in metrics["figures_skipped"]
    page = (out / "index.html").read_text()
    assert "Not drawn" in page and "1-D latent space" in page
    assert "coloured by source image" in page


def test_fit_conditional_draws_the_class_grid(tmp_path):
    out = tmp_path / "run"
    argv = ["fit", "--conditional", "--n-train", "200", "--out", str(out), *FAST]
    assert main(argv) == 0
    metrics = _check_run(out, figures=[*FIGURES, "class_conditional.png"])
    assert metrics["estimator"] == "ConditionalVAETransformer"
    (out / "notes.txt").write_text("mine")  # the user's: an overwriting run keeps it
    vae = skvae.load(out / "model.skvae")
    assert isinstance(vae, skvae.ConditionalVAETransformer)
    # Samples of one class.
    samples = tmp_path / "threes.npy"
    argv = ["sample", str(out / "model.skvae"), "--label", "3", "--n", "5", "--random-state", "1"]
    assert main([*argv, "--out", str(samples)]) == 0
    expected = vae.sample(5, random_state=1, y=3)
    np.testing.assert_array_equal(np.load(samples), expected)
    # A plain fit into the same folder leaves no stale class grid behind.
    assert main(["fit", "--n-train", "100", "--out", str(out), *FAST]) == 0
    metrics = _check_run(out)
    assert metrics["estimator"] == "VAETransformer"
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "threes.npy"]  # no staging


def test_fit_passes_the_image_shape_to_conv(tmp_path):
    out = tmp_path / "run"
    argv = ["fit", "--architecture", "conv", "--image-shape", "8,8", "--n-train", "100"]
    assert main([*argv, "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    metrics = _check_run(out)
    assert metrics["architecture"] == "Conv(image_shape=(8, 8, 1))"


def test_fit_default_out_is_named_after_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "mydata.npy", np.random.RandomState(0).uniform(size=(30, 3)))
    assert main(["fit", "--data", "mydata.npy", *FAST]) == 0
    _check_run(tmp_path / "runs" / "mydata")


# ----------------------------------------------------------- sample, encode
@pytest.mark.parametrize("suffix", [".npy", ".csv"])
@pytest.mark.parametrize("decode", ["mean", "draw"])
def test_sample_round_trip(digits_run, tmp_path, suffix, decode, capsys):
    model = digits_run / "model.skvae"
    out = tmp_path / f"samples{suffix}"
    argv = ["sample", str(model), "--n", "7", "--random-state", "5", "--decode", decode]
    assert main([*argv, "--out", str(out)]) == 0
    assert f"Wrote 7 samples to {out}" in capsys.readouterr().err
    expected = skvae.load(model).sample(7, random_state=5, decode=decode)
    if suffix == ".npy":
        written = np.load(out)
        assert written.dtype == np.float32
    else:
        written = np.loadtxt(out, delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(written, expected)  # exact, the CSV too


def test_sample_png_and_default_out(digits_run, tmp_path, monkeypatch):
    model = digits_run / "model.skvae"
    out = tmp_path / "grid" / "samples.png"  # the folder is made
    assert main(["sample", str(model), "--n", "12", "--random-state", "0", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(model), "--random-state", "0"]) == 0
    assert np.load(tmp_path / "samples.npy").shape == (16, 64)  # --n 16 by default


def test_encode_round_trip(digits_run, tmp_path):
    model = digits_run / "model.skvae"
    vae = skvae.load(model)
    X = np.random.RandomState(0).uniform(size=(20, 64)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "codes.csv"
    assert main(["encode", str(model), str(tmp_path / "X.npy"), "--out", str(out)]) == 0
    codes = np.loadtxt(out, delimiter=",", ndmin=2, dtype=np.float32)
    np.testing.assert_array_equal(codes, vae.transform(X))
    # A data set name: all its samples.
    out = tmp_path / "digits.npy"
    assert main(["encode", str(model), "digits", "--out", str(out)]) == 0
    codes = np.load(out)
    assert codes.shape == (1797, 3)
    np.testing.assert_array_equal(codes, vae.transform(skvae.datasets.load_digits().data))


# ------------------------------------------------- outliers, scores, impute
FIT_SMALL = ["--epochs", "2", "--n-train", "300", "--hidden-sizes", "32", "--quiet"]


def _digits_split(n_train=300):
    """The train and test rows of `skvae fit` on digits with --n-train and the defaults."""
    data = skvae.datasets.load("digits")
    X_train, X_test, _, _ = skvae.datasets.split(data, n_train=n_train, random_state=0)
    return X_train, X_test


@pytest.fixture(scope="module")
def outlier_run(tmp_path_factory):
    """`skvae fit --outliers` on 300 digits, 10 % contamination."""
    out = tmp_path_factory.mktemp("cli") / "outliers"
    argv = ["fit", "--outliers", "--contamination", "0.1", *FIT_SMALL, "--out", str(out)]
    assert main(argv) == 0
    return out


def test_fit_outliers_writes_the_detector_and_its_figure(outlier_run):
    metrics = _check_run(outlier_run, n_iter=2, figures=[*FIGURES, "outliers.png"])
    detector = skvae.load(outlier_run / "model.skvae")
    assert isinstance(detector, skvae.VAEOutlierDetector)
    assert metrics["estimator"] == "VAEOutlierDetector"
    default = skvae.VAEOutlierDetector().score_method
    assert (detector.contamination, detector.score_method) == (0.1, default)
    assert (metrics["contamination"], metrics["score_method"]) == (0.1, default)
    assert metrics["offset"] == pytest.approx(detector.offset_, rel=1e-6)
    X_train, X_test = _digits_split()
    # The offset is the 10 % quantile of the training scores.
    assert metrics["train_outlier_share"] == pytest.approx(0.1, abs=0.01)
    flagged = np.mean(detector.predict(X_test) == -1)
    assert metrics["test_outlier_share"] == pytest.approx(flagged, abs=2 / len(X_test))
    # The ELBO of the metrics is the ELBO, as for a VAETransformer.
    np.testing.assert_allclose(
        metrics["test_elbo"], detector.score_samples(X_test, method="elbo").mean(), rtol=1e-4
    )
    page = (outlier_run / "index.html").read_text()
    assert "Most anomalous test rows." in page
    assert "Test rows predicted outliers" in page
    assert f"{metrics['offset']:.3f}" in page


def test_fit_outliers_reports_the_offset(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["fit", "--outliers", "--score-method", "elbo", "--epochs", "1",
            "--n-train", "100", "--hidden-sizes", "16", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["contamination"], metrics["score_method"]) == ("auto", "elbo")
    assert skvae.load(out / "model.skvae").score_method == "elbo"
    assert f"offset      {metrics['offset']:10.3f} (elbo score" in printed
    assert f"{metrics['test_outlier_share']:.1%} of test rows" in printed
    assert "missing" not in printed


def _read_scores(path):
    """The columns of a `skvae score` CSV: {name: values}."""
    names = path.read_text().splitlines()[0].split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return dict(zip(names, table.T))


def test_score_writes_the_models_own_scores(digits_run, tmp_path, capsys):
    model = digits_run / "model.skvae"
    vae = skvae.load(model)
    X = skvae.datasets.load_digits().data[:50].astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "scores.csv"
    assert main(["score", str(model), str(tmp_path / "X.npy"), "--out", str(out)]) == 0
    assert "Wrote score_samples of 50 samples" in capsys.readouterr().err
    columns = _read_scores(out)
    assert list(columns) == ["score_samples"]
    np.testing.assert_allclose(columns["score_samples"], vae.score_samples(X), rtol=1e-4, atol=1e-5)
    # The IWAE bound with K draws, to .npy: one column.
    out = tmp_path / "iwae.npy"
    argv = ["score", str(model), str(tmp_path / "X.npy"), "--method", "iwae", "--n-importance", "8"]
    threads = torch.get_num_threads()
    assert main([*argv, "--threads", "1", "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads  # set back
    scores = np.load(out)
    assert scores.shape == (50, 1) and scores.dtype == np.float64
    expected = vae.score_samples(X, method="iwae", n_importance=8)
    np.testing.assert_allclose(scores[:, 0], expected, rtol=1e-4, atol=1e-5)


def test_score_writes_a_detectors_decisions(outlier_run, tmp_path, capsys):
    model = outlier_run / "model.skvae"
    detector = skvae.load(model)
    _, X_test = _digits_split()
    np.savetxt(tmp_path / "X.csv", X_test, delimiter=",", fmt="%.9g")
    out = tmp_path / "scores.csv"
    assert main(["score", str(model), str(tmp_path / "X.csv"), "--out", str(out)]) == 0
    columns = _read_scores(out)
    assert list(columns) == ["score_samples", "decision_function", "predict"]
    decision = detector.decision_function(X_test)
    np.testing.assert_allclose(columns["score_samples"], detector.score_samples(X_test),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(columns["decision_function"], decision, rtol=1e-4, atol=1e-4)
    assert set(columns["predict"]) <= {-1.0, 1.0}
    clear = np.abs(decision) > 1e-3  # rows on the offset may round either way elsewhere
    np.testing.assert_array_equal(columns["predict"][clear], detector.predict(X_test)[clear])
    # Another score: decision_function and predict stay the detector's own.
    capsys.readouterr()
    other = next(m for m in ("elbo", "reconstruction") if m != detector.score_method)
    out = tmp_path / "other.npy"
    argv = ["score", str(model), str(tmp_path / "X.csv"), "--method", other]
    assert main([*argv, "--out", str(out)]) == 0
    assert "decision_function and predict come from the detector's own" in capsys.readouterr().err
    table = np.load(out)
    assert table.shape == (len(X_test), 3)
    expected = detector.score_samples(X_test, method=other)
    np.testing.assert_allclose(table[:, 0], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(table[:, 1], decision, rtol=1e-4, atol=1e-4)


def test_score_errors_return_2(digits_run, tmp_path, capsys):
    model = str(digits_run / "model.skvae")
    np.save(tmp_path / "five.npy", np.zeros((4, 5), dtype=np.float32))
    np.save(tmp_path / "wide.npy", 16 * skvae.datasets.load_digits().data[:4])
    (tmp_path / "fake.skvae").write_bytes(b"not a zip file")
    out = str(tmp_path / "s.csv")
    cases = [
        (["score", model, str(tmp_path / "five.npy")], "has 5 features per sample but the model"),
        (["score", model, str(tmp_path / "wide.npy")], "likelihood needs data in [0, 1]"),
        (["score", str(tmp_path / "fake.skvae"), "digits"], "is not a .skvae model file"),
        (["score", "missing.skvae", "digits"], "model file not found: missing.skvae"),
        (["score", model, "digits", "--method", "reconstruction"],
         "--method reconstruction is the score of a VAEOutlierDetector"),
    ]  # fmt: skip
    for argv, expected in cases:
        _assert_error(main([*argv, "--out", out]), capsys, expected)
    _assert_error(
        main(["score", model, "digits", "--out", str(tmp_path / "s.txt")]),
        capsys,
        "--out must end in .npy or .csv",
    )
    assert not (tmp_path / "s.csv").exists()


@pytest.fixture(scope="module")
def incomplete_digits(tmp_path_factory):
    """300 digits with 20 % of the entries missing (NaN), as .npy."""
    X = skvae.datasets.load_digits().data[:300].astype(np.float32)
    X[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
    path = tmp_path_factory.mktemp("incomplete") / "incomplete.npy"
    np.save(path, X)
    return path


@pytest.fixture(scope="module")
def missing_run(incomplete_digits):
    """`skvae fit --missing-values nan` on the incomplete digits."""
    out = incomplete_digits.parent / "run"
    argv = ["fit", "--data", str(incomplete_digits), "--missing-values", "nan", *FIT_SMALL]
    assert main([*argv, "--image-shape", "8,8", "--out", str(out)]) == 0
    return out


def test_fit_on_missing_values(missing_run, incomplete_digits, tmp_path, capsys):
    metrics = _check_run(missing_run, n_iter=2)
    vae = skvae.load(missing_run / "model.skvae")
    assert isinstance(vae, skvae.VAETransformer) and np.isnan(vae.missing_values)
    assert metrics["train_missing_share"] == pytest.approx(0.2, abs=0.03)
    assert metrics["test_missing_share"] == pytest.approx(0.2, abs=0.05)
    assert "Missing entries, training set" in (missing_run / "index.html").read_text()
    # Without --missing-values, NaN entries are an error that names the option.
    argv = ["fit", "--data", str(incomplete_digits), *FIT_SMALL, "--out", str(tmp_path / "o")]
    _assert_error(main(argv), capsys, "missing (NaN) entries; fit on the observed entries "
                                      "with --missing-values nan")  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_fit_outliers_on_missing_values(incomplete_digits, tmp_path):
    out = tmp_path / "run"
    argv = ["fit", "--data", str(incomplete_digits), "--missing-values", "nan", "--outliers"]
    assert main([*argv, *FIT_SMALL, "--out", str(out)]) == 0
    _check_run(out, n_iter=2, figures=[*FIGURES, "outliers.png"])
    detector = skvae.load(out / "model.skvae")
    assert isinstance(detector, skvae.VAEOutlierDetector) and np.isnan(detector.missing_values)
    X = np.load(incomplete_digits)
    table = tmp_path / "scores.csv"
    assert main(["score", str(out / "model.skvae"), str(incomplete_digits), "--out", str(table)]) == 0
    columns = _read_scores(table)
    np.testing.assert_allclose(columns["decision_function"], detector.decision_function(X),
                               rtol=1e-4, atol=1e-4)  # fmt: skip


def _check_filled(filled, X, expected):
    """Imputed entries at exactly the NaN positions of X; observed entries unchanged."""
    missing = np.isnan(X)
    assert filled.shape == X.shape and not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~missing], X[~missing])
    np.testing.assert_allclose(filled[missing], expected[missing], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_impute_fills_the_missing_entries(missing_run, incomplete_digits, suffix, tmp_path, capsys):
    model = missing_run / "model.skvae"
    vae = skvae.load(model)
    X = np.load(incomplete_digits)
    out = tmp_path / f"filled{suffix}"
    argv = ["impute", str(model), str(incomplete_digits), "--n-importance", "50", "--threads", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    assert f"Filled {int(np.isnan(X).sum())} missing entries of 300 samples" in capsys.readouterr().err
    filled = np.load(out) if suffix == ".npy" else np.loadtxt(out, delimiter=",", dtype=np.float32)
    _check_filled(filled, X, vae._complete(X, n_importance=50))


def test_impute_reads_nan_fields_of_a_csv(missing_run, incomplete_digits, tmp_path):
    model = missing_run / "model.skvae"
    X = np.load(incomplete_digits)[:40]
    np.savetxt(tmp_path / "X.csv", X, delimiter=",", fmt="%.9g", header="a" * 64, comments="")
    assert "nan" in (tmp_path / "X.csv").read_text()
    out = tmp_path / "filled.npy"
    assert main(["impute", str(model), str(tmp_path / "X.csv"), "--n-importance", "20",
                 "--out", str(out)]) == 0  # fmt: skip
    _check_filled(np.load(out), X, skvae.load(model)._complete(X, n_importance=20))


def test_impute_reads_empty_fields_of_a_csv(missing_run, incomplete_digits, tmp_path):
    model = missing_run / "model.skvae"
    X = np.load(incomplete_digits)[:40]
    lines = [",".join("" if np.isnan(v) else f"{v:.9g}" for v in row) for row in X]
    (tmp_path / "X.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "filled.npy"
    assert main(["impute", str(model), str(tmp_path / "X.csv"), "--n-importance", "20",
                 "--out", str(out)]) == 0  # fmt: skip
    _check_filled(np.load(out), X, skvae.load(model)._complete(X, n_importance=20))


def test_impute_with_a_vae_imputer(incomplete_digits, tmp_path):
    X = np.load(incomplete_digits)
    imputer = skvae.VAEImputer(max_iter=2, n_impute_draws=20, random_state=0).fit(X)
    skvae.save(imputer, tmp_path / "imputer.skvae")
    out = tmp_path / "filled.npy"
    assert main(["impute", str(tmp_path / "imputer.skvae"), str(incomplete_digits),
                 "--out", str(out)]) == 0  # fmt: skip
    _check_filled(np.load(out), X, imputer.transform(X))
    # --n-importance replaces the imputer's n_impute_draws.
    assert main(["impute", str(tmp_path / "imputer.skvae"), str(incomplete_digits),
                 "--n-importance", "7", "--out", str(out)]) == 0  # fmt: skip
    _check_filled(np.load(out), X, imputer.set_params(n_impute_draws=7).transform(X))
    # encode writes its latent codes, not the completed data of its transform.
    out = tmp_path / "codes.npy"
    assert main(["encode", str(tmp_path / "imputer.skvae"), str(incomplete_digits),
                 "--out", str(out)]) == 0  # fmt: skip
    np.testing.assert_allclose(np.load(out), imputer.encode(X), rtol=1e-4, atol=1e-5)


def test_impute_errors_return_2(digits_run, missing_run, tmp_path, capsys):
    out = str(tmp_path / "filled.csv")
    np.save(tmp_path / "five.npy", np.full((4, 5), np.nan, dtype=np.float32))
    cases = [
        (["impute", str(digits_run / "model.skvae"), "digits"],
         "holds a VAETransformer fitted without missing values, which cannot impute: fit a "
         "model on data with missing (NaN) entries, with `skvae fit --data FILE "
         "--missing-values nan` or skvae.VAEImputer in Python"),
        (["impute", str(missing_run / "model.skvae"), str(tmp_path / "five.npy")],
         "has 5 features per sample but the model"),
        (["impute", "missing.skvae", "digits"], "model file not found"),
        (["impute", str(missing_run / "model.skvae"), "digits", "--out",
          str(tmp_path / "f.png")], "--out must end in .npy or .csv"),
    ]  # fmt: skip
    for argv, expected in cases:
        _assert_error(main(argv if "--out" in argv else [*argv, "--out", out]), capsys, expected)
    assert not (tmp_path / "filled.csv").exists()


# ------------------------------------------------------------------ plugins
def test_plugins_lists_distributions(capsys):
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "DISTRIBUTION", "ENTRY-POINT", "CLASS"]
    version = importlib.metadata.version("skvae")
    for kind, name, entry_point, cls in [
        ("architecture", "mlp", "mlp", "skvae_plugins.mlp.MLP"),
        ("architecture", "keras_conv", "presets", "skvae_plugins.presets.KerasConv"),
        ("likelihood", "bernoulli", "bernoulli", "skvae_plugins.bernoulli.Bernoulli"),
        ("likelihood", "gaussian", "gaussian", "skvae_plugins.gaussian.Gaussian"),
        ("prior", "normal", "normal", "skvae_plugins.normal.Normal"),
    ]:
        expected = [kind, name, "skvae", version, entry_point, cls]
        assert any(line.split() == expected for line in lines), (kind, name)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skvae {skvae.__version__}"


@pytest.mark.parametrize(
    "command", [[], ["fit"], ["sample"], ["encode"], ["score"], ["impute"], ["plugins"]]
)
def test_help_reads_well(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: skvae {' '.join(command)}".rstrip())
    assert "(default: None)" not in text and "(default: False)" not in text
    if command == []:
        for name in ("fit", "sample", "encode", "score", "impute", "plugins"):
            assert re.search(rf"^\s+{name}\s+\S", text, re.M), name
    if command == ["fit"]:
        for option in ("--data", "--n-train", "--data-home", "--grayscale", "--image-shape",
                       "--outliers", "--contamination", "--score-method", "--missing-values"):
            assert option in text
        for name in ("model.skvae", "index.html", "fashion-mnist", "cifar10", "textures"):
            assert name in text


def test_the_command_names_the_data_sets_that_skvae_datasets_loads():
    # Written out in skvae.cli so that --help needs no numpy; the same names.
    assert skvae.cli.DATASETS == skvae.datasets.DATASET_NAMES


def test_the_command_names_the_detectors_scores_and_defaults():
    # Written out in skvae.cli so that --help needs no torch; the same values.
    import skvae._outlier

    assert skvae.cli.SCORE_METHODS == skvae._outlier.SCORE_METHODS
    detector = skvae.VAEOutlierDetector()
    for name, value in skvae.cli.DETECTOR_DEFAULTS.items():
        assert getattr(detector, name) == value, name


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "argv, expected",
    [
        (["fit", "--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
        (["fit", "--n-components", "two"], "--n-components"),
        (["fit", "--n-train", "0"], "--n-train"),
        (["fit", "--test-size", "1.5"], "--test-size"),
        (["fit", "--kl-warmup", "2"], "--kl-warmup"),
        (["fit", "--learning-rate", "-1"], "--learning-rate"),
        (["fit", "--hidden-sizes", "64,x"], "--hidden-sizes"),
        (["fit", "--image-shape", "1,2,3,4"], "--image-shape"),
        (["fit", "--grayscale"], "--grayscale applies to --data cifar10 only"),
        (["fit", "--data", "x.npy", "--conditional"], "--conditional needs labels"),
        (["fit", "--no-such-option"], "--no-such-option"),
        (["fit", "--device", "meta"], "--device: must be auto, cpu, cuda, cuda:N"),
        (["fit", "--device", "cuda:x"], "--device: must be auto, cpu, cuda, cuda:N"),
        (["sample"], "MODEL"),
        (["sample", "m.skvae", "--n", "0"], "--n"),
        (["sample", "m.skvae", "--decode", "median"], "invalid choice: 'median'"),
        (["encode", "m.skvae"], "DATA"),
        (["fit", "--outliers", "--conditional"], "--outliers fits a VAEOutlierDetector"),
        (["fit", "--contamination", "0.1"], "--contamination applies to --outliers only"),
        (["fit", "--score-method", "iwae"], "--score-method applies to --outliers only"),
        (["fit", "--outliers", "--contamination", "0.7"], "--contamination: must be 'auto' or"),
        (["fit", "--outliers", "--contamination", "nan"], "--contamination: must be 'auto' or"),
        (["fit", "--outliers", "--score-method", "l2"], "invalid choice: 'l2'"),
        (["fit", "--missing-values", "-1"], "invalid choice: '-1'"),
        (["fit", "--validation-fraction", "0.2"], "--validation-fraction applies to --early"),
        (["fit", "--early-stopping", "--validation-fraction", "1"], "--validation-fraction"),
        (["score", "m.skvae"], "DATA"),
        (["score", "m.skvae", "digits", "--method", "mse"], "invalid choice: 'mse'"),
        (["score", "m.skvae", "digits", "--n-importance", "0"], "--n-importance"),
        (["impute", "m.skvae"], "DATA"),
        (["impute", "m.skvae", "X.csv", "--grayscale"], "--grayscale applies to cifar10 only"),
        (["nope"], "invalid choice: 'nope'"),
        ([], "required"),
    ],
)
def test_bad_arguments_give_a_usage_error(argv, expected, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: skvae" in err
    assert expected in err
    assert "Traceback" not in err


def _assert_error(code, capsys, expected):
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("skvae: error: "), err
    assert expected in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--data", "missing.npy"], "data file not found: missing.npy"),
        (["--data", "data.txt"], "unknown data 'data.txt'"),
        (["--data", "imagenet"], "unknown data 'imagenet': use a data set name (digits, "),
        (["--likelihood", "nope"], "Unknown likelihood 'nope'"),
        (["--architecture", "nope"], "Unknown architecture 'nope'"),
        (["--prior", "nope"], "Unknown prior 'nope'"),
        (["--architecture", "conv", "--hidden-sizes", "8"], "--hidden-sizes does not apply"),
        (["--image-shape", "8,9"], "--image-shape 8,9,1 holds 72 values but the data have 64"),
    ],
)
def test_fit_errors_return_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _assert_error(main(["fit", *argv, "--epochs", "1", "--quiet"]), capsys, expected)
    assert not (tmp_path / "runs").exists()  # failed before writing anything


def test_missing_downloaded_data_returns_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    argv = ["fit", "--data", "mnist", "--data-home", str(tmp_path / "dh"), "--no-download"]
    err = _assert_error(main([*argv, "--quiet"]), capsys, "MNIST: ")
    assert "not found. Looked in:" in err and str(tmp_path / "dh" / "mnist") in err


def test_bad_data_files_return_2(tmp_path, capsys):
    cases = {
        "text.npy": (b"not numpy", "is not a .npy file"),
        "cube.npy": (None, "must hold a 2-D array"),
        "words.csv": (b"a,b\n1,2\n3,x\n", "cannot read"),
    }
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    for name, (content, expected) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        code = main(["fit", "--data", str(tmp_path / name), "--out", str(tmp_path / "o")])
        _assert_error(code, capsys, expected)


def test_estimator_errors_return_2(tmp_path, capsys):
    # Data outside [0, 1] with the Bernoulli likelihood: the estimator's ValueError.
    path = tmp_path / "wide.npy"
    np.save(path, np.linspace(-5, 5, 40).reshape(20, 2))
    argv = ["fit", "--data", str(path), "--likelihood", "bernoulli", "--out", str(tmp_path / "o")]
    _assert_error(main([*argv, *FAST]), capsys, "'bernoulli' likelihood needs data in [0, 1]")


def test_sample_and_encode_errors_return_2(digits_run, tmp_path, capsys):
    model = str(digits_run / "model.skvae")
    np.save(tmp_path / "five.npy", np.zeros((4, 5), dtype=np.float32))
    (tmp_path / "fake.skvae").write_bytes(b"not a zip file")
    out = str(tmp_path / "o.npy")
    cases = [
        (["sample", "missing.skvae", "--out", out], "model file not found: missing.skvae"),
        (["sample", str(tmp_path), "--out", out], "is not a file"),
        (["sample", str(tmp_path / "fake.skvae"), "--out", out], "is not a .skvae model file"),
        (["sample", model, "--out", str(tmp_path / "s.txt")], "--out must end in .npy, .csv or"),
        (["sample", model, "--label", "3", "--out", out], "--label is for conditional models"),
        (["sample", model, "--image-shape", "8,8", "--out", out], "applies to a .png --out"),
        (
            ["sample", model, "--image-shape", "4,4", "--out", str(tmp_path / "s.png")],
            "holds 16 values but the model's samples have 64 features",
        ),
        (["encode", "missing.skvae", "digits", "--out", out], "model file not found"),
        (
            ["encode", model, str(tmp_path / "five.npy"), "--out", out],
            "has 5 features per sample but the model",
        ),
        (["encode", model, "nope", "--out", out], "unknown data 'nope'"),
        (["encode", model, str(tmp_path / "none.csv"), "--out", out], "data file not found"),
        (["encode", model, "digits", "--out", str(tmp_path / "c.png")], "--out must end in"),
        (
            ["sample", model, "--out", str(tmp_path / "five.npy" / "s.npy")],
            f"--out {tmp_path / 'five.npy' / 's.npy'} is not writable (",
        ),
        (
            ["encode", model, "digits", "--out", str(tmp_path / "five.npy" / "c.npy")],
            "is not writable (",
        ),
    ]
    for argv, expected in cases:
        _assert_error(main(argv), capsys, expected)
    assert not (tmp_path / "o.npy").exists()


def test_errors_carry_no_cxx_backtrace(digits_run, tmp_path, monkeypatch, capsys):
    # A torch error quoted in a load error (here: a size that overflows in
    # torch.empty) carries torch's C++ backtrace: the message keeps its text only.
    try:
        torch.empty((1, 10**30))
    except (TypeError, RuntimeError, ValueError) as exc:
        torch_error = exc
    cause = f'{type(torch_error).__name__}: {torch_error}'
    assert "Exception raised from" in cause  # what torch puts in its message

    def load(path):
        raise skvae.ModelFileError(f"{path} could not be loaded ({cause}). It was written by")

    monkeypatch.setattr(skvae, "load", load)
    out = tmp_path / "s.npy"
    err = _assert_error(
        main(["sample", str(digits_run / "model.skvae"), "--out", str(out)]),
        capsys,
        'failed to unpack the object at pos 2 with error "Overflow when unpacking long long"). '
        "It was written by",
    )
    assert "Exception raised from" not in err and "frame #" not in err
    assert len(err.splitlines()) == 1


def _no_training(monkeypatch):
    """Make any fit fail the test: the command must stop before training."""

    def fit(self, *args, **kwargs):
        raise AssertionError("fit was called")

    monkeypatch.setattr(skvae.VAETransformer, "fit", fit)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--hidden-sizes", "10000000000"], "parameters (MLP(hidden_sizes=(10000000000,))"),
        (["--n-components", "10000000000"], "n_components=10000000000, 64 features"),
    ],
)
def test_huge_models_are_refused_before_allocating(argv, expected, tmp_path, monkeypatch, capsys):
    # Counted on torch's meta device: no memory is allocated, no traceback.
    _no_training(monkeypatch)
    out = tmp_path / "run"
    code = main(["fit", "--n-train", "50", "--out", str(out), *argv, "--epochs", "1", "--quiet"])
    err = _assert_error(code, capsys, expected)
    assert "training it needs at least" in err and "TiB" in err
    assert "use smaller --hidden-sizes or --n-components" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
            "allocate memory: you tried to allocate 2560000000000 bytes. Error code 12"
        ),
        MemoryError(),
    ],
)
def test_out_of_memory_in_fit_is_an_error(error, tmp_path, monkeypatch, capsys):
    # A network the size check cannot count (a plugin that does not build on
    # the meta device) fails in fit itself: torch's allocation error.
    def fit(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(skvae.VAETransformer, "fit", fit)
    out = tmp_path / "run"
    code = main(["fit", "--n-train", "50", "--out", str(out), *FAST])
    _assert_error(code, capsys, "out of memory")
    assert not out.exists()


def test_other_runtime_errors_of_fit_are_not_called_memory(tmp_path, monkeypatch):
    def fit(self, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(skvae.VAETransformer, "fit", fit)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["fit", "--n-train", "50", "--out", str(tmp_path / "run"), *FAST])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_fails_before_loading_data(tmp_path, monkeypatch, capsys):
    def load(*args, **kwargs):
        raise AssertionError("data were loaded")

    monkeypatch.setattr("skvae.datasets.load", load)
    code = main(["fit", "--device", "cuda:1", "--out", str(tmp_path / "run"), *FAST])
    _assert_error(code, capsys, "--device cuda:1: CUDA is not available on this machine")


def test_sample_refuses_more_than_memory_holds(digits_run, tmp_path, monkeypatch, capsys):
    model = str(digits_run / "model.skvae")
    out = tmp_path / "s.npy"
    # 10^12 samples of 64 features: 233 TiB, more than any machine has.
    code = main(["sample", model, "--n", str(10**12), "--out", str(out)])
    err = _assert_error(code, capsys, f"--n {10**12} samples of 64 features need 232.8 TiB")
    assert "samples fit here; ask for fewer with --n" in err
    # The limit in the message is what memory holds: 1 GiB holds 2^22 samples.
    monkeypatch.setattr("skvae.cli._available_memory", lambda: 2**30)
    code = main(["sample", model, "--n", "1000000000", "--out", str(out)])
    _assert_error(code, capsys, "but 1.0 GiB is available: at most 4194304 samples fit here")
    code = main(["sample", model, "--n", "10001", "--out", str(tmp_path / "s.png")])
    _assert_error(code, capsys, "a .png grid holds at most 10000 samples")
    assert sorted(tmp_path.iterdir()) == []


def _write_npy_header(path, header, data=b""):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(data)


def test_npy_headers_are_checked_before_loading(digits_run, tmp_path, capsys):
    huge = tmp_path / "huge.npy"  # declares 10^12 rows, holds 10
    _write_npy_header(huge, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 64)})
    with open(huge, "ab") as f:
        f.write(np.zeros((10, 64), np.float32).tobytes())
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([[1.0, "a"]], dtype=object), allow_pickle=True)
    model = str(digits_run / "model.skvae")
    out = tmp_path / "o"
    truncated = "huge.npy is truncated or corrupt: its header declares an array of shape"
    for argv, expected in [
        (["fit", "--data", str(huge), "--out", str(out)], truncated),
        (["encode", model, str(huge), "--out", str(out / "c.npy")], truncated),
        (["fit", "--data", str(objects), "--out", str(out)], "holds Python objects"),
    ]:
        err = _assert_error(main(argv), capsys, expected)
        assert "(1000000000000, 64) and dtype float32 (232.8 TiB)" in err or "objects" in err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("case", ["parent is a file", "read-only folder"])
def test_unwritable_out_fails_before_training(case, tmp_path, monkeypatch, capsys):
    def load(*args, **kwargs):
        raise AssertionError("data were loaded")

    monkeypatch.setattr("skvae.datasets.load", load)
    _no_training(monkeypatch)
    if case == "parent is a file":
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "run"
    else:
        folder = tmp_path / "locked"
        folder.mkdir()
        out = folder / "run"
        if os.geteuid() == 0:  # root writes anywhere: the refusal of a read-only folder
            real_mkdir = pathlib.Path.mkdir

            def mkdir(self, *args, **kwargs):
                if self.parent == folder:
                    raise PermissionError(13, "Permission denied", str(self))
                return real_mkdir(self, *args, **kwargs)

            monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
        else:
            folder.chmod(0o555)
    try:
        code = main(["fit", "--out", str(out), *FAST])
    finally:
        if case == "read-only folder":
            folder.chmod(0o755)
    err = _assert_error(code, capsys, f"--out {out} is not writable (")
    assert "choose a folder you can write to with --out" in err
    assert not out.exists()
    if case == "read-only folder":
        assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    "during, existing",
    [
        ("fit", False),
        ("save", False),
        ("write_figures", False),
        ("write_index", False),
        ("write_figures", True),
    ],
)
def test_interrupt_leaves_no_partial_output(during, existing, tmp_path, monkeypatch, capsys):
    # Ctrl-C (fit re-raises KeyboardInterrupt after keeping its last good
    # epoch) at any point: exit 130, and --out holds nothing new.
    out = tmp_path / "a" / "b" / "run"
    before = {}
    if existing:  # an earlier run and a file of the user's stay as they were
        out.mkdir(parents=True)
        before = {"model.skvae": b"earlier", "notes.txt": b"mine", "samples.png": b"old"}
        for name, content in before.items():
            (out / name).write_bytes(content)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    target = {
        "fit": (skvae.VAETransformer, "fit"),
        "save": (skvae, "save"),
        "write_figures": (skvae._report, "write_figures"),
        "write_index": (skvae._report, "write_index"),
    }[during]
    monkeypatch.setattr(*target, interrupt)
    code = main(["fit", "--n-train", "50", "--out", str(out), *FAST])
    assert code == 130
    assert capsys.readouterr().err == "skvae: interrupted\n"
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert [p.name for p in out.parent.iterdir()] == ["run"]  # no partial sibling
    else:
        assert list(tmp_path.iterdir()) == []  # not even the parents made for it


def test_interrupt_while_moving_outputs_into_place_waits(tmp_path, monkeypatch, capsys):
    # Ctrl-C while the finished run is moved onto --out is held until the
    # move is complete: a whole run, then exit 130.
    real_replace = os.replace

    out = tmp_path / "run"

    def replace(src, dst):
        real_replace(src, dst)
        if pathlib.Path(dst).parent == out:  # the move onto --out (not skvae.save's)
            signal.raise_signal(signal.SIGINT)

    out.mkdir()
    monkeypatch.setattr(os, "replace", replace)
    assert main(["fit", "--n-train", "50", "--out", str(out), *FAST]) == 130
    monkeypatch.undo()
    _check_run(out)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory):
    """A model whose finite but huge weights overflow in every forward pass."""
    X = np.random.RandomState(0).normal(size=(40, 5)).astype(np.float32)
    vae = skvae.VAETransformer(max_iter=1, likelihood="gaussian", random_state=0).fit(X)
    with torch.no_grad():
        for layer in vae.module_.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(1e30)
    path = tmp_path_factory.mktemp("broken") / "broken.skvae"
    skvae.save(vae, path)
    np.save(path.parent / "X.npy", X)
    return path


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".png"])
def test_sample_refuses_non_finite_samples(broken_model, suffix, tmp_path, capsys):
    out = tmp_path / f"samples{suffix}"
    argv = ["sample", str(broken_model), "--n", "4", "--random-state", "0"]
    code = main([*argv, "--out", str(out)])
    err = _assert_error(code, capsys, "the model produced non-finite samples (NaN or infinity)")
    assert "Nothing was written" in err
    assert not out.exists()


def test_encode_refuses_non_finite_codes(broken_model, tmp_path, capsys):
    out = tmp_path / "codes.npy"
    data = str(broken_model.parent / "X.npy")
    code = main(["encode", str(broken_model), data, "--out", str(out)])
    _assert_error(code, capsys, "the model produced non-finite posterior means")
    assert not out.exists()


# A stand-in for python3 in .ci/install: logs pip's calls, installs nothing.
_FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-m" ]; then echo "$*" >> "$PIP_LOG"; exit 0; fi
case "$2" in
    "import torch") exit "$TORCH_MISSING" ;;
    *sys*) echo "python 3.11.7, torch 2.13.0+cpu, skvae 0.1.0" ;;
    *) echo "2.13.0+cpu" ;;
esac
"""


@pytest.mark.parametrize("torch_missing", [True, False])
def test_ci_install_says_what_it_does(torch_missing, tmp_path):
    root = pathlib.Path(__file__).resolve().parents[1]
    python = tmp_path / "python"
    python.write_text(_FAKE_PYTHON)
    python.chmod(0o755)
    env = {
        **os.environ,
        "PYTHON": str(python),
        "PIP_LOG": str(tmp_path / "pip.log"),
        "TORCH_MISSING": "1" if torch_missing else "0",
    }
    result = subprocess.run(
        ["bash", str(root / ".ci" / "install")], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = (
        "ci/install: installing torch 2.13.0 (CPU wheel; this takes a few minutes) ..."
        if torch_missing
        else "ci/install: torch 2.13.0+cpu is already installed"
    )
    assert result.stdout.splitlines() == [
        first,
        "ci/install: installing skvae (editable) with the test and docs extras ...",
        "ci/install: done (python 3.11.7, torch 2.13.0+cpu, skvae 0.1.0)",
    ]
    pip = (tmp_path / "pip.log").read_text().splitlines()
    torch_install = ["-m pip install --quiet torch==2.13.0"] if torch_missing else []
    assert pip == [*torch_install, "-m pip install --quiet -e .[test,docs]"]


# ------------------------------------------------------------- the program
def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "skvae.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_console_script_runs_as_a_module():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: skvae")
    for name in ("fit", "sample", "encode", "plugins"):
        assert name in result.stdout

    result = _run("sample", "no-such-model.skvae")
    assert result.returncode == 2
    assert result.stderr == "skvae: error: model file not found: no-such-model.skvae\n"
