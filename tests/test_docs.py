"""The documentation site: every public name is in the API reference, the guide's
code runs, and the plugin catalogue lists every registered plugin.

The snippets of the guide's pages run here with fewer epochs (each substitution
is checked, so that a snippet that changes its settings fails loudly rather than
running for minutes). The build itself (``python3 -m sphinx -W ...``) runs in
CI after the tests (``.ci/run``).
"""

import importlib
import inspect
import pkgutil
import re
import warnings
from pathlib import Path

import numpy as np

import skvae

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
API = DOCS / "api" / "index.rst"

# Public modules whose names the API reference lists. A module without
# ``__all__`` contributes the functions and classes it defines.
PUBLIC_MODULES = [
    "skvae",
    "skvae.base",
    "skvae.callbacks",
    "skvae.datasets",
    "skvae.distributed",
    "skvae.hookspecs",
    "skvae.hub",
    "skvae.onnx",
    "skvae.plotting",
]


def _public_names(module_name):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module_name
        ]
    return {f"{module_name}.{name}" for name in names}


def _plugin_names():
    """Each skvae_plugins module's ``__all__``, or else its registered plugin classes."""
    import skvae_plugins

    found = set()
    for _, module_name, _ in pkgutil.walk_packages(skvae_plugins.__path__, "skvae_plugins."):
        if module_name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [
                name
                for name, obj in vars(module).items()
                if inspect.isclass(obj) and obj.__module__ == module_name and getattr(obj, "name", None)
            ]
        found |= {f"{module_name}.{name}" for name in names}
    return found


def _documented_names():
    """The fully qualified names of api/index.rst's autosummary entries."""
    names, module = set(), None
    in_autosummary = False
    for line in API.read_text().splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split("::", 1)[1].strip()
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif in_autosummary and line.startswith("   ") and not line.strip().startswith(":"):
            if line.strip():
                names.add(f"{module}.{line.strip()}")
        elif line.strip() and not line.startswith("   "):
            in_autosummary = False
    return names


def test_the_api_reference_lists_every_public_name():
    documented = _documented_names()
    public = set().union(*map(_public_names, PUBLIC_MODULES)) | _plugin_names()
    missing = sorted(public - documented)
    assert not missing, f"add these to docs/api/index.rst: {missing}"


def test_the_api_reference_lists_only_names_that_exist():
    for qualname in sorted(_documented_names()):
        module_name, _, name = qualname.rpartition(".")
        while True:  # skvae_plugins.conv.Conv: the module is skvae_plugins.conv
            try:
                module = importlib.import_module(module_name)
                break
            except ImportError:
                module_name, _, head = module_name.rpartition(".")
                name = f"{head}.{name}"
        obj = module
        for part in name.split("."):
            assert hasattr(obj, part), f"docs/api/index.rst names {qualname}, which does not exist"
            obj = getattr(obj, part)


def test_every_guide_page_is_in_a_toctree():
    toctrees = (DOCS / "index.rst").read_text() + (DOCS / "user_guide.rst").read_text()
    entries = set(re.findall(r"^   (?:\.\. optional: )?([\w/]+)$", toctrees, re.M))
    pages = {p.stem for p in DOCS.glob("*.md")}
    assert pages <= entries, f"pages in no toctree: {sorted(pages - entries)}"


def test_ci_builds_the_site_with_the_documented_command():
    command = "python3 -m sphinx -W --keep-going -b html -D plot_gallery=0 docs docs/_build/html"
    assert command in (REPO / ".ci" / "run").read_text()
    assert command in (DOCS / "install.md").read_text()
    assert command.replace(" -D plot_gallery=0", "") in (DOCS / "install.md").read_text()
    assert "docs" in (REPO / ".ci" / "install").read_text()


def test_the_plugin_catalogue_lists_every_registered_plugin():
    text = (DOCS / "plugins.md").read_text()
    rows = re.findall(r"^\| (architecture|likelihood|prior) \| `([\w-]+)` \|", text, re.M)
    registered = {(p["kind"], p["name"]) for p in skvae.list_plugins()}
    assert set(rows) == registered
    assert len(rows) == len(set(rows)), "a plugin is listed twice"


