"""The examples and the README's code run."""

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_example_runs():
    env = {**os.environ, "SKVAE_QUICK": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )
    assert "best parameters" in result.stdout
    assert re.search(r"held-out ELBO: -\d+\.\d+", result.stdout)


def test_readme_first_snippet_runs():
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["Z"].shape == (1797, 2)
    assert namespace["X_new"].shape == (16, 64)


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash .ci/install && python3 -m pytest" in readme
    assert "bash .ci/install\npython3 -m pytest\n" in ci


def test_readme_label_snippet_runs(digits):
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = next(b for b in blocks if "ConditionalVAETransformer(" in b)
    X, y = digits
    namespace = {"X": X, "y": y}
    exec(compile(snippet.replace("max_iter=20", "max_iter=2"), "README.md", "exec"), namespace)
    assert namespace["sevens"].shape == (16, 64)


def test_readme_outlier_snippet_runs(digits):
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = next(b for b in blocks if "VAEOutlierDetector(" in b)
    namespace = {"X": digits[0][:300]}
    exec(compile(snippet.replace("max_iter=50", "max_iter=2"), "README.md", "exec"), namespace)
    detector = namespace["det"]
    assert set(detector.predict(digits[0][:20])) <= {-1, 1}
    assert detector.reconstruction_errors(digits[0][:5]).shape == (5, 64)


def test_readme_imputer_snippet_runs(digits):
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = next(b for b in blocks if "VAEImputer(" in b)
    X, y = digits[0][:300], digits[1][:300]
    X_missing = X.copy()
    X_missing[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
    namespace = {"X_missing": X_missing, "y": y}
    exec(compile(snippet.replace("max_iter=50", "max_iter=2"), "README.md", "exec"), namespace)
    observed = ~np.isnan(X_missing)
    assert not np.isnan(namespace["X_filled"]).any()
    np.testing.assert_array_equal(namespace["X_filled"][observed], X[observed])
    assert namespace["pipe"].score(X_missing, y) > 0.5


# ---------------------------------------------------------------------------
# examples/seed*.py: one script per seed post, each run in its quick mode.
# ---------------------------------------------------------------------------
#: The figures each seed script writes into --out.
SEED_FIGURES = {
    "seed000_textures": ["samples.png", "reconstructions.png", "traversal.png", "training_curves.png"],
    "seed001_conv_mnist": ["latent_scatter.png", "latent_manifold.png", "training_curves.png"],
    "seed002_mlp_mnist": ["samples.png", "latent_manifold.png", "latent_scatter.png"],
    "seed003_cifar_gray": ["reconstructions.png", "training_cost.png"],
    "seed004_aux_classifier": ["samples_per_epoch.png", "class_conditional.png", "loss_curves.png"],
}
SEED_SCRIPTS = sorted((REPO / "examples").glob("seed*.py"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_seed_script(script, out, **env):
    return subprocess.run(
        [sys.executable, str(script), "--out", str(out)],
        env={**os.environ, "SKVAE_QUICK": "1", **env},
        cwd=out.parent, capture_output=True, text=True, timeout=300,
    )


def assert_figures(script, out):
    for name in SEED_FIGURES[script.stem]:
        path = out / name
        assert path.is_file(), f"{script.name} did not write {name}"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, f"{path} is not a PNG image"


def test_every_seed_post_has_a_script():
    assert [p.stem for p in SEED_SCRIPTS] == sorted(SEED_FIGURES)


@pytest.mark.parametrize("script", SEED_SCRIPTS, ids=lambda p: p.stem)
def test_seed_example_runs_quick(script, tmp_path):
    out = tmp_path / "out"
    result = run_seed_script(script, out)
    assert result.returncode == 0, result.stdout + result.stderr
    if script.stem == "seed003_cifar_gray" and result.stdout.startswith("skipping"):
        assert "--download" in result.stdout  # says how to get CIFAR-10
        return
    assert_figures(script, out)


def fake_cifar10(root, n_per_batch=200):
    """A tiny cifar-10-batches-py folder of random images under root/cifar-10."""
    folder = root / "cifar-10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.randint(0, 256, size=(n_per_batch, 3072)).astype(np.uint8),
            "labels": rng.randint(0, 10, size=n_per_batch).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def test_seed003_trains_on_cifar10_files(tmp_path):
    # Whether or not CIFAR-10 is on this machine, run the training path on fake files.
    fake_cifar10(tmp_path / "data")
    out = tmp_path / "out"
    result = run_seed_script(REPO / "examples" / "seed003_cifar_gray.py", out,
                             SKVAE_DATA=str(tmp_path / "data"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipping" not in result.stdout
    assert "Number of minibatches: 1" in result.stdout
    assert re.search(r"^\s+2\s+\d+\.\d+\s+704\.72$", result.stdout, re.M)  # epoch 2 next to the post's
    assert_figures(REPO / "examples" / "seed003_cifar_gray.py", out)


def test_readme_callbacks_snippet_runs(digits, tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorboard")
    from skvae import VAETransformer

    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = next(b for b in blocks if "class PrintKL" in b)
    monkeypatch.chdir(tmp_path)
    namespace = {"X": digits[0][:200], "VAETransformer": VAETransformer}
    exec(compile(snippet.replace("max_iter=5", "max_iter=2"), "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.split("\n")
    assert [line.split()[0] for line in printed if line.strip()] == ["1", "2"]
    assert list((tmp_path / "runs" / "tb").rglob("events.out.tfevents.*"))


def test_readme_table_snippet_runs():
    import pandas as pd

    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = next(b for b in blocks if "ColumnLikelihood(" in b)
    rng = np.random.RandomState(0)
    n = 120
    table = pd.DataFrame({
        "bill_length_mm": rng.normal(44, 5, n),
        "body_mass_g": rng.normal(4200, 800, n),
        "species": pd.Categorical(rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)),
        "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
        "n_eggs": rng.poisson(2, n),
    })
    namespace = {"table": table}
    exec(compile(snippet.replace("max_iter=200", "max_iter=2"), "README.md", "exec"), namespace)
    synthetic = namespace["synthetic"]
    assert list(synthetic.columns) == list(table.columns)
    assert synthetic.dtypes.equals(table.dtypes)
    assert set(synthetic["island"]) <= set(table["island"])
    assert namespace["vae"].table_schema_.likelihoods["species"] == "categorical"
    kinds = [type(part).__name__ for part, _ in namespace["counts"].likelihood_.likelihoods]
    assert kinds == ["Gaussian", "Categorical", "Poisson"]


def test_readme_few_labels_snippet_runs(digits):
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = next(b for b in blocks if "y_few" in b)
    X, y = digits
    namespace = {"X": X, "y": y}
    exec(compile(snippet.replace("max_iter=50", "max_iter=2"), "README.md", "exec"), namespace)
    model = namespace["model"]
    labelled = namespace["y_few"] != -1
    assert 0 < labelled.sum() < 0.1 * len(y)
    np.testing.assert_array_equal(model.classes_, np.unique(y[labelled]))
    assert set(model.predict(X[:20])) <= set(np.unique(y))
