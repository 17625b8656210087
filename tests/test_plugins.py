"""The plugin system: entry points, faults, disabling, third-party packages."""

import importlib.metadata
import os
import re
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
import skvae.cli
from skvae import VAETransformer
from skvae._registry import (
    PluginConflictError,
    PluginError,
    PluginRegistry,
    PluginWarning,
    resolve_plugin,
)
from skvae.cli import plugin_table
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
    # As wheels name it: a "-" in the folder name would end the distribution name.
    dist_info = root / f"{name.replace('-', '_')}-0.1.dist-info"
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


_OTHER_MLP = """
    from skvae import hookimpl
    from skvae_plugins.mlp import MLP
    class OtherMLP(MLP):
        name = "{name}"
    @hookimpl
    def skvae_register_architectures():
        return [OtherMLP]
"""


def test_duplicate_name_names_both_providers(tmp_path, monkeypatch, clean_registry):
    _write_distribution(
        tmp_path, "dup-plugins", {"dup": "dup_mod"}, {"dup_mod": _OTHER_MLP.format(name="mlp")}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="claimed by two distributions"):
        registry = PluginRegistry()
        registry.names("architecture")
    with pytest.raises(PluginConflictError) as excinfo:
        registry.get("architecture", "mlp")
    message = str(excinfo.value)
    assert "skvae_plugins.mlp.MLP" in message and "distribution skvae" in message
    assert "dup_mod.OtherMLP" in message and "dup-plugins" in message
    assert "entry point 'mlp'" in message and "entry point 'dup'" in message
    assert "pip install" not in message
    # It says how to keep either one, and each advice works.
    assert "pip uninstall dup-plugins" in message
    assert "SKVAE_DISABLE_PLUGINS=dup keeps the one from skvae" in message
    assert "SKVAE_DISABLE_PLUGINS=skvae:mlp keeps the one from dup-plugins" in message
    # Other names keep working.
    assert registry.get("likelihood", "gaussian") is Gaussian
    monkeypatch.setenv("SKVAE_DISABLE_PLUGINS", "dup")
    assert PluginRegistry().get("architecture", "mlp") is MLP
    monkeypatch.setenv("SKVAE_DISABLE_PLUGINS", "skvae:mlp")
    assert PluginRegistry().get("architecture", "mlp").__module__ == "dup_mod"


def test_entry_point_named_like_a_builtin_keeps_both(
    tmp_path, monkeypatch, clean_registry, digits_small
):
    """A third-party entry point called `mlp` used to drop skvae's own `mlp`.

    Then `mlp` was unknown, and loading a model file that names it said to
    install skvae, which is installed. Both entry points are now loaded,
    whichever comes first on sys.path.
    """
    X = digits_small[0][:40]
    saved = tmp_path / "model.skvae"
    skvae.save(VAETransformer(max_iter=1, random_state=0).fit(X), saved)
    site = tmp_path / "site"
    site.mkdir()
    _write_distribution(
        site, "othermlp", {"mlp": "othermlp_mod"}, {"othermlp_mod": _OTHER_MLP.format(name="othermlp")}
    )
    monkeypatch.syspath_prepend(str(site))
    skvae.reset_registry()
    rows = {row[1]: row for row in plugin_table()}
    assert rows["mlp"][2:] == (f"skvae {skvae.__version__}", "mlp", "skvae_plugins.mlp.MLP")
    assert rows["othermlp"][2:] == ("othermlp 0.1", "mlp", "othermlp_mod.OtherMLP")
    assert isinstance(skvae.load(saved).architecture_, MLP)
    # The qualified form blocks one of the two same-named entry points.
    monkeypatch.setenv("SKVAE_DISABLE_PLUGINS", "OtherMLP:mlp")
    assert PluginRegistry().names("architecture").count("othermlp") == 0
    monkeypatch.setenv("SKVAE_DISABLE_PLUGINS", "skvae:mlp")
    names = PluginRegistry().names("architecture")
    assert "othermlp" in names and "mlp" not in names


