"""Training tricks and evaluation: schedules, free bits, clipping, IWAE, diagnostics."""

import numpy as np
import pytest
import torch

import skvae._estimator as estimator_module
from skvae import VAETransformer
from skvae._schedule import beta_at, lr_at, warmup_end


def test_cyclical_beta_schedule(digits_small):
    X, _ = digits_small
    vae = VAETransformer(max_iter=8, kl_warmup=0.5, kl_cycles=2, random_state=0).fit(X)
    assert [h["beta"] for h in vae.history_] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    assert warmup_end(0.5, 8, kl_cycles=2) == 6
    # Past max_iter (warm starts) beta stays at its final value.
    assert beta_at(20, 2.0, 0.5, 8, kl_cycles=2) == 2.0


def test_no_early_stop_while_beta_ramps(digits_small):
    X, _ = digits_small
    # Loss rises while beta ramps up; that must not count as "no improvement".
    vae = VAETransformer(
        max_iter=12, kl_warmup=0.5, beta=4.0, n_iter_no_change=2, tol=0.0, random_state=0
    ).fit(X)
    assert vae.n_iter_ >= warmup_end(0.5, 12) + 1


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear"])
def test_learning_rate_schedule(digits_small, schedule):
    X, _ = digits_small
    vae = VAETransformer(max_iter=4, learning_rate=0.01, lr_schedule=schedule, random_state=0)
    vae.fit(X)
    rates = [h["learning_rate"] for h in vae.history_]
    assert rates == [lr_at(e, 0.01, schedule, 4) for e in range(4)]
    assert vae.optimizer_.param_groups[0]["lr"] == rates[-1]
    if schedule == "constant":
        assert rates == [0.01] * 4
    else:
        assert rates[0] == 0.01 and all(a > b for a, b in zip(rates, rates[1:]))


def test_gradient_clipping_bounds_each_step(digits_small):
    X, _ = digits_small
    kwargs = dict(optimizer="sgd", learning_rate=0.1, max_iter=1, batch_size=300, random_state=0)
    base = VAETransformer(**{**kwargs, "learning_rate": 1e-30}).fit(X)  # ~initial weights
    w0 = torch.cat([p.flatten() for p in base.module_.parameters()])
    clipped = VAETransformer(**kwargs, clip_grad_norm=1e-3).fit(X)
    free = VAETransformer(**kwargs).fit(X)
    w_clip = torch.cat([p.flatten() for p in clipped.module_.parameters()])
    w_free = torch.cat([p.flatten() for p in free.module_.parameters()])
    # One SGD step of lr 0.1 with a gradient of norm <= 1e-3 moves the weights <= 1e-4.
    assert torch.linalg.vector_norm(w_clip - w0) <= 0.1 * 1e-3 * 1.001
    assert torch.linalg.vector_norm(w_free - w0) > 100 * torch.linalg.vector_norm(w_clip - w0)


def test_free_bits_keep_kl_per_dimension_up(digits):
    X, _ = digits
    common = dict(n_components=6, max_iter=8, batch_size=64, random_state=0)
    plain = VAETransformer(**common).fit(X)
    free = VAETransformer(**common, free_bits=2.0).fit(X)
    kl_plain, kl_free = plain.kl_per_dimension(X), free.kl_per_dimension(X)
    assert kl_free.min() > 1.0  # no dimension is pushed below the free bits
    assert kl_free.sum() > kl_plain.sum()
    h = free.history_[-1]
    # The objective counts at least free_bits per dimension.
    assert h["loss"] >= h["reconstruction"] + 6 * 2.0 - 1e-3


def test_free_bits_objective_value():
    from skvae._model import RandomNoise

    X = torch.rand(32, 5)
    vae = VAETransformer(n_components=3, max_iter=1, random_state=0).fit(X.numpy())
    module = vae.module_
    noise_a = RandomNoise(torch.Generator().manual_seed(1), torch.device("cpu"))
    noise_b = RandomNoise(torch.Generator().manual_seed(1), torch.device("cpu"))
    with torch.no_grad():
        loss, nll, kl = module.loss(X, noise_a, beta=0.5, free_bits=0.3)
        mean, log_var = module.encode(X)
        kl_dims = torch.distributions.kl_divergence(
            torch.distributions.Normal(mean, torch.exp(0.5 * log_var)),
            torch.distributions.Normal(0.0, 1.0),
        )
        nll_ref = module.loss(X, noise_b)[1]
    expected = nll_ref.mean() + 0.5 * kl_dims.mean(0).clamp(min=0.3).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(kl, kl_dims.sum(-1))


def test_iwae_objective_and_its_constraints(digits_small):
    X, _ = digits_small
    vae = VAETransformer(max_iter=1, n_importance=5, learning_rate=1e-12, random_state=0)
    vae.fit(X)
    h = vae.history_[-1]
    assert h["reconstruction"] is None and h["kl"] is None
    # With the weights frozen, the training loss is the negative IWAE bound, k = 5.
    bound = vae.score_samples(X, method="iwae", n_importance=5).mean()
    assert -h["loss"] == pytest.approx(bound, abs=0.5)
    VAETransformer(max_iter=2, n_importance=5, random_state=0).fit(X)
    with pytest.raises(ValueError, match="IWAE bound, which has no KL weight"):
        VAETransformer(n_importance=5, beta=2.0).fit(X)


