"""Architecture ``ladder``: the Ladder VAE's maths, its estimator use, the common checks."""

import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from _kernels import expected_order_failures
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch.distributions import Normal as TorchNormal
from torch.distributions import kl_divergence

import skvae
import skvae_plugins.ladder
from skvae import VAETransformer
from skvae._model import RandomNoise
from skvae.base import PriorModule, gaussian_log_prob
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.ladder import (
    Ladder,
    LadderNet,
    gaussian_kl,
    precision_weighted,
    transform_layers,
)
from skvae_plugins.normal import Normal


@pytest.fixture(scope="module", autouse=True)
def ladder_by_name():
    """Make ``architecture="ladder"`` resolvable.

    The entry point is declared in pyproject.toml; an installation made
    before it was added lacks it until ``pip install -e .`` runs again. In that
    case the plugin module is registered at run time for these tests only.
    """
    names = {p["name"] for p in skvae.list_plugins("architecture")}
    registered_here = "ladder" not in names
    if registered_here:
        skvae.register_plugin(skvae_plugins.ladder, name="ladder")
    yield
    if registered_here:
        skvae.reset_registry()


def _noise(seed):
    return RandomNoise(torch.Generator().manual_seed(seed), torch.device("cpu"))


def _net(n_features=3, latent_sizes=(2, 1), hidden_sizes=(5,), n_outputs=3, seed=0, **kwargs):
    torch.manual_seed(seed)
    return LadderNet(n_features, latent_sizes, hidden_sizes, n_outputs, **kwargs)


# --------------------------------------------------------------- the merge
def test_precision_weighted_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    m_bu, m_td = torch.randn(50, generator=g), torch.randn(50, generator=g)
    s_bu = torch.rand(50, generator=g) * 3 + 0.05  # standard deviations
    s_td = torch.rand(50, generator=g) * 3 + 0.05
    mean, log_var = precision_weighted(m_bu, 2 * s_bu.log(), m_td, 2 * s_td.log())
    var = 1.0 / (s_bu**-2 + s_td**-2)
    torch.testing.assert_close(log_var.exp(), var)
    torch.testing.assert_close(mean, (m_bu * s_bu**-2 + m_td * s_td**-2) * var)
    # One case by hand: N(1, 4) and N(-2, 1) -> var 4/5, mean (1/4 - 2) * 4/5 = -1.4.
    mean, log_var = precision_weighted(
        torch.tensor(1.0), torch.tensor(4.0).log(), torch.tensor(-2.0), torch.tensor(0.0)
    )
    assert mean.item() == pytest.approx(-1.4, abs=1e-6)
    assert log_var.exp().item() == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize(
    "m_bu, s_bu, m_td, s_td", [(0.0, 1.0, 3.0, 0.5), (-1.0, 0.3, 2.0, 2.0), (0.5, 2.0, 0.4, 0.1)]
)
def test_precision_weighted_is_the_normalised_product_of_densities(m_bu, s_bu, m_td, s_td):
    grid = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    product = (
        TorchNormal(m_bu, s_bu).log_prob(grid) + TorchNormal(m_td, s_td).log_prob(grid)
    ).exp()
    product = product / torch.trapezoid(product, grid)
    mean, log_var = precision_weighted(
        torch.tensor(m_bu, dtype=torch.float64),
        torch.tensor(2 * math.log(s_bu), dtype=torch.float64),
        torch.tensor(m_td, dtype=torch.float64),
        torch.tensor(2 * math.log(s_td), dtype=torch.float64),
    )
    merged = TorchNormal(mean, log_var.mul(0.5).exp()).log_prob(grid).exp()
    torch.testing.assert_close(merged, product, atol=1e-6, rtol=1e-5)


