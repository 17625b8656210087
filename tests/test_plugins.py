"""The plugin system: entry points, faults, disabling, third-party packages."""

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from joblib.externals.loky import get_reusable_executor
from sklearn.model_selection import GridSearchCV

import skvae
from skvae import VAETransformer
from skvae._registry import PluginError, PluginRegistry, PluginWarning, resolve_plugin
from skvae.base import Architecture
from skvae_plugins.bernoulli import Bernoulli
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.mlp import MLP

REPO = Path(__file__).resolve().parents[1]


def _add_to_path(monkeypatch, path):
    """Make ``path`` importable here and in joblib's worker processes."""
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH")]))
    )
    # Workers started earlier would not see the new path.
    get_reusable_executor().shutdown(wait=True, kill_workers=True)
    skvae.reset_registry()


@pytest.fixture
def clean_registry():
    skvae.reset_registry()
    yield
    skvae.reset_registry()
    get_reusable_executor().shutdown(wait=True, kill_workers=True)


def _write_distribution(root, name, entry_points, modules):
    """Write an installed distribution (dist-info with entry points) under ``root``."""
    dist_info = root / f"{name}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[skvae]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


def test_builtin_plugins_come_from_entry_points():
    plugins = {(p["kind"], p["name"]): p for p in skvae.list_plugins()}
    assert {
        ("architecture", "mlp"),
        ("likelihood", "bernoulli"),
        ("likelihood", "gaussian"),
        ("prior", "normal"),
    } <= set(plugins)
    assert plugins[("architecture", "mlp")]["class"] is MLP
    # Every built-in comes through an entry point of skvae's own distribution.
    builtin = [p for p in plugins.values() if p["class"].__module__.startswith("skvae_plugins.")]
    assert all("distribution skvae " in p["provider"] for p in builtin)
    entry_points = importlib.metadata.distribution("skvae").entry_points
    modules = {ep.value for ep in entry_points if ep.group == "skvae"}
    assert {p["class"].__module__ for p in builtin} == modules


def test_resolve_plugin_accepts_name_class_and_instance():
    assert isinstance(resolve_plugin("architecture", "mlp"), MLP)
    assert isinstance(resolve_plugin("architecture", MLP), MLP)
    configured = MLP(hidden_sizes=(8,))
    resolved = resolve_plugin("architecture", configured)
    assert resolved is not configured
    assert resolved.hidden_sizes == (8,)


def test_unknown_name_lists_registered_names():
    with pytest.raises(ValueError, match=r"Unknown architecture 'nope'.*'mlp'"):
        resolve_plugin("architecture", "nope")
    with pytest.raises(ValueError, match="Unknown likelihood 'nope'.*'bernoulli'.*'gaussian'"):
        VAETransformer(likelihood="nope").fit(np.random.rand(10, 3))


def test_plugin_of_the_wrong_kind_is_rejected():
    with pytest.raises(ValueError, match="'architecture' parameter of VAETransformer must be"):
        VAETransformer(architecture=Bernoulli()).fit(np.random.rand(10, 3))


def test_faulty_plugins_warn_and_the_rest_keeps_working(tmp_path, monkeypatch, clean_registry):
    _write_distribution(
        tmp_path,
        "faulty-plugins",
        {
            "broken": "broken_mod",
            "raiser": "raiser_mod",
            "notaplugin": "notaplugin_mod",
            "typo": "typo_mod",
            "fine": "fine_mod",
        },
        {
            "broken_mod": "raise ImportError('missing dependency xyz')\n",
            "raiser_mod": """
                from skvae import hookimpl
                @hookimpl
                def skvae_register_priors():
                    raise RuntimeError('boom')
            """,
            "notaplugin_mod": """
                from skvae import hookimpl
                @hookimpl
                def skvae_register_architectures():
                    return [object]
            """,
            "typo_mod": """
                from skvae import hookimpl
                @hookimpl
                def skvae_register_architecture():  # missing "s"
                    return []
            """,
            "fine_mod": """
                from skvae import hookimpl
                from skvae_plugins.mlp import MLP
                class Wide(MLP):
                    name = "wide"
                @hookimpl
                def skvae_register_architectures():
                    return [Wide]
            """,
        },
    )
    baseline = PluginRegistry()
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning) as record:
        registry = PluginRegistry()
        names = registry.names("architecture")
        registry.names("prior")
    messages = "\n".join(str(w.message) for w in record)
    assert "'broken'" in messages and "faulty-plugins" in messages
    assert "missing dependency xyz" in messages
    assert "'raiser'" in messages and "boom" in messages
    assert "'notaplugin'" in messages and "not a subclass" in messages
    assert "'typo'" in messages and "skvae_register_architecture" in messages
    assert names == sorted(baseline.names("architecture") + ["wide"])
    assert registry.names("prior") == baseline.names("prior")