def _exact_log_px(vae, X):
    """log p(x) by quadrature over a 1-D latent."""
    grid = torch.linspace(-8, 8, 4001)
    dz = grid[1] - grid[0]
    with torch.no_grad():
        params = vae.module_.decode(grid[:, None])
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(grid)
        out = []
        for x in torch.as_tensor(X):
            log_lik = vae.module_.likelihood.log_prob(x.expand(len(grid), -1), params)
            out.append(torch.logsumexp(log_lik + log_prior, 0) + torch.log(dz))
    return torch.stack(out).numpy()


@pytest.fixture(scope="module")
def one_d_model(digits):
    X, _ = digits
    vae = VAETransformer(n_components=1, max_iter=10, batch_size=32, random_state=0).fit(X)
    return vae, X[:40]


def test_iwae_log_likelihood_approaches_the_exact_value(one_d_model):
    vae, X = one_d_model
    exact = _exact_log_px(vae, X)
    elbo = vae.score_samples(X)
    iwae = vae.log_likelihood(X, n_importance=5000)
    assert np.all(elbo <= exact + 1e-3)
    # The IWAE estimate's Monte Carlo error depends on the trained model, which
    # another CPU's rounding changes: 0.03-0.12 nats at most over these rows
    # for seeds 0, 1, 2 (the quadrature is exact to 2e-6), against a mean
    # ELBO gap of 0.23-0.34 nats.
    assert np.all(iwae <= exact + 0.2)
    assert np.abs(iwae - exact).max() < 0.2
    assert np.mean(exact - iwae) < 0.25 * np.mean(exact - elbo)


def test_iwae_in_chunks_of_draws(one_d_model, monkeypatch):
    """k larger than a chunk: a running log-sum-exp over chunks gives the same quality."""
    vae, X = one_d_model
    monkeypatch.setattr(estimator_module, "_INFERENCE_ROWS", 64)
    iwae = vae.score_samples(X, method="iwae", n_importance=1000)
    # 0.02-0.14 nats for seeds 0, 1, 2: room for another CPU's trained model.
    assert np.abs(iwae - _exact_log_px(vae, X)).max() < 0.3
    with pytest.raises(ValueError, match="method must be 'elbo' or 'iwae'"):
        vae.score_samples(X, method="exact")
    with pytest.raises(ValueError, match="n_importance must be a positive integer"):
        vae.score_samples(X, n_importance=0)


def test_kl_per_dimension_against_torch(digits_small):
    X, _ = digits_small
    vae = VAETransformer(n_components=3, max_iter=3, random_state=0).fit(X)
    with torch.no_grad():
        mean, log_var = vae.module_.encode(torch.as_tensor(X))
        expected = torch.distributions.kl_divergence(
            torch.distributions.Normal(mean, torch.exp(0.5 * log_var)),
            torch.distributions.Normal(0.0, 1.0),
        ).mean(0)
    np.testing.assert_allclose(vae.kl_per_dimension(X), expected.numpy(), rtol=1e-5)


def test_active_units_detects_a_dead_dimension(digits):
    X, _ = digits
    vae = VAETransformer(n_components=3, max_iter=5, batch_size=32, random_state=0).fit(X)
    assert vae.active_units(X).all()
    with torch.no_grad():
        head = vae.module_.net.encoder[-1]
        head.weight[0].zero_()  # the mean of dimension 0 no longer depends on x
    active = vae.active_units(X)
    assert active.tolist() == [False, True, True]
    assert vae.active_units(X, threshold=np.inf).sum() == 0


def test_epoch_sums_elbo_form_equals_the_running_sums(monkeypatch):
    """The one-op-per-step ELBO record gives the same epoch sums as the general path."""
    from skvae._step import EpochSums

    monkeypatch.setattr(EpochSums, "COLLAPSE", 3)  # collapse the records mid-epoch too
    gen = torch.Generator().manual_seed(0)
    fast, general = EpochSums(0.3, elbo_form=True), EpochSums(0.3, elbo_form=False)
    for rows in (5, 5, 5, 5, 4):
        nll, kl = torch.rand(rows, generator=gen) * 100, torch.rand(rows, generator=gen)
        out = ((nll + 0.3 * kl).mean(), nll, kl)
        fast.add(out, rows)
        general.add(out, rows)
    assert len(fast._nll) < 5 and general._nll is None  # collapsed mid-epoch; not kept
    # The ELBO form sums nll and kl on the device and forms the loss on the host.
    n = 24
    fast_means = fast.means((fast.totals() / n).tolist())
    general_means = general.means((general.totals() / n).tolist())
    np.testing.assert_allclose(fast_means[:3], general_means[:3], rtol=1e-6)
    assert fast_means[3] == general_means[3] == {}
    # With extra terms the general path is taken.
    extra = EpochSums(1.0, elbo_form=True)
    extra.add((torch.tensor(2.0), torch.ones(2), torch.ones(2), {"ce": torch.ones(2)}), 2)
    assert extra.extra_names == ("ce",) and extra.totals().tolist() == [4.0, 2.0, 2.0, 2.0]