# ---------------------------------------------------------------- the guide's code


def _blocks(page):
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)


def _snippet(page, marker, replacements=()):
    """The first ```python block of ``page`` holding ``marker``, with each (old, new)."""
    code = next(b for b in _blocks(page) if marker in b)
    for old, new in replacements:
        assert old in code, f"{page}: the snippet with {marker!r} no longer holds {old!r}"
        code = code.replace(old, new)
    return code


def _run(page, code, namespace):
    exec(compile(code, str(DOCS / page), "exec"), namespace)
    return namespace


def test_labels_snippet_runs(digits):
    X, y = digits
    code = _snippet("labels.md", "ConditionalVAETransformer(", [("max_iter=20", "max_iter=2")])
    namespace = _run("labels.md", code, {"X": X, "y": y})
    assert namespace["sevens"].shape == (16, 64)
    acvae = namespace["acvae"]
    assert set(acvae.predict(X[:20])) <= set(np.unique(y))


def test_outliers_snippet_runs():
    code = _snippet("outliers.md", "VAEOutlierDetector(",
                    [("random_state=0)", "random_state=0, max_iter=2)")])
    namespace = _run("outliers.md", code, {})
    detector, X = namespace["detector"], namespace["X"]
    assert set(detector.predict(X[:20])) <= {-1, 1}
    assert detector.reconstruction_errors(X[:5]).shape == (5, 64)


def test_imputation_snippets_run():
    first = _snippet("imputation.md", "X_filled = imputer.fit_transform",
                     [("max_iter=100", "max_iter=2"), ("load_digits().data / 16", "load_digits().data[:120] / 16")])
    namespace = _run("imputation.md", first, {})
    X, X_missing, X_filled = namespace["X"], namespace["X_missing"], namespace["X_filled"]
    observed = ~np.isnan(X_missing)
    assert not np.isnan(X_filled).any()
    np.testing.assert_array_equal(X_filled[observed], X[observed])
    pipeline = _snippet("imputation.md", "GridSearchCV(pipe",
                        [("max_iter=50", "max_iter=2"), ("load_digits().target", "load_digits().target[:120]"),
                         ("cv=3", "cv=2")])
    namespace = _run("imputation.md", pipeline, namespace)
    y = namespace["load_digits"]().target[:120]
    assert namespace["search"].score(X_missing, y) > 0.5


def test_tables_snippets_run():
    import pandas as pd

    first = _snippet("tables.md", "penguins = pd.DataFrame", [("max_iter=200", "max_iter=2")])
    namespace = _run("tables.md", first, {})
    penguins, synthetic = namespace["penguins"], namespace["synthetic"]
    assert list(synthetic.columns) == list(penguins.columns)
    assert synthetic.dtypes.equals(penguins.dtypes)
    assert set(synthetic["island"]) <= set(penguins["island"])
    assert namespace["vae"].table_schema_.likelihoods["species"] == "categorical"
    columns = _snippet("tables.md", "ColumnLikelihood([",
                       [("max_iter=200)", "max_iter=2, random_state=0)")])
    namespace = _run("tables.md", columns, namespace)
    kinds = [type(part).__name__ for part, _ in namespace["vae"].likelihood_.likelihoods]
    assert kinds == ["Gaussian", "Poisson", "Bernoulli", "Categorical"]
    assert isinstance(namespace["vae"].sample(3, random_state=0), pd.DataFrame)


def test_tables_labelled_snippet_runs():
    first = _snippet("tables.md", "penguins = pd.DataFrame", [("max_iter=200", "max_iter=2")])
    namespace = _run("tables.md", first, {})
    code = _snippet("tables.md", "AuxiliaryClassifierVAE(", [("max_iter=200", "max_iter=2")])
    namespace = _run("tables.md", code, namespace)
    gentoos, table = namespace["gentoos"], namespace["table"]
    assert gentoos.shape == (50, table.shape[1])
    assert gentoos.dtypes.equals(table.dtypes)
    assert set(namespace["model"].classes_) == {"Adelie", "Chinstrap", "Gentoo"}