def test_same_entry_point_and_plugin_name_says_how_to_block_one(
    tmp_path, monkeypatch, clean_registry
):
    _write_distribution(
        tmp_path, "othermlp", {"mlp": "samename_mod"}, {"samename_mod": _OTHER_MLP.format(name="mlp")}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="claimed by two distributions"):
        registry = PluginRegistry()
        registry.names("architecture")
    with pytest.raises(PluginConflictError) as excinfo:
        VAETransformer(architecture="mlp", max_iter=1).fit(np.zeros((4, 3)))
    message = str(excinfo.value)
    assert "samename_mod.OtherMLP from entry point 'mlp' (distribution othermlp 0.1)" in message
    assert "skvae_plugins.mlp.MLP from entry point 'mlp' (distribution skvae" in message
    # Blocking the plain name `mlp` would block both: the advice is qualified.
    assert "SKVAE_DISABLE_PLUGINS=othermlp:mlp keeps the one from skvae" in message
    monkeypatch.setenv("SKVAE_DISABLE_PLUGINS", "othermlp:mlp")
    assert PluginRegistry().get("architecture", "mlp") is MLP


def test_loading_a_model_whose_plugin_name_is_claimed_twice(
    tmp_path, monkeypatch, clean_registry, digits_small
):
    saved = tmp_path / "model.skvae"
    skvae.save(VAETransformer(max_iter=1, random_state=0).fit(digits_small[0][:40]), saved)
    site = tmp_path / "site"
    site.mkdir()
    _write_distribution(site, "dup-plugins", {"dup": "dup_load_mod"}, {"dup_load_mod": _OTHER_MLP.format(name="mlp")})
    monkeypatch.syspath_prepend(str(site))
    skvae.reset_registry()
    with pytest.warns(PluginWarning), pytest.raises(skvae.ModelFileError) as excinfo:
        skvae.load(saved)
    message = str(excinfo.value)
    assert "claimed by two distributions" in message and "dup-plugins" in message
    assert "pip install" not in message and "does not register it" not in message


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


# ------------------------------------------------- plugins of the wrong shape
_BADNET = """
    from torch import nn
    from skvae import hookimpl
    from skvae.base import Architecture, EncoderDecoder

    class BadNet(Architecture):
        name = "badnet"

        def build(self, n_features, n_components, n_outputs):
            # The encoder is 3 units too wide: a wrong mean/log-variance split.
            return EncoderDecoder(nn.Linear(n_features, 2 * n_components + 6),
                                  nn.Linear(n_components, n_outputs))

    @hookimpl
    def skvae_register_architectures():
        return [BadNet]
"""


@pytest.fixture
def badnet_installed(tmp_path, monkeypatch, clean_registry):
    """The third-party distribution skvae-badnet, whose `badnet` encoder is too wide."""
    site = tmp_path / "site"
    site.mkdir()
    _write_distribution(site, "skvae-badnet", {"badnet": "badnet_mod"}, {"badnet_mod": _BADNET})
    monkeypatch.syspath_prepend(str(site))
    skvae.reset_registry()
    return site


_BADNET_MESSAGE = (
    r"architecture 'badnet' \(from distribution 'skvae-badnet 0\.1', entry point 'badnet'\): "
    r"the encoder returned mean of shape \(2, 5\); expected \(2, 2\) = \(rows, n_components\)"
)


def test_architecture_of_the_wrong_width_is_named_with_its_distribution(badnet_installed):
    X = np.random.RandomState(0).rand(10, 4)
    with pytest.raises(ValueError, match=_BADNET_MESSAGE):
        VAETransformer(architecture="badnet", n_components=2, max_iter=1).fit(X)