def test_duplicate_name_names_both_providers(tmp_path, monkeypatch, clean_registry):
    _write_distribution(
        tmp_path,
        "dup-plugins",
        {"dup": "dup_mod"},
        {
            "dup_mod": """
                from skvae import hookimpl
                from skvae.base import Architecture
                class OtherMLP(Architecture):
                    name = "mlp"
                @hookimpl
                def skvae_register_architectures():
                    return [OtherMLP]
            """
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="registered more than once"):
        registry = PluginRegistry()
        registry.names("architecture")
    with pytest.raises(PluginError) as excinfo:
        registry.get("architecture", "mlp")
    message = str(excinfo.value)
    assert "skvae_plugins.mlp.MLP" in message and "distribution skvae" in message
    assert "dup_mod.OtherMLP" in message and "dup-plugins" in message
    # Other names keep working.
    assert registry.get("likelihood", "gaussian") is Gaussian


def test_environment_variable_disables_plugins(monkeypatch, clean_registry):
    monkeypatch.setenv("SKVAE_DISABLE_PLUGINS", "gaussian, normal")
    registry = PluginRegistry()
    assert "bernoulli" in registry.names("likelihood")
    assert "gaussian" not in registry.names("likelihood")
    assert "normal" not in registry.names("prior")
    with pytest.raises(PluginError, match="Unknown likelihood 'gaussian'"):
        registry.get("likelihood", "gaussian")


def test_runtime_registration(clean_registry):
    class Twin(MLP):
        name = "twin"

    class Module:
        @staticmethod
        @skvae.hookimpl
        def skvae_register_architectures():
            return [Twin]

    skvae.register_plugin(Module, name="twin-module")
    X = np.random.RandomState(0).rand(20, 4)
    vae = VAETransformer(architecture="twin", max_iter=2, random_state=0).fit(X)
    assert isinstance(vae.architecture_, Twin)


@pytest.fixture
def tinynet_installed(tmp_path, monkeypatch, clean_registry):
    """pip-install the example third-party package into a private folder."""
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
    assert list(target.glob("skvae_tinynet-*.dist-info/entry_points.txt"))
    _add_to_path(monkeypatch, target)
    return target


def test_third_party_plugin_package_by_name(tinynet_installed):
    names = {(p["kind"], p["name"]): p["provider"] for p in skvae.list_plugins()}
    assert "skvae-tinynet" in names[("architecture", "tinynet")]
    X = np.random.RandomState(0).rand(40, 6)
    vae = VAETransformer(architecture="tinynet", max_iter=3, random_state=0).fit(X)
    assert type(vae.architecture_).__name__ == "TinyNet"
    first = vae.module_.net.encoder[0]
    assert (first.in_features, first.out_features) == (6, 32)
    # Nested parameters of a plugin given by name.
    vae.set_params(architecture__width=7).fit(X)
    assert vae.module_.net.encoder[0].out_features == 7


def test_third_party_plugin_in_grid_search_workers(tinynet_installed, digits_small):
    X = digits_small[0][:120]
    search = GridSearchCV(
        VAETransformer(architecture="tinynet", max_iter=2, random_state=0),
        {"architecture__width": [4, 16]},
        cv=2,
        n_jobs=2,
        error_score="raise",
    )
    search.fit(X)
    assert search.best_params_["architecture__width"] in (4, 16)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_plugin_base_classes_say_what_to_implement():
    class Incomplete(Architecture):
        name = "incomplete"

    with pytest.raises(NotImplementedError, match="must implement build"):
        VAETransformer(architecture=Incomplete, max_iter=1).fit(np.random.rand(5, 3))
    assert torch.is_tensor(torch.zeros(1))  # torch untouched by the failure
