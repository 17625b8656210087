"""Bad input: a clear ValueError, and the estimator left exactly as it was."""

import numpy as np
import pytest
import torch

from skvae import VAETransformer


def _snapshot(vae):
    state = {k: v for k, v in vars(vae).items() if k not in ("module_", "optimizer_", "_generator")}
    weights = None
    if hasattr(vae, "module_"):
        weights = {k: v.clone() for k, v in vae.module_.state_dict().items()}
    return state, weights


def _assert_unchanged(vae, snapshot):
    state, weights = _snapshot(vae)
    assert state.keys() == snapshot[0].keys()
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, snapshot[0][key])
        else:
            assert value == snapshot[0][key], key
    if weights is not None:
        for key, value in weights.items():
            assert torch.equal(value, snapshot[1][key]), key


@pytest.fixture
def fitted(digits_small):
    X, _ = digits_small
    return VAETransformer(max_iter=2, random_state=0).fit(X), X


BAD_FIT_INPUTS = {
    "nan": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), "NaN"),
    "inf": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), "infinity"),
    "1-D": (lambda X: X[:, 0], "Expected 2D array, got 1D array"),
    "empty": (lambda X: X[:0], "0 sample"),
    "strings": (lambda X: np.array([["a", "b"], ["c", "d"]]), "could not convert|dtype"),
    "no features": (lambda X: X[:, :0], "0 feature"),
}


@pytest.mark.parametrize("case", sorted(BAD_FIT_INPUTS))
def test_bad_fit_input_is_a_clear_error_and_changes_nothing(fitted, case):
    vae, X = fitted
    make, message = BAD_FIT_INPUTS[case]
    before = _snapshot(vae)
    with pytest.raises(ValueError, match=message):
        vae.fit(make(X))
    _assert_unchanged(vae, before)
    with pytest.raises(ValueError, match=message):
        vae.partial_fit(make(X))
    _assert_unchanged(vae, before)
    # An unfitted estimator stays unfitted.
    fresh = VAETransformer()
    with pytest.raises(ValueError, match=message):
        fresh.fit(make(X))
    assert vars(fresh) == vars(VAETransformer())


def test_wrong_number_of_features(fitted):
    vae, X = fitted
    for method in (vae.transform, vae.score_samples, vae.score):
        with pytest.raises(ValueError, match="X has 10 features, but VAETransformer is expecting 64"):
            method(X[:, :10])
    with pytest.raises(ValueError, match="expects latent codes with 2 columns"):
        vae.inverse_transform(np.zeros((3, 5)))


def test_bernoulli_outside_unit_interval_names_the_fix(fitted):
    vae, X = fitted
    before = _snapshot(vae)
    with pytest.raises(ValueError) as excinfo:
        VAETransformer(likelihood="bernoulli").fit(X * 16)
    message = str(excinfo.value)
    assert "'bernoulli'" in message and "MinMaxScaler" in message and "gaussian" in message
    with pytest.raises(ValueError, match="'bernoulli'"):
        vae.partial_fit(X - 0.5)  # the fitted likelihood checks new data too
    _assert_unchanged(vae, before)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_components": 0}, "'n_components' parameter of VAETransformer must be an int in the range"),
        ({"n_components": 1.5}, "'n_components' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"learning_rate": -1.0}, "'learning_rate' parameter"),
        ({"optimizer": "adamm"}, "'optimizer' parameter of VAETransformer must be a str among"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"kl_warmup": 2.0}, "'kl_warmup' parameter"),
        ({"device": "gpu9"}, "device='gpu9' is not a torch device"),
        ({"architecture": 3}, "'architecture' parameter"),
        ({"architecture": "nope"}, "Unknown architecture 'nope'"),
    ],
)
def test_bad_parameters_are_named(digits_small, params, message):
    X, _ = digits_small
    vae = VAETransformer(**params)
    with pytest.raises(ValueError, match=message):
        vae.fit(X)
    assert not hasattr(vae, "module_")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(digits_small):
    with pytest.raises(ValueError, match="CUDA is not available.*device='cpu'"):
        VAETransformer(device="cuda").fit(digits_small[0])


def test_plugin_parameter_errors_are_clear(digits_small):
    X, _ = digits_small
    with pytest.raises(ValueError, match=r"MLP hidden_sizes must be a tuple of positive integers"):
        VAETransformer(max_iter=1).set_params(architecture__hidden_sizes=(0,)).fit(X)
    with pytest.raises(ValueError, match="MLP activation must be one of"):
        VAETransformer(max_iter=1).set_params(architecture__activation="swish").fit(X)
    with pytest.raises(ValueError, match="Gaussian scale must be a positive number or 'learned'"):
        VAETransformer(likelihood="gaussian").set_params(likelihood__scale=-1).fit(X)


def test_divergence_is_reported_and_leaves_the_model_as_it_was(fitted):
    vae, X = fitted
    before = _snapshot(vae)
    vae.set_params(learning_rate=1e30, warm_start=True)
    with pytest.raises(FloatingPointError, match="epoch 3.*Lower learning_rate"):
        vae.fit(X)
    vae.set_params(learning_rate=1e-3, warm_start=False)
    _assert_unchanged(vae, before)
    assert not vae.module_.training  # back in eval mode, as after a good fit
    assert np.all(np.isfinite(vae.transform(X)))


def test_methods_before_fit_raise_not_fitted():
    from sklearn.exceptions import NotFittedError

    vae = VAETransformer()
    for call in (
        lambda: vae.transform(np.zeros((2, 3))),
        lambda: vae.inverse_transform(np.zeros((2, 2))),
        lambda: vae.score_samples(np.zeros((2, 3))),
        lambda: vae.sample(2),
    ):
        with pytest.raises(NotFittedError):
            call()
