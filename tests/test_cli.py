"""Tests of the ``skvae`` command (skvae.cli)."""

import json
import math
import subprocess
import sys

import joblib
import numpy as np
import pytest

import skvae
from skvae.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OUTPUTS = [
    "metrics.json",
    "model.joblib",
    "latent.png",
    "reconstructions.png",
    "samples.png",
    "loss.png",
]
FAST = ["--epochs", "2", "--hidden-sizes", "32", "--quiet"]


def _check_outputs(out, n_iter=2):
    for name in OUTPUTS:
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    for name in OUTPUTS:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(metrics["train_elbo"])
    assert math.isfinite(metrics["test_elbo"])
    assert metrics["train_elbo"] < 0 or metrics["likelihood"].startswith("Gaussian")
    assert metrics["n_iter"] == n_iter
    assert len(metrics["history"]) == n_iter
    assert {"loss", "reconstruction", "kl"} <= set(metrics["history"][0])
    assert metrics["fit_seconds"] > 0
    for key in ("architecture", "likelihood", "prior", "n_components"):
        assert key in metrics
    return metrics


def test_fit_digits_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--epochs", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    metrics = _check_outputs(out)
    assert metrics["likelihood"] == "Bernoulli()"
    assert metrics["architecture"] == "MLP()"
    assert metrics["prior"] == "Normal()"
    assert metrics["n_components"] == 2
    assert metrics["n_train"] + metrics["n_test"] == 1797
    # The report: ELBOs, epochs, where the files went; the bar is on stderr.
    assert "train ELBO" in captured.out and "test ELBO" in captured.out
    assert f"{metrics['test_elbo']:.3f}" in captured.out
    assert "2 of 2" in captured.out
    assert str(out) in captured.out
    assert "skvae fit" in captured.err  # tqdm progress bar
    assert "Traceback" not in captured.err
    # The saved model is the fitted estimator.
    vae = joblib.load(out / "model.joblib")
    assert isinstance(vae, skvae.VAETransformer)
    assert vae.n_iter_ == 2
    assert vae.sample(3, random_state=0).shape == (3, 64)


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
        "--random-state", "3",
        "--device", "cpu",
        "--out", str(out),
        "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out == ""  # --quiet
    metrics = _check_outputs(out)
    assert metrics["n_components"] == 3
    assert metrics["n_test"] == math.ceil(0.25 * 1797)
    assert metrics["architecture"] == "MLP(hidden_sizes=(16, 8))"
    assert metrics["likelihood"] == "Gaussian()"
    assert [h["beta"] for h in metrics["history"]] == [0.0, 0.5]
    vae = joblib.load(out / "model.joblib")
    assert vae.get_params()["batch_size"] == 64
    assert vae.get_params()["learning_rate"] == 2e-3
    assert vae.get_params()["random_state"] == 3


def test_fit_npy(tmp_path):
    X = np.random.RandomState(0).normal(size=(120, 5)).astype(np.float32)
    path = tmp_path / "data.npy"
    np.save(path, X)
    out = tmp_path / "run"
    assert main(["fit", "--data", str(path), "--out", str(out), *FAST]) == 0
    metrics = _check_outputs(out)
    assert metrics["likelihood"] == "Gaussian()"  # auto: data outside [0, 1]
    assert (metrics["n_train"], metrics["n_test"], metrics["n_features"]) == (96, 24, 5)


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
    metrics = _check_outputs(out)
    assert metrics["n_train"] + metrics["n_test"] == 50
    assert metrics["n_features"] == 16
    assert metrics["likelihood"] == "Bernoulli()"


def test_fit_default_out_is_named_after_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "mydata.npy", np.random.RandomState(0).uniform(size=(30, 3)))
    assert main(["fit", "--data", "mydata.npy", *FAST]) == 0
    _check_outputs(tmp_path / "runs" / "mydata")


def test_plugins_lists_builtins(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "CLASS", "PROVIDER"]
    for kind, name, cls in [
        ("architecture", "mlp", "skvae_plugins.mlp.MLP"),
        ("likelihood", "bernoulli", "skvae_plugins.bernoulli.Bernoulli"),
        ("likelihood", "gaussian", "skvae_plugins.gaussian.Gaussian"),
        ("prior", "normal", "skvae_plugins.normal.Normal"),
    ]:
        assert any(line.split()[:3] == [kind, name, cls] for line in lines), (kind, name)
    assert "entry point 'mlp'" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skvae {skvae.__version__}"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["fit", "--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
        (["fit", "--n-components", "two"], "--n-components"),
        (["fit", "--test-size", "1.5"], "--test-size"),
        (["fit", "--kl-warmup", "2"], "--kl-warmup"),
        (["fit", "--learning-rate", "-1"], "--learning-rate"),
        (["fit", "--hidden-sizes", "64,x"], "--hidden-sizes"),
        (["fit", "--architecture", "other", "--hidden-sizes", "8"], "--hidden-sizes"),
        (["fit", "--no-such-option"], "--no-such-option"),
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


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["fit", "--data", "missing.npy"], "data file not found: missing.npy"),
        (["fit", "--data", "data.txt"], "--data must be 'digits' or a path ending in .npy"),
        (["fit", "--likelihood", "nope"], "Unknown likelihood 'nope'"),
        (["fit", "--architecture", "nope"], "Unknown architecture 'nope'"),
        (["fit", "--prior", "nope"], "Unknown prior 'nope'"),
    ],
)
def test_expected_errors_return_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--epochs", "1", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("skvae: error: ")
    assert expected in captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "runs").exists()  # failed before writing anything


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
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.startswith("skvae: error: ") and expected in err, err
        assert "Traceback" not in err


def test_estimator_errors_return_2(tmp_path, capsys):
    # Data outside [0, 1] with the Bernoulli likelihood: the estimator's ValueError.
    path = tmp_path / "wide.npy"
    np.save(path, np.linspace(-5, 5, 40).reshape(20, 2))
    argv = ["fit", "--data", str(path), "--likelihood", "bernoulli", "--out", str(tmp_path / "o")]
    code = main([*argv, *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("skvae: error: ")
    assert "'bernoulli' likelihood needs data in [0, 1]" in err
    assert "Traceback" not in err


def test_console_script_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "skvae.cli", "plugins"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for name in ("mlp", "bernoulli", "gaussian", "normal"):
        assert name in result.stdout
    assert "Traceback" not in result.stderr

    result = subprocess.run(
        [sys.executable, "-m", "skvae.cli", "fit", "--epochs", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--epochs" in result.stderr
    assert "Traceback" not in result.stderr
