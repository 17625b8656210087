"""The README's code runs, and its test command is what CI runs."""

import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


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