def test_cli_reports_an_architecture_of_the_wrong_width(badnet_installed, tmp_path, capsys):
    out = tmp_path / "run"
    status = skvae.cli.main(
        ["fit", "--architecture", "badnet", "--n-components", "2", "--epochs", "1",
         "--n-train", "100", "--quiet", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("skvae: error: ") and "Traceback" not in err
    assert re.search(_BADNET_MESSAGE, err)


def _net(encode, decode, parameters=True):
    """An architecture class whose network runs ``encode``/``decode`` on its layers."""

    class Net(torch.nn.Module):
        def __init__(self, n_features, n_components, n_outputs, **conditions):
            super().__init__()
            self.sizes = (n_features, n_components, n_outputs)
            self.conditions = conditions
            if parameters:
                self.weight = torch.nn.Parameter(torch.zeros(1))

        def encode(self, x, c=None):
            return encode(self, x)

        def decode(self, z, c=None):
            return decode(self, z)

    class Custom(Architecture):
        name = "custom_shape"

        def build(self, n_features, n_components, n_outputs, **conditions):
            return Net(n_features, n_components, n_outputs, **conditions)

    return Custom


def _right_encode(net, x):
    z = x.new_zeros(x.shape[0], net.sizes[1])
    return z, z


def _right_decode(net, z):
    return z.new_zeros(z.shape[0], net.sizes[2])


class _WrongInput(Architecture):
    name = "wrong_input"

    def build(self, n_features, n_components, n_outputs):
        return skvae.base.EncoderDecoder(
            torch.nn.Linear(n_features + 1, 2 * n_components), torch.nn.Linear(n_components, n_outputs)
        )


class _BareLinear(Architecture):
    name = "bare_linear"

    def build(self, n_features, n_components, n_outputs):
        return torch.nn.Linear(n_features, n_components)


@pytest.mark.parametrize(
    "architecture, likelihood, message",
    [
        (
            _WrongInput,
            "bernoulli",
            r"architecture 'wrong_input' \(class .*_WrongInput, not registered\) failed a dry run "
            r"on 2 rows: encode\(x\) with x of shape \(2, 5\) raised RuntimeError: mat1 and mat2 "
            r"shapes cannot be multiplied.*Expected: an encoder taking 5 features",
        ),
        (
            _BareLinear,
            "bernoulli",
            r"architecture 'bare_linear' .*build\(\) returned a Linear, which has no encode\(\) "
            r"method; expected a torch.nn.Module with encode",
        ),
        (
            _net(lambda net, x: (x[:, :1], x[:, :1]), _right_decode),
            "bernoulli",
            r"encoder returned mean of shape \(2, 1\); expected \(2, 3\) = \(rows, n_components\)",
        ),
        (
            _net(lambda net, x: x[:, :3], _right_decode),
            "bernoulli",
            r"the encoder returned a Tensor; expected a pair \(mean, log_var\), each of shape "
            r"\(2, 3\)",
        ),
        (
            # Ignores the likelihood's two parameters per feature.
            _net(_right_encode, lambda net, z: z.new_zeros(z.shape[0], 5)),
            Gaussian(scale="predicted"),
            r"decoder returned params of shape \(2, 5\); expected \(2, 10\) = \(rows, n_outputs\), "
            r"n_outputs = 2 parameters per feature of likelihood 'gaussian' x 5 features",
        ),
        (
            _net(_right_encode, _right_decode, parameters=False),
            "bernoulli",
            r"architecture 'custom_shape' .*no trainable parameter.*nothing to train",
        ),
    ],
    ids=["input-width", "no-encode", "mean-width", "not-a-pair", "decoder-width", "no-parameter"],
)
def test_architecture_of_the_wrong_shape_is_named(architecture, likelihood, message):
    X = np.random.RandomState(0).rand(6, 5)
    with pytest.raises(ValueError, match=message):
        VAETransformer(
            architecture=architecture, likelihood=likelihood, n_components=3, max_iter=1
        ).fit(X)


class _PerFeatureModule(skvae.base.LikelihoodModule):
    def log_prob(self, x, params):
        return -((x - params) ** 2)  # not summed over features


class _PerFeature(skvae.base.Likelihood):
    name = "per_feature"

    def build(self, n_features):
        return _PerFeatureModule()


class _TwoParams(_PerFeature):
    name = "two_params"
    n_params_per_feature = 2  # but its module reads one per feature

    def build(self, n_features):
        return _SummedModule()


class _SummedModule(skvae.base.LikelihoodModule):
    def log_prob(self, x, params):
        return -((x - params) ** 2).sum(-1)


class _NotSummedKL(skvae.base.PriorModule):
    def kl(self, mean, log_var, z):
        return 0.5 * (mean**2 + log_var.exp() - 1 - log_var)  # per dimension


class _PerDimensionPrior(skvae.base.Prior):
    name = "per_dimension"

    def build(self, n_components, n_features):
        return _NotSummedKL()


class _NoModulePrior(skvae.base.Prior):
    name = "no_module"

    def build(self, n_components, n_features):
        return None


@pytest.mark.parametrize(
    "likelihood, prior, message",
    [
        (
            _PerFeature,
            "normal",
            r"likelihood 'per_feature' \(class .*, not registered\): the negative "
            r"log-likelihood of shape \(2, 5\); expected \(2,\) = \(rows,\), summed over features",
        ),
        (
            _TwoParams,
            "normal",
            r"likelihood 'two_params' .* failed a dry run on 2 rows: its negative log-likelihood "
            r"of x of shape \(2, 5\) given the decoder's params of shape \(2, 10\) raised "
            r"RuntimeError.*n_params_per_feature=2 for 5 features",
        ),
        (
            "bernoulli",
            _PerDimensionPrior,
            r"prior 'per_dimension' .*: the KL term of shape \(2, 3\); expected \(2,\) = "
            r"\(rows,\), summed over latent dimensions",
        ),
        (
            "bernoulli",
            _NoModulePrior,
            r"prior 'no_module' .*: build\(\) returned None; expected a torch.nn.Module with "
            r"kl\(mean, log_var, z\)",
        ),
    ],
    ids=["nll-per-feature", "nll-wrong-width", "kl-per-dimension", "prior-not-a-module"],
)
def test_likelihood_and_prior_of_the_wrong_shape_are_named(likelihood, prior, message):
    X = np.random.RandomState(0).rand(6, 5)
    with pytest.raises(ValueError, match=message):
        VAETransformer(likelihood=likelihood, prior=prior, n_components=3, max_iter=1).fit(X)


class _UnconditionedDecoder(Architecture):
    """Takes the condition widths but builds a decoder that ignores them."""

    name = "unconditioned_decoder"

    def build(self, n_features, n_components, n_outputs, encoder_conditions=0,
              decoder_conditions=0):
        return skvae.base.EncoderDecoder(
            torch.nn.Linear(n_features + encoder_conditions, 2 * n_components),
            torch.nn.Linear(n_components, n_outputs),
        )


def test_conditional_architecture_of_the_wrong_shape_is_named():
    X = np.random.RandomState(0).rand(6, 5)
    y = np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(
        ValueError,
        match=r"architecture 'unconditioned_decoder' .* failed a dry run on 2 rows: decode\(z\) "
        r"with z of shape \(2, 3\) and c of shape \(2, 3\) raised RuntimeError: mat1 and mat2"
        r".*a decoder taking 3 latent dimensions and 3 condition columns",
    ):
        skvae.ConditionalVAETransformer(
            architecture=_UnconditionedDecoder, n_components=3, max_iter=1
        ).fit(X, y)
    # The auxiliary-classifier VAE builds its own module: checked all the same.
    with pytest.raises(ValueError, match=r"architecture 'unconditioned_decoder' .* decode\(z\)"):
        skvae.AuxiliaryClassifierVAE(
            architecture=_UnconditionedDecoder, n_components=3, max_iter=1
        ).fit(X, y)


def test_dry_run_leaves_the_module_and_random_state_as_they_were():
    from skvae._estimator import _build_module
    from skvae._plugin_check import check_vae_module
    from skvae_plugins.ladder import Ladder
    from skvae_plugins.normal import Normal

    plugins = (Ladder(latent_sizes=(3, 2), hidden_sizes=(4,), batch_norm=True), Bernoulli(), Normal())
    module = _build_module(*plugins, n_features=5, n_components=2, seed=0)
    module.train()
    module.net.decoder.eval()  # a mixed state, restored module by module
    modes = [m.training for m in module.modules()]
    state = {k: v.clone() for k, v in module.state_dict().items()}
    rng = torch.get_rng_state()
    check_vae_module(module, *plugins, n_features=5)
    assert [m.training for m in module.modules()] == modes
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
