"""Missing values: VAETransformer(missing_values=np.nan) and its imputation maths."""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError
from torch import distributions as D

import skvae
from skvae import AuxiliaryClassifierVAE, ConditionalVAETransformer, VAETransformer
from skvae._estimator import _conditional_mean, _merge_weighted_means
from skvae._model import CommonNoise, ObservedLikelihood
from skvae.base import Likelihood, LikelihoodModule
from skvae_plugins.bernoulli import BernoulliModule
from skvae_plugins.mlp import MLP

RTOL, ATOL = 1e-4, 1e-5


def digits(n=200):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16, y[:n]


def with_missing(X, fraction=0.3, seed=0):
    """X with ``fraction`` of its entries set to NaN completely at random."""
    X = X.copy()
    X[np.random.RandomState(seed).rand(*X.shape) < fraction] = np.nan
    return X


def small(**params):
    params = {"n_components": 2, "max_iter": 2, "random_state": 0, "missing_values": np.nan,
              "architecture": MLP(hidden_sizes=(32,)), **params}
    return VAETransformer(**params)


@pytest.fixture(scope="module")
def fitted():
    X, _ = digits()
    Xm = with_missing(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return small(max_iter=3).fit(Xm), Xm


# ------------------------------------------------------------ the objective
def test_reconstruction_is_the_log_prob_of_the_observed_entries():
    """-log p(x|z) of a row with missing entries is the Gaussian log-density of
    its observed sub-vector alone, at the same z."""
    X = with_missing(np.random.RandomState(1).randn(40, 5), 0.4, seed=2)
    X[0] = [np.nan, 1.0, np.nan, -2.0, 0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = small(likelihood="gaussian").fit(X)
    module = vae.module_.eval()
    x = torch.tensor(X, dtype=torch.float32)
    with torch.no_grad():
        nll, _ = module.terms(x, CommonNoise(1, torch.device("cpu")))
        mean, log_var = module.encode(x)
        eps = CommonNoise(1, torch.device("cpu"))(mean.shape)
        loc, log_scale = module.likelihood.scale.split(module.decode(mean + (0.5 * log_var).exp() * eps))
    for i in range(X.shape[0]):
        seen = ~np.isnan(X[i])
        expected = D.Normal(loc[i, seen], log_scale[seen].exp()).log_prob(x[i, seen]).sum()
        torch.testing.assert_close(nll[i], -expected, rtol=RTOL, atol=ATOL)


def test_the_value_in_a_missing_slot_changes_nothing():
    """The likelihood restricted to the observed entries ignores what the other
    slots hold (a huge value), and the encoder reads the mask: a missing entry
    is not a zero."""
    module = BernoulliModule()
    observed = torch.tensor([[True, False, True]])
    params = torch.randn(1, 3, generator=torch.Generator().manual_seed(0))
    a = ObservedLikelihood(module, observed).log_prob(torch.tensor([[1.0, 0.0, 0.0]]), params)
    b = ObservedLikelihood(module, observed).log_prob(torch.tensor([[1.0, 1e6, 0.0]]), params)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, module.log_prob_features(torch.tensor([[1.0, 0.0, 0.0]]), params)[:, [0, 2]].sum(-1))


def test_the_encoder_sees_the_mask(fitted):
    vae, Xm = fitted
    assert vae.module_.encoder_mask
    row = np.nan_to_num(Xm[:1], nan=0.5)
    row_missing = row.copy()
    row_missing[0, 10] = np.nan
    row_zero = row.copy()
    row_zero[0, 10] = 0.0
    assert not np.allclose(vae.transform(row_missing), vae.transform(row_zero), rtol=RTOL, atol=ATOL)
    assert not np.allclose(vae.score_samples(row_missing), vae.score_samples(row_zero))


def test_missing_values_none_still_rejects_nan_and_inf_stays_an_error():
    X, _ = digits(60)
    Xm = with_missing(X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        VAETransformer(max_iter=1).fit(Xm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(max_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        vae.transform(Xm)
    X_inf = Xm.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        small().fit(X_inf)
    assert not vae.__sklearn_tags__().input_tags.allow_nan
    assert small().__sklearn_tags__().input_tags.allow_nan


@pytest.mark.parametrize("value", [0, -1.0, 99])
def test_missing_values_other_than_nan_are_refused(value):
    X, _ = digits(30)
    with pytest.raises(ValueError, match=r"missing_values must be None .* or np.nan"):
        small(missing_values=value).fit(X)
    with pytest.raises(InvalidParameterError, match="missing_values"):
        small(missing_values="NaN").fit(X)


def test_domain_checks_ignore_nan_only():
    X, _ = digits(60)
    Xm = with_missing(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = small().fit(Xm)  # likelihood="auto" reads the observed values
    assert vae.likelihood_.name == "bernoulli"
    bad = Xm.copy()
    bad[1, np.flatnonzero(np.isfinite(bad[1]))[0]] = 2.0
    with pytest.raises(ValueError, match=r"'bernoulli' likelihood needs data in \[0, 1\]"):
        vae.transform(bad)
    with pytest.raises(ValueError, match=r"'bernoulli' likelihood needs data in \[0, 1\]"):
        small(likelihood="bernoulli").fit(bad)


def test_empty_features_are_refused_and_empty_rows_are_kept():
    X, _ = digits(60)
    Xm = with_missing(X)
    Xm[:, [3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"2 feature\(s\) of X have no observed value.*3, 7"):
        small().fit(Xm)
    Xm = with_missing(X)
    Xm[0] = np.nan  # a row with nothing observed: trains and scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = small().fit(Xm)
    assert np.isfinite(vae.score_samples(Xm[:2])).all()
    completed = vae._complete(Xm[:2], n_importance=8)
    assert np.isfinite(completed).all()


# ---------------------------------------------------------- training works
def test_training_on_mcar_digits_converges_and_imputes_better_than_the_mean():
    X, _ = digits(400)
    Xm = with_missing(X, 0.3)
    missing = np.isnan(Xm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(
            n_components=8, architecture=MLP(hidden_sizes=(128,)), max_iter=40, batch_size=32,
            learning_rate=3e-3, random_state=0, missing_values=np.nan,
        ).fit(Xm)
    losses = [r["loss"] for r in vae.history_]
    assert losses[-1] < losses[0] - 5
    column_mean = np.where(missing, np.nanmean(Xm, axis=0), Xm)
    completed = vae._complete(Xm, n_importance=50)
    rmse = np.sqrt(np.mean((completed[missing] - X[missing]) ** 2))
    rmse_mean = np.sqrt(np.mean((column_mean[missing] - X[missing]) ** 2))
    assert rmse < 0.95 * rmse_mean
    np.testing.assert_array_equal(completed[~missing], Xm[~missing])


def test_miwae_training_with_importance_samples():
    X, _ = digits(200)
    Xm = with_missing(X, 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = small(n_importance=5, max_iter=4).fit(Xm)
    losses = [r["loss"] for r in vae.history_]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert np.isfinite(vae.log_likelihood(Xm[:5], n_importance=20)).all()


def test_every_method_takes_missing_values(fitted):
    vae, Xm = fitted
    assert vae.transform(Xm).shape == (Xm.shape[0], 2)
    assert np.isfinite(vae.score_samples(Xm)).all()
    assert np.isfinite(vae.score_samples(Xm[:5], method="iwae", n_importance=10)).all()
    assert np.isfinite(vae.score(Xm))
    assert vae.kl_per_dimension(Xm).shape == (2,)
    assert vae.active_units(Xm).shape == (2,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae2 = small(max_iter=1).partial_fit(Xm).partial_fit(Xm)
    assert vae2.n_iter_ == 2


def test_warm_start_refuses_a_changed_missing_values(fitted):
    vae, Xm = fitted
    X = np.nan_to_num(Xm)
    vae = pickle.loads(pickle.dumps(vae)).set_params(warm_start=True, missing_values=None)
    with pytest.raises(ValueError, match="missing_values=None differs from the fitted model's"):
        vae.fit(X)


def test_streamed_training_equals_in_memory(tmp_path):
    X, _ = digits(120)
    Xm = with_missing(X).astype(np.float32)
    path = os.path.join(tmp_path, "x.npy")
    np.save(path, Xm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = small().fit(np.load(path, mmap_mode="r"))
        in_memory = small().fit(Xm)
    np.testing.assert_allclose(
        streamed.transform(np.load(path, mmap_mode="r")), in_memory.transform(Xm),
        rtol=RTOL, atol=ATOL,
    )
    Xm[:, 5] = np.nan
    np.save(path, Xm)
    with pytest.raises(ValueError, match="no observed value"):
        small().fit(np.load(path, mmap_mode="r"))


def test_a_likelihood_without_log_prob_features_is_refused_by_name():
    class SumOnlyModule(LikelihoodModule):
        def log_prob(self, x, params):
            return -((x - params) ** 2).sum(-1)

        def mean(self, params):
            return params

    class SumOnly(Likelihood):
        name = "sum_only"

        def build(self, n_features):
            return SumOnlyModule()

    X, _ = digits(40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VAETransformer(likelihood=SumOnly(), max_iter=1).fit(X)  # fine without missing values
    with pytest.raises(ValueError, match=r"Likelihood 'sum_only'.*log_prob_features"):
        small(likelihood=SumOnly()).fit(with_missing(X))


# ---------------------------------------------------- labelled estimators
def test_labelled_estimators_take_missing_values():
    X, y = digits(150)
    Xm = with_missing(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cvae = ConditionalVAETransformer(
            n_components=2, max_iter=2, random_state=0, missing_values=np.nan
        ).fit(Xm, y)
        acvae = AuxiliaryClassifierVAE(
            n_components=2, max_iter=2, random_state=0, missing_values=np.nan
        ).fit(Xm, y)
    assert np.isfinite(cvae.score_samples(Xm, y)).all()
    assert cvae.transform(Xm, y).shape == (150, 2)
    assert np.isfinite(cvae._complete(Xm[:5], n_importance=8)).all()
    assert np.isfinite(acvae.score_samples(Xm)).all()
    assert np.isfinite(acvae.predict_proba(Xm)).all()
    for estimator in (cvae, acvae):
        copy = pickle.loads(pickle.dumps(estimator))
        np.testing.assert_allclose(copy.score_samples(Xm), estimator.score_samples(Xm),
                                   rtol=RTOL, atol=ATOL)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        ConditionalVAETransformer(max_iter=1).fit(Xm, y)


# ----------------------------------------------------- model files, pickles
def test_save_load_and_pickle_round_trips(fitted, tmp_path):
    vae, Xm = fitted
    path = os.path.join(tmp_path, "model.skvae")
    skvae.save(vae, path)
    for copy in (skvae.load(path), pickle.loads(pickle.dumps(vae))):
        assert np.isnan(copy.missing_values) and copy.module_.encoder_mask
        np.testing.assert_allclose(copy.transform(Xm), vae.transform(Xm), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(copy.score_samples(Xm), vae.score_samples(Xm),
                                   rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(copy._complete(Xm[:10], n_importance=8),
                                   vae._complete(Xm[:10], n_importance=8), rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------- imputation
def test_complete_keeps_observed_entries_and_is_deterministic(fitted):
    vae, Xm = fitted
    missing = np.isnan(Xm)
    completed = vae._complete(Xm, n_importance=16)
    assert completed.dtype == Xm.dtype and not np.isnan(completed).any()
    np.testing.assert_array_equal(completed[~missing], Xm[~missing])
    assert ((completed >= 0) & (completed <= 1)).all()  # Bernoulli means
    np.testing.assert_allclose(vae._complete(Xm[5:9], n_importance=16), completed[5:9],
                               rtol=RTOL, atol=ATOL)  # a row's imputation ignores the others
    a = vae._complete(Xm, n_importance=16, sample=True, random_state=3)
    b = vae._complete(Xm, n_importance=16, sample=True, random_state=3)
    c = vae._complete(Xm, n_importance=16, sample=True, random_state=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a[~missing], Xm[~missing])
    assert set(np.unique(a[missing])) <= {0.0, 1.0}  # draws of the Bernoulli
    means = vae._complete(Xm, n_importance=16, sample=True, random_state=3, decode="mean")
    assert not np.isin(means[missing], [0.0, 1.0]).all()


def test_conditional_mean_is_the_self_normalised_weighted_mean(fitted):
    """sum_k w_k mean(p(x | z_k)) with w = softmax(log w) over the row's k draws."""
    vae, Xm = fitted
    module = vae.module_.eval()
    x = torch.tensor(Xm[:6], dtype=torch.float32)
    device = torch.device("cpu")
    with torch.no_grad():
        got = _conditional_mean(module, x, device=device, k=12, k_chunk=12)
        log_w, params = module.weighted_draws(x, CommonNoise(12, device), copies=12)
        w = torch.softmax(log_w.view(6, 12), dim=1)
        expected = (w.unsqueeze(-1) * module.likelihood.mean(params).view(6, 12, -1)).sum(1)
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL)
    # log w: log p(x_obs | z) + log p(z) - log q(z | x), as the IWAE bound uses
    bound = torch.logsumexp(log_w.view(6, 12), 1) - np.log(12)
    np.testing.assert_allclose(
        bound.numpy(), vae.score_samples(Xm[:6], method="iwae", n_importance=12),
        rtol=RTOL, atol=ATOL,
    )


def test_chunks_of_draws_merge_exactly():
    """The running merge of chunks equals the weighted mean over all draws."""
    rng = torch.Generator().manual_seed(0)
    log_w = 5 * torch.randn(4, 9, generator=rng, dtype=torch.float64)
    x = torch.randn(4, 9, 3, generator=rng, dtype=torch.float64)

    def part(s):
        return torch.logsumexp(log_w[:, s], 1), (torch.softmax(log_w[:, s], 1).unsqueeze(-1) * x[:, s]).sum(1)

    merged = part(slice(0, 2))
    for s in (slice(2, 5), slice(5, 9)):
        merged = _merge_weighted_means(merged, part(s))
    whole = part(slice(0, 9))
    torch.testing.assert_close(merged[0], whole[0])
    torch.testing.assert_close(merged[1], whole[1])


def test_complete_needs_a_model_fitted_for_missing_values():
    X, _ = digits(40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(max_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="fitted with missing_values=np.nan"):
        vae._complete(X)
