"""Priors ``student_t``, ``mixture`` and ``vamp``: densities, KL, draws, training, pickling."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import clone
from torch import distributions as D
from torch import nn

from skvae import VAETransformer
from skvae._model import RandomNoise, VAEModule
from skvae._registry import resolve_plugin
from skvae_plugins.bernoulli import Bernoulli
from skvae_plugins.mixture import GaussianMixturePrior
from skvae_plugins.mlp import MLP
from skvae_plugins.student_t_prior import StudentTPrior
from skvae_plugins.vamp import VampPrior

NAMES = ["student_t", "mixture", "vamp"]
CLASSES = {"student_t": StudentTPrior, "mixture": GaussianMixturePrior, "vamp": VampPrior}
N_LATENT, N_FEATURES = 3, 5


# ---------------------------------------------------------------- helpers
def _gaussian(mean, log_var):
    """Diagonal Gaussian as a torch distribution over the last dimension."""
    return D.Independent(D.Normal(mean, torch.exp(0.5 * log_var)), 1)


def _linear_encode(n_features, n_latent, seed):
    """A seeded linear encoder ``x -> (mean, log_var)`` with varied variances."""
    torch.manual_seed(seed)
    layer = nn.Linear(n_features, 2 * n_latent)

    def encode(x):
        mean, log_var = layer(x).chunk(2, dim=-1)
        return 2.0 * mean, log_var

    encode.layer = layer
    return encode


def _built(name, seed=0):
    """A prior module with non-trivial parameter values (unequal weights, variances)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "student_t":
            return StudentTPrior(df=3.5).build(N_LATENT, N_FEATURES)
        if name == "mixture":
            module = GaussianMixturePrior(n_components_mixture=4).build(N_LATENT, N_FEATURES)
            with torch.no_grad():
                module.log_vars.copy_(torch.randn(4, N_LATENT))
                module.logits.copy_(torch.tensor([0.5, -1.0, 1.5, 0.0]))
            return module
        module = VampPrior(n_pseudo_inputs=4, init_std=1.0).build(N_LATENT, N_FEATURES)
        module.bind_encoder(_linear_encode(N_FEATURES, N_LATENT, seed + 1))
        return module


def _reference(name, module):
    """p(z) built independently with torch.distributions."""
    if name == "student_t":
        zeros = torch.zeros(N_LATENT)
        return D.Independent(D.StudentT(module.df, zeros, torch.ones(N_LATENT)), 1)
    if name == "mixture":
        mix = D.Categorical(logits=module.logits)
        return D.MixtureSameFamily(mix, _gaussian(module.means, module.log_vars))
    mean, log_var = module.components()
    mix = D.Categorical(logits=torch.zeros(mean.shape[0]))
    return D.MixtureSameFamily(mix, _gaussian(mean, log_var))