def test_posterior_draws_are_scaled_by_the_standard_deviation():
    # Constant heads: the bottom-up terms are N(0.5, 0.25) for both layers and
    # the top-down prior of z_1 is N(-1, 0.04), whatever the input.
    net = _net(latent_sizes=(1, 1))
    with torch.no_grad():
        for head in net.bottom_up_heads:
            head.weight.zero_()
            head.bias.copy_(torch.tensor([0.5, math.log(0.25)]))
        out = net.top_down[0][-1]
        out.weight.zero_()
        out.bias.copy_(torch.tensor([-1.0, math.log(0.04)]))
    n = 40_000
    layers = net.posterior(torch.zeros(n, 3), _noise(0))
    z1, z2 = layers[0]["z"].detach().ravel(), layers[1]["z"].detach().ravel()
    # Top layer: the bottom-up term, std 0.5 (the bug would give 0.25).
    assert z2.mean().item() == pytest.approx(0.5, abs=0.01)
    assert z2.var().item() == pytest.approx(0.25, rel=0.03)
    # z_1: var = 1 / (1/0.25 + 1/0.04) = 1/29, mean = (0.5 * 4 - 1 * 25) / 29.
    assert z1.mean().item() == pytest.approx(-23 / 29, abs=0.005)
    assert z1.var().item() == pytest.approx(1 / 29, rel=0.03)
    assert layers[0]["log_var"][0].exp().item() == pytest.approx(1 / 29, rel=1e-5)


# ------------------------------------------------------------------ the KL
def test_gaussian_kl_matches_torch():
    g = torch.Generator().manual_seed(1)
    mq, mp = torch.randn(100, generator=g), torch.randn(100, generator=g)
    lvq, lvp = torch.randn(100, generator=g) * 2, torch.randn(100, generator=g) * 2
    q, p = TorchNormal(mq, lvq.mul(0.5).exp()), TorchNormal(mp, lvp.mul(0.5).exp())
    expected = kl_divergence(q, p)
    torch.testing.assert_close(gaussian_kl(mq, lvq, mp, lvp), expected)


def test_terms_kl_is_top_prior_kl_plus_lower_analytic_kls():
    net = _net(latent_sizes=(4, 3, 2), n_outputs=3)
    likelihood, prior = Gaussian(scale=1.0).build(3), Normal().build(2, 3)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        nll, kl = net.terms(x, _noise(3), likelihood, prior)
        layers = net.posterior(x, _noise(3))  # the same draws
    top = layers[-1]
    expected = kl_divergence(
        TorchNormal(top["mean"], top["log_var"].mul(0.5).exp()),
        TorchNormal(torch.zeros(()), torch.ones(())),
    ).sum(-1)
    for layer in layers[:-1]:
        q = TorchNormal(layer["mean"], layer["log_var"].mul(0.5).exp())
        p = TorchNormal(layer["prior_mean"], layer["prior_log_var"].mul(0.5).exp())
        expected = expected + kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl, expected)
    params = net.decoder(layers[0]["z"])
    torch.testing.assert_close(nll, -likelihood.log_prob(x, params))
    assert [layer["z"].shape[1] for layer in layers] == [4, 3, 2]


class _WideModule(PriorModule):
    """N(0, 4 I) with the base class's Monte Carlo KL (any prior plugin works)."""

    def log_prob(self, z):
        log_var = torch.full_like(z, math.log(4.0))
        return gaussian_log_prob(z, torch.zeros_like(z), log_var).sum(-1)