def test_tables_scaling_snippet_runs():
    code = _snippet("tables.md", "load_wine", [("n_components=2)", "n_components=2, max_iter=2)")])
    namespace = _run("tables.md", code, {})
    X, synthetic = namespace["X"], namespace["synthetic"]
    assert namespace["Z"].shape == (len(X), 2)
    assert synthetic.shape == (100, X.shape[1])
    # back in wine's units: proline's scale, not the prior's
    assert np.abs(synthetic[:, -1]).mean() > 100


def test_semi_supervised_snippet_runs():
    code = _snippet("semi_supervised.md", "y_few", [("max_iter=20", "max_iter=2")])
    namespace = _run("semi_supervised.md", code, {})
    model, y, y_few, X = namespace["model"], namespace["y"], namespace["y_few"], namespace["X"]
    labelled = y_few != -1
    assert 0 < labelled.sum() < 0.1 * len(y)
    np.testing.assert_array_equal(model.classes_, np.unique(y[labelled]))
    assert set(model.predict(X[:20])) <= set(np.unique(y))


def test_likelihood_search_uses_a_common_measure():
    code = _snippet("likelihoods.md", "reconstruction_score",
                    [("max_iter=30", "max_iter=2"), ("print(search.best_params_)", "")])
    namespace = _run("likelihoods.md", code, {})
    search, X = namespace["search"], namespace["X"]
    assert search.scorer_ is namespace["reconstruction_score"]
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 3 and np.all(scores < 0)
    # the measure is the reconstruction error in X's own units (pixel counts 0..16)
    best = search.best_estimator_
    X_hat = best.inverse_transform(best.transform(X))
    assert X_hat.max() > 1.5
    np.testing.assert_allclose(namespace["reconstruction_score"](best, X),
                               -np.mean((X - X_hat) ** 2), rtol=1e-4, atol=1e-5)


def test_priors_snippet_runs():
    namespace = _run("priors.md", _snippet("priors.md", "GaussianMixturePrior("), {})
    assert namespace["vae"].get_params()["prior__n_components_mixture"] == 5


def test_plugins_grid_snippet_runs(digits):
    code = _snippet("plugins.md", "architecture__hidden_sizes")
    namespace = _run("plugins.md", code, {})
    search = namespace["search"]
    search.set_params(estimator__max_iter=1, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(digits[0][:200])
    assert len(search.cv_results_["params"]) == 4


def test_model_files_snippet_runs(tmp_path, monkeypatch, digits):
    monkeypatch.chdir(tmp_path)
    code = _snippet("model_files.md", "skvae.save(", [("max_iter=20", "max_iter=2")])
    X = digits[0][:200]
    namespace = _run("model_files.md", code, {"X": X})
    np.testing.assert_allclose(namespace["same"].transform(X), namespace["vae"].transform(X),
                               rtol=1e-4, atol=1e-5)


def test_evaluation_snippets_run():
    first = _snippet("evaluation.md", "log_likelihood(X_test)",
                     [("max_iter=100", "max_iter=2"), ("log_likelihood(X_test)", "log_likelihood(X_test, n_importance=50)")])
    namespace = _run("evaluation.md", first, {})
    assert namespace["log_px"] >= namespace["elbo"] - 1e-3
    second = _snippet("evaluation.md", "active_units(X_test)")
    _run("evaluation.md", second, namespace)
    vae, X_test = namespace["vae"], namespace["X_test"]
    assert vae.kl_per_dimension(X_test).shape == (8,)
    assert vae.active_units(X_test).dtype == bool


def test_checkpoint_snippet_resumes(tmp_path, monkeypatch, digits):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    code = _snippet("checkpoints.md", "checkpoint_path=", [("max_iter=200", "max_iter=2")])
    X = digits[0][:200]
    namespace = _run("checkpoints.md", code, {"X": X, "VAETransformer": skvae.VAETransformer})
    assert (tmp_path / "runs" / "vae.skvae").is_file()
    resumed = _run("checkpoints.md", code, {"X": X, "VAETransformer": skvae.VAETransformer})["vae"]
    np.testing.assert_allclose(resumed.transform(X), namespace["vae"].transform(X), rtol=1e-4, atol=1e-5)
    assert resumed.n_iter_ == 2