def _posterior(n_rows=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn((n_rows, N_LATENT), generator=g)
    log_var = 0.5 * torch.randn((n_rows, N_LATENT), generator=g) - 0.5
    return mean, log_var


def _mc_kl(module, mean, log_var, n_draws, seed=0):
    """The prior's KL estimate at ``n_draws`` reparameterised draws per row: (draws, rows)."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((n_draws, *mean.shape), generator=g)
    z = mean + torch.exp(0.5 * log_var) * eps
    mean_rows = mean.expand(n_draws, *mean.shape).reshape(-1, N_LATENT)
    log_var_rows = log_var.expand(n_draws, *mean.shape).reshape(-1, N_LATENT)
    with torch.no_grad():
        kl = module.kl(mean_rows, log_var_rows, z.reshape(-1, N_LATENT))
    return kl.view(n_draws, mean.shape[0])


def _assert_mc_close(kl_draws, expected):
    """Mean over draws within 5 standard errors (plus a float32 margin) of ``expected``."""
    estimate = kl_draws.double().mean(0)
    stderr = kl_draws.double().std(0) / math.sqrt(kl_draws.shape[0])
    expected = torch.as_tensor(expected, dtype=torch.float64)
    assert torch.all((estimate - expected).abs() <= 5 * stderr + 1e-3), (estimate, expected, stderr)


# ----------------------------------------------------- densities and the KL
@pytest.mark.parametrize("name", NAMES)
def test_log_prob_matches_torch_distributions(name):
    module = _built(name)
    z = 2.0 * torch.randn((64, N_LATENT), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _reference(name, module).log_prob(z)
        got = module.log_prob(z)
    assert got.shape == (64,)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("df", [1.0, 2.5, 30.0])
def test_student_t_log_prob_for_several_df(df):
    module = StudentTPrior(df=df).build(2, 4)
    z = torch.linspace(-20, 20, 81).view(-1, 1).repeat(1, 2)
    expected = torch.from_numpy(stats.t(df).logpdf(z.double().numpy()).sum(-1))
    torch.testing.assert_close(module.log_prob(z).double(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_kl_is_log_q_minus_log_p_at_the_draw(name):
    module = _built(name)
    mean, log_var = _posterior()
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(2))
    z = mean + torch.exp(0.5 * log_var) * eps
    with torch.no_grad():
        expected = _gaussian(mean, log_var).log_prob(z) - _reference(name, module).log_prob(z)
        got = module.kl(mean, log_var, z)
    assert got.shape == (mean.shape[0],)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


def test_mixture_mc_kl_averages_to_the_closed_form_for_one_standard_component():
    module = GaussianMixturePrior(n_components_mixture=1).build(N_LATENT, N_FEATURES)
    with torch.no_grad():
        module.means.zero_()
        module.log_vars.zero_()
    mean, log_var = _posterior()
    closed_form = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
    _assert_mc_close(_mc_kl(module, mean, log_var, 20000), closed_form)


def test_mixture_mc_kl_averages_to_the_closed_form_for_one_general_component():
    module = GaussianMixturePrior(n_components_mixture=1).build(N_LATENT, N_FEATURES)
    with torch.no_grad():
        module.means.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
        module.log_vars.copy_(torch.tensor([[0.7, -0.3, 0.0]]))
        module.logits.fill_(3.0)  # one component: its weight is 1 whatever the logit
    mean, log_var = _posterior()
    p = _gaussian(module.means[0].detach(), module.log_vars[0].detach())
    closed_form = D.kl_divergence(_gaussian(mean, log_var), p)
    _assert_mc_close(_mc_kl(module, mean, log_var, 20000), closed_form)


def test_vamp_mc_kl_averages_to_the_closed_form_for_one_pseudo_input():
    module = VampPrior(n_pseudo_inputs=1, init_std=1.0).build(N_LATENT, N_FEATURES)
    module.bind_encoder(_linear_encode(N_FEATURES, N_LATENT, seed=3))
    with torch.no_grad():
        p = _gaussian(*module.components())
        mean, log_var = _posterior()
        closed_form = D.kl_divergence(_gaussian(mean, log_var), p)
    _assert_mc_close(_mc_kl(module, mean, log_var, 20000), closed_form)


def test_student_t_mc_kl_averages_to_quadrature():
    df = 3.0
    module = StudentTPrior(df=df).build(N_LATENT, N_FEATURES)
    mean, log_var = _posterior()
    # E_q[log q - log p] per dimension by Gauss-Hermite quadrature (scipy's density).
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    weights = weights / weights.sum()
    m, s = mean.double().numpy()[..., None], np.exp(0.5 * log_var.double().numpy())[..., None]
    x = m + s * nodes
    integrand = stats.norm.logpdf(x, m, s) - stats.t(df).logpdf(x)
    quadrature = (integrand * weights).sum(-1).sum(-1)
    _assert_mc_close(_mc_kl(module, mean, log_var, 20000), quadrature)


# ----------------------------------------------------------------- sampling
@pytest.mark.parametrize("name", NAMES)
def test_samples_are_reproducible_given_the_generator(name):
    module = _built(name)
    global_state = torch.get_rng_state()
    with torch.no_grad():
        a = module.sample(500, generator=torch.Generator().manual_seed(0))
        b = module.sample(500, generator=torch.Generator().manual_seed(0))
        c = module.sample(500, generator=torch.Generator().manual_seed(1))
    assert a.shape == (500, N_LATENT) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), global_state)  # torch's global RNG untouched


@pytest.mark.parametrize("df", [2.5, 5.0])
def test_student_t_samples_follow_the_distribution(df):
    module = StudentTPrior(df=df).build(2, 4)
    z = module.sample(20000, generator=torch.Generator().manual_seed(0))
    values = z.double().numpy().ravel()
    assert stats.kstest(values, stats.t(df).cdf).pvalue > 0.01
    # A standard normal has the right mean and spread but the wrong tails.
    assert stats.kstest(values, stats.norm.cdf).pvalue < 1e-6
    assert abs(values.mean()) < 0.05
    if df > 4:  # finite fourth moment: the sample variance is a reliable check
        assert values.var() == pytest.approx(df / (df - 2), rel=0.05)


def _mixture_moments(weights, means, variances):
    mean = (weights[:, None] * means).sum(0)
    second = (weights[:, None] * (variances + means**2)).sum(0)
    return mean, second - mean**2


@pytest.mark.parametrize("name", ["mixture", "vamp"])
def test_mixture_samples_have_the_mixture_moments(name):
    module = _built(name)
    with torch.no_grad():
        if name == "mixture":
            weights = torch.softmax(module.logits, 0)
            means, log_vars = module.means, module.log_vars
        else:
            means, log_vars = module.components()
            weights = torch.full((means.shape[0],), 1.0 / means.shape[0])
        mean, var = _mixture_moments(weights, means, log_vars.exp())
        z = module.sample(40000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), mean, atol=4 * float(var.max().sqrt()) / 200, rtol=0)
    torch.testing.assert_close(z.var(0), var, rtol=0.05, atol=0.01)


def test_mixture_sample_component_frequencies_follow_the_weights():
    module = GaussianMixturePrior(n_components_mixture=3).build(1, 2)
    with torch.no_grad():
        module.means.copy_(torch.tensor([[-100.0], [0.0], [100.0]]))
        module.logits.copy_(torch.log(torch.tensor([0.2, 0.5, 0.3])))
        z = module.sample(20000, generator=torch.Generator().manual_seed(0))
    counts = torch.stack([(z < -50).sum(), (z.abs() < 50).sum(), (z > 50).sum()]).double()
    expected = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    torch.testing.assert_close(counts / 20000, expected, atol=0.015, rtol=0)


# ----------------------------------------------------------------- training
def _vae_module(prior, seed=0):
    torch.manual_seed(seed)
    net = MLP(hidden_sizes=(16,)).build(n_features=64, n_components=2, n_outputs=64)
    return VAEModule(net, Bernoulli().build(64), prior.build(2, 64), 2)


LEARNED = {"mixture": ["means", "log_vars", "logits"], "vamp": ["pseudo_inputs"]}


@pytest.mark.parametrize("name", ["mixture", "vamp"])
def test_a_training_step_updates_the_prior_parameters(name, digits_small):
    X = torch.from_numpy(digits_small[0][:64])
    with torch.random.fork_rng(devices=[]):
        module = _vae_module(CLASSES[name]())
    before = {k: getattr(module.prior, k).detach().clone() for k in LEARNED[name]}
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    nll, kl = module.terms(X, RandomNoise(torch.Generator().manual_seed(0), torch.device("cpu")))
    (nll + kl).mean().backward()
    for key in LEARNED[name]:
        grad = getattr(module.prior, key).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, key
    optimizer.step()
    for key in LEARNED[name]:
        assert not torch.equal(getattr(module.prior, key), before[key]), key


@pytest.mark.parametrize("name", ["mixture", "vamp"])
def test_fit_trains_the_prior_parameters(name, digits_small):
    vae = VAETransformer(prior=name, max_iter=1, random_state=0).partial_fit(digits_small[0])
    before = {k: v.clone() for k, v in vae.module_.prior.state_dict().items()}
    vae.partial_fit(digits_small[0])
    after = vae.module_.prior.state_dict()
    assert set(before) == set(LEARNED[name])
    assert all(not torch.equal(before[k], after[k]) for k in before)


def test_vamp_does_not_register_the_parent_module():
    module = _vae_module(VampPrior(n_pseudo_inputs=3))
    assert all(m is not module for m in module.prior.modules())
    assert [k for k in module.state_dict() if k.startswith("prior.")] == ["prior.pseudo_inputs"]
    # A deep copy's prior uses the copy's encoder, not the original's.
    twin = copy.deepcopy(module)
    with torch.no_grad():
        for p in twin.net.parameters():
            p.add_(1.0)
        assert not torch.equal(twin.prior.components()[0], module.prior.components()[0])


def test_vamp_without_an_encoder_says_so():
    module = VampPrior().build(2, 4)
    with pytest.raises(RuntimeError, match="bind_encoder"):
        module.log_prob(torch.zeros(1, 2))


# ------------------------------------------------------- with the estimator
@pytest.fixture(scope="module")
def fitted(digits):
    X = digits[0]
    models = {name: VAETransformer(prior=name, max_iter=3, random_state=0) for name in NAMES}
    return X, {name: vae.fit(X) for name, vae in models.items()}


@pytest.mark.parametrize("name", NAMES)
def test_fit_on_digits_scores_and_samples(name, fitted):
    X, models = fitted
    vae = models[name]
    assert isinstance(vae.prior_, CLASSES[name])
    assert np.isfinite(vae.score(X[:200]))
    draws = vae.sample(7, random_state=0)
    assert draws.shape == (7, 64) and np.isfinite(draws).all()
    assert np.array_equal(draws, vae.sample(7, random_state=0))
    assert vae.sample(3, random_state=0, decode="draw").shape == (3, 64)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip(name, fitted):
    X, models = fitted
    vae = models[name]
    loaded = pickle.loads(pickle.dumps(vae))
    np.testing.assert_array_equal(loaded.transform(X[:50]), vae.transform(X[:50]))
    np.testing.assert_array_equal(loaded.score_samples(X[:20]), vae.score_samples(X[:20]))
    np.testing.assert_array_equal(loaded.sample(5, random_state=1), vae.sample(5, random_state=1))


# ------------------------------------------------------------- the plugins
@pytest.mark.parametrize("name", NAMES)
def test_registered_by_name(name):
    assert type(resolve_plugin("prior", name)) is CLASSES[name]


@pytest.mark.parametrize(
    "prior, params",
    [
        (StudentTPrior(df=2.5), {"df": 2.5}),
        (GaussianMixturePrior(n_components_mixture=3), {"n_components_mixture": 3}),
        (VampPrior(n_pseudo_inputs=7, init_std=0.5), {"n_pseudo_inputs": 7, "init_std": 0.5}),
    ],
)
def test_params_are_stored_unchanged_and_clone(prior, params):
    assert prior.get_params() == params
    assert clone(prior).get_params() == params


def test_nested_set_params_on_a_prior_name():
    vae = VAETransformer(prior="student_t").set_params(prior__df=3.0)
    assert isinstance(vae.prior, StudentTPrior) and vae.prior.df == 3.0


@pytest.mark.parametrize(
    "prior, param",
    [
        (StudentTPrior(df=0), "df"),
        (StudentTPrior(df=-1.0), "df"),
        (StudentTPrior(df=float("inf")), "df"),
        (StudentTPrior(df="5"), "df"),
        (StudentTPrior(df=True), "df"),
        (GaussianMixturePrior(n_components_mixture=0), "n_components_mixture"),
        (GaussianMixturePrior(n_components_mixture=2.5), "n_components_mixture"),
        (VampPrior(n_pseudo_inputs=0), "n_pseudo_inputs"),
        (VampPrior(n_pseudo_inputs=None), "n_pseudo_inputs"),
        (VampPrior(init_std=-0.1), "init_std"),
    ],
)
def test_build_rejects_bad_params(prior, param):
    with pytest.raises(ValueError, match=param):
        prior.build(2, 4)


def test_bad_prior_param_fails_fit_with_its_name(digits_small):
    with pytest.raises(ValueError, match="n_pseudo_inputs"):
        VAETransformer(prior=VampPrior(n_pseudo_inputs=0), max_iter=1).fit(digits_small[0])