@pytest.mark.parametrize("prior", [Normal().build(1, 3), _WideModule()], ids=["normal", "mc"])
def test_terms_agree_with_log_weights_in_expectation(prior):
    # E_q[log w] = -(nll + kl) on average: the KL terms are the expectations of
    # log q - log p. With the same draws, log w + nll + kl has mean zero.
    net = _net(latent_sizes=(2, 1), seed=4)
    with torch.no_grad():  # posterior variances far from 1: std != var
        for head in net.bottom_up_heads:
            head.bias[head.out_features // 2 :] -= 1.5
        net.top_down[0][-1].bias[2:] += 1.0
    likelihood = Gaussian(scale=0.5).build(3)
    x = torch.tensor([[0.3, -1.0, 2.0], [1.5, 0.2, -0.7]]).repeat_interleave(50_000, dim=0)
    with torch.no_grad():
        nll, kl = net.terms(x, _noise(5), likelihood, prior)
        log_w = net.log_weights(x, _noise(5), likelihood, prior)
    diff = (log_w + nll + kl).view(2, -1)
    se = diff.std(dim=1) / math.sqrt(diff.shape[1])
    assert torch.all(diff.mean(dim=1).abs() < 4 * se + 1e-4), (diff.mean(dim=1), se)
    assert torch.all(se > 0)  # a real check, not an identity


# ------------------------------------------------------ encode and decode
def test_encode_layers_and_decode():
    net = _net(latent_sizes=(4, 3, 2), n_outputs=3).eval()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        layers = net.encode_layers(x)
        assert [m.shape for m, _ in layers] == [(5, 4), (5, 3), (5, 2)]
        top_mean, top_log_var = net.encode(x)
        torch.testing.assert_close(layers[-1][0], top_mean)
        torch.testing.assert_close(layers[-1][1], top_log_var)
        # Lower layers: the merge with the prior conditional on the posterior mean above.
        bottom_up = net._bottom_up(x)
        prior_mean, prior_log_var = net.top_down[1](top_mean).chunk(2, dim=-1)
        expected = precision_weighted(*bottom_up[1], prior_mean, prior_log_var)
        torch.testing.assert_close(layers[1][0], expected[0])
        # decode: the top-down path through the prior-conditional means.
        z = torch.randn(5, 2, generator=torch.Generator().manual_seed(7))
        z2 = net.top_down[1](z).chunk(2, dim=-1)[0]
        z1 = net.top_down[0](z2).chunk(2, dim=-1)[0]
        torch.testing.assert_close(net.decode(z), net.decoder(z1))


# ------------------------------------------------------------ the plugin
def test_hook_registers_the_plugin():
    assert skvae_plugins.ladder.skvae_register_architectures() == [Ladder]
    assert Ladder.name == "ladder"
    assert Ladder().get_params() == {
        "activation": "relu",
        "batch_norm": False,
        "hidden_sizes": (128,),
        "latent_sizes": (32,),
    }


@pytest.mark.parametrize(
    "params, name",
    [
        ({"latent_sizes": ()}, "latent_sizes"),
        ({"latent_sizes": (8, 0)}, "latent_sizes"),
        ({"latent_sizes": "8"}, "latent_sizes"),
        ({"hidden_sizes": (16, -1)}, "hidden_sizes"),
        ({"hidden_sizes": None}, "hidden_sizes"),
        ({"activation": "swish"}, "activation"),
        ({"batch_norm": "yes"}, "batch_norm"),
    ],
)
def test_build_validates_parameters(params, name):
    with pytest.raises(ValueError, match=name):
        Ladder(**params).build(n_features=4, n_components=2, n_outputs=4)
    X = np.random.RandomState(0).rand(10, 4)
    vae = VAETransformer(architecture=Ladder(**params), max_iter=1)
    with pytest.raises(ValueError, match=name):
        vae.fit(X)
    assert not hasattr(vae, "module_")


def test_int_sizes_are_accepted():
    net = Ladder(latent_sizes=6, hidden_sizes=7).build(n_features=2, n_components=3, n_outputs=2)
    assert net.latent_sizes == (6, 3)


# ------------------------------------------------------- with the estimator
@pytest.fixture(scope="module")
def fitted_digits():
    X = load_digits().data / 16
    vae = VAETransformer(architecture="ladder", n_components=2, max_iter=3, random_state=0)
    return vae.fit(X), X


def test_fit_on_digits(fitted_digits):
    vae, X = fitted_digits
    assert isinstance(vae.architecture_, Ladder)
    assert vae.n_iter_ == 3
    assert vae.history_[-1]["loss"] < vae.history_[0]["loss"]
    score = vae.score(X[:200])
    assert np.isfinite(score) and score < 0
    Z = vae.transform(X)
    assert Z.shape == (X.shape[0], 2) and Z.dtype == np.float64
    layers = transform_layers(vae, X)
    assert [L.shape for L in layers] == [(X.shape[0], 32), (X.shape[0], 2)]
    np.testing.assert_allclose(layers[-1], Z, rtol=1e-6)
    assert transform_layers(vae, X[:5].astype(np.float32))[0].dtype == np.float32
    samples = vae.sample(7, random_state=0)
    assert samples.shape == (7, 64) and np.all((samples >= 0) & (samples <= 1))
    X_back = vae.inverse_transform(Z[:10])
    assert X_back.shape == (10, 64) and np.all(np.isfinite(X_back))


def test_iwae_bound_uses_log_weights(fitted_digits):
    vae, X = fitted_digits
    elbo = vae.score_samples(X[:40])
    iwae = vae.score_samples(X[:40], method="iwae", n_importance=64)
    assert np.all(np.isfinite(iwae)) and np.all(iwae > elbo)
    trained = VAETransformer(
        architecture=Ladder(hidden_sizes=(16,)), n_importance=3, max_iter=2, random_state=0
    ).fit(X[:100])
    assert np.isfinite(trained.history_[-1]["loss"])


def test_pickle_round_trip(fitted_digits):
    vae, X = fitted_digits
    clone = pickle.loads(pickle.dumps(vae))
    np.testing.assert_array_equal(clone.transform(X[:20]), vae.transform(X[:20]))
    for a, b in zip(transform_layers(clone, X[:20]), transform_layers(vae, X[:20])):
        np.testing.assert_array_equal(a, b)


def test_transform_layers_errors(fitted_digits):
    _, X = fitted_digits
    with pytest.raises(NotFittedError):
        transform_layers(VAETransformer(architecture="ladder"), X)
    mlp = VAETransformer(max_iter=1, random_state=0).fit(X[:50])
    with pytest.raises(ValueError, match="ladder"):
        transform_layers(mlp, X[:5])


def test_batch_norm_with_a_one_row_last_batch():
    X = np.random.RandomState(0).randn(9, 5)
    vae = VAETransformer(
        architecture=Ladder(latent_sizes=(4, 3), hidden_sizes=(8,), batch_norm=True),
        batch_size=4,  # batches of 4, 4 and 1
        max_iter=2,
        random_state=0,
    ).fit(X)
    assert [L.shape for L in transform_layers(vae, X)] == [(9, 4), (9, 3), (9, 2)]
    assert np.isfinite(vae.score(X))


def test_transform_is_invariant_to_batching_up_to_float32_rounding(fitted_digits):
    vae, X = fitted_digits
    full = np.concatenate(transform_layers(vae, X[:20]), axis=1)
    rows = np.concatenate(
        [np.concatenate(transform_layers(vae, X[i : i + 1]), axis=1) for i in range(20)]
    )
    np.testing.assert_allclose(rows, full, rtol=1e-5, atol=1e-6)
    scores = np.array([vae.score_samples(X[i : i + 1])[0] for i in range(20)])
    np.testing.assert_allclose(scores, vae.score_samples(X[:20]), rtol=1e-5)


@parametrize_with_checks(
    [VAETransformer(architecture="ladder", max_iter=2)],
    expected_failed_checks=expected_order_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("likelihood", ["poisson", "categorical"])
def test_the_ladder_encodes_the_likelihoods_view_of_the_rows(likelihood):
    """A likelihood with its own encoder view (log(1 + x) of counts, one-hot
    codes) pairs with the ladder: training (``terms``), ``transform`` and
    ``transform_layers`` all encode that view."""
    from skvae_plugins.categorical import Categorical

    X = np.rint(load_digits().data[:120]).astype(np.float32)
    plugin = Categorical(n_categories=[17] * 64) if likelihood == "categorical" else likelihood
    vae = VAETransformer(architecture="ladder", likelihood=plugin, n_components=2,
                         max_iter=2, random_state=0).fit(X)
    net, module = vae.module_.net, vae.module_.likelihood
    view = module.features(torch.as_tensor(X[:10]))
    assert view.shape[1] == (64 * 17 if likelihood == "categorical" else 64)
    with torch.no_grad():
        top = net.posterior(view)[-1]["mean"]
        nll, _ = net.terms(torch.as_tensor(X[:10]), None, module, vae.module_.prior)
        params = net.decoder(net.posterior(view)[0]["z"])
    np.testing.assert_allclose(vae.transform(X[:10]), top.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(transform_layers(vae, X[:10])[-1], top.numpy(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(nll, -module.log_prob(torch.as_tensor(X[:10]), params))
