"""Bad input: a clear ValueError, and the estimator left exactly as it was."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

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


def _at(X, value, index=5):
    return np.where(np.arange(X.size).reshape(X.shape) == index, value, X)


def _mixed_frame(X):
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    frame["label"] = np.where(X[:, 10] > 0.5, "ink", "paper")
    return frame


def _categorical_frame(X):
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    frame["kind"] = pd.Categorical(np.where(X[:, 10] > 0.5, "ink", "paper"))
    return frame


_NUMERIC_DATA = "needs numeric data.*OneHotEncoder"
BAD_FIT_INPUTS = {
    "nan": (lambda X: _at(X, np.nan), "NaN"),
    "inf": (lambda X: _at(X, np.inf), "infinity"),
    "-inf": (lambda X: _at(X, -np.inf), "infinity"),
    "1-D": (lambda X: X[:, 0], "Expected 2D array, got 1D array"),
    "3-D": (lambda X: X[:, :, None], "Found array with dim 3"),
    "empty": (lambda X: X[:0], "0 sample"),
    "strings": (lambda X: np.array([["a", "b"], ["c", "d"]]), "could not convert|dtype"),
    "object column of strings": (
        lambda X: np.column_stack([X[:, :3].astype(object), np.full(len(X), "x", dtype=object)]),
        _NUMERIC_DATA,
    ),
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


def test_a_frame_with_a_date_column_is_a_clear_error_and_changes_nothing(fitted):
    # Frames with string and categorical columns fit as tables (tests/test_tables.py);
    # a date column has no likelihood: the error says how to convert it.
    vae, X = fitted
    frame = _mixed_frame(X).assign(when=pd.Timestamp("2024-01-01"))
    before = _snapshot(vae)
    with pytest.raises((TypeError, ValueError), match="datetime64"):
        vae.fit(frame)
    _assert_unchanged(vae, before)
    # partial_fit continues the model fitted on an array: the frame must be numeric.
    with pytest.raises(ValueError, match=_NUMERIC_DATA):
        vae.partial_fit(frame)
    _assert_unchanged(vae, before)
    fresh = VAETransformer()
    with pytest.raises((TypeError, ValueError), match="datetime64"):
        fresh.fit(frame)
    assert vars(fresh) == vars(VAETransformer())


def test_a_fitted_table_refuses_an_array_of_another_width(fitted):
    vae, X = fitted
    table = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(_categorical_frame(X))
    with pytest.raises(ValueError, match="X has 3 features, but VAETransformer is expecting 4"):
        table.transform(X[:, :3])


def test_wrong_number_of_features(fitted):
    vae, X = fitted
    before = _snapshot(vae)
    for method in (vae.transform, vae.score_samples, vae.score, vae.kl_per_dimension):
        with pytest.raises(ValueError, match="X has 10 features, but VAETransformer is expecting 64"):
            method(X[:, :10])
    for width in (1, 5):
        with pytest.raises(ValueError, match="expects latent codes with 2 columns.*got " + str(width)):
            vae.inverse_transform(np.zeros((3, width)))
    with pytest.raises(ValueError, match="Expected 2D array"):
        vae.inverse_transform(np.zeros(2))
    _assert_unchanged(vae, before)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda X: _at(X[:5], np.nan), "NaN"),
        (lambda X: _at(X[:5], np.inf), "infinity"),
        (lambda X: X[:5, :, None], "Found array with dim 3"),
        (lambda X: X[:0], "0 sample"),
        (lambda X: X[0], "Expected 2D array"),
        (lambda X: np.full((2, 64), "a"), "could not convert|needs numeric data"),
    ],
)
def test_bad_input_after_fit_is_a_clear_error(fitted, make, message):
    vae, X = fitted
    before = _snapshot(vae)
    for method in (vae.transform, vae.score_samples):
        with pytest.raises(ValueError, match=message):
            method(make(X))
    _assert_unchanged(vae, before)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_is_a_type_error_that_says_to_densify(fitted, fmt):
    vae, X = fitted
    before = _snapshot(vae)
    sparse = sp.random(10, 64, density=0.2, format=fmt, random_state=0)
    densify = r"dense data is required. Use '.toarray\(\)'"
    for call in (vae.fit, vae.partial_fit, vae.transform, vae.score_samples):
        with pytest.raises(TypeError, match=densify):
            call(sparse)
    with pytest.raises(TypeError, match=densify):
        vae.inverse_transform(sp.random(10, 2, density=0.5, format=fmt, random_state=0))
    _assert_unchanged(vae, before)
    fresh = VAETransformer()
    with pytest.raises(TypeError, match=densify):
        fresh.fit(sparse)
    assert vars(fresh) == vars(VAETransformer())


def test_pandas_frame_of_mixed_numeric_dtypes_is_fine(digits_small):
    X, _ = digits_small
    frame = pd.DataFrame({"a": X[:, 10].astype(np.float64), "b": (X[:, 20] * 16).astype(int)})
    frame["c"] = X[:, 30] > 0.5
    vae = VAETransformer(max_iter=2, random_state=0).fit(frame)
    assert list(vae.feature_names_in_) == ["a", "b", "c"]
    Z = vae.transform(frame)
    assert Z.shape == (len(frame), 2) and np.all(np.isfinite(Z))


def test_batch_size_larger_than_the_data_is_clipped(digits_small):
    """Documented: batch_size is clipped to the number of samples."""
    X, _ = digits_small
    X = X[:50]
    big = VAETransformer(max_iter=3, batch_size=10_000, random_state=0).fit(X)
    exact = VAETransformer(max_iter=3, batch_size=50, random_state=0).fit(X)
    np.testing.assert_array_equal(big.transform(X), exact.transform(X))
    assert big.batch_size == 10_000  # the parameter itself is left alone


def test_a_single_sample(digits_small):
    X, _ = digits_small
    vae = VAETransformer(max_iter=3, random_state=0).fit(X[:1])
    Z = vae.transform(X[:3])
    assert Z.shape == (3, 2) and np.all(np.isfinite(Z)) and np.isfinite(vae.score(X[:1]))
    before = _snapshot(vae)
    vae.set_params(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping needs at least 2 samples.*got 1 sample"):
        vae.fit(X[:1])
    vae.set_params(early_stopping=False)
    _assert_unchanged(vae, before)


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
    "likelihood, data, message",
    [
        ("poisson", lambda X: X * 16 - 1, "'poisson' likelihood needs non-negative integer counts.*negative"),
        ("poisson", lambda X: X, "'poisson' likelihood needs non-negative integer counts.*non-integer"),
        ("negative_binomial", lambda X: X * 16 - 1, "'negative_binomial' likelihood needs non-negative"),
        ("bernoulli", lambda X: X - 0.5, "'bernoulli'.*MinMaxScaler"),
    ],
)
def test_data_outside_the_likelihood_domain(digits_small, likelihood, data, message):
    X, _ = digits_small
    counts = np.rint(X * 16)
    vae = VAETransformer(likelihood=likelihood, max_iter=1, random_state=0)
    vae.fit(counts if likelihood != "bernoulli" else X)
    before = _snapshot(vae)
    for call in (vae.fit, vae.partial_fit):
        with pytest.raises(ValueError, match=message):
            call(data(X))
    _assert_unchanged(vae, before)
    fresh = VAETransformer(likelihood=likelihood)
    with pytest.raises(ValueError, match=message):
        fresh.fit(data(X))
    assert vars(fresh) == vars(VAETransformer(likelihood=likelihood))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_components": 0}, "'n_components' parameter of VAETransformer must be an int in the range"),
        ({"n_components": 1.5}, "'n_components' parameter"),
        ({"n_components": "2"}, r"'n_components' parameter.*must be an int in the range \[1, inf\). Got '2'"),
        ({"n_components": True}, r"'n_components' parameter.*must be an int in the range \[1, inf\). Got True"),
        ({"max_iter": np.bool_(True)}, "'max_iter' parameter.*Got np.True_|'max_iter' parameter.*Got True"),
        ({"learning_rate": True}, "'learning_rate' parameter.*must be a float in the range"),
        ({"clip_grad_norm": False}, "'clip_grad_norm' parameter.*must be a float in the range.*or None"),
        ({"batch_size": "10"}, "'batch_size' parameter of VAETransformer must be an int"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"early_stopping": "yes"}, "'early_stopping' parameter.*must be an instance of 'bool'"),
        ({"tol": None}, "'tol' parameter.*must be a float"),
        ({"random_state": "abc"}, "'random_state' parameter.*must be an int"),
        ({"on_divergence": "ignore"}, r"'on_divergence' parameter.*must be a str among \{'r"),
        ({"checkpoint_path": 3}, "'checkpoint_path' parameter.*must be an instance of 'str'.*PathLike.*or None"),
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
def test_bad_parameters_are_named(digits_small, fitted, params, message):
    X, _ = digits_small
    vae = VAETransformer(**params)
    with pytest.raises(ValueError, match=message):
        vae.fit(X)
    assert not hasattr(vae, "module_")
    # A fitted estimator keeps its model.
    vae, X = fitted
    before = _snapshot(vae)
    original = {name: getattr(vae, name) for name in params}
    vae.set_params(**params)
    with pytest.raises(ValueError, match=message):
        vae.fit(X)
    vae.set_params(**original)
    _assert_unchanged(vae, before)


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


# --------------------------------------------------------- property-based battery
_DTYPES = [np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_]


@st.composite
def _datasets(draw):
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    shape = (draw(st.integers(1, 30)), draw(st.integers(1, 5)))
    if dtype.kind == "b":
        elements = st.booleans()
    elif dtype.kind == "i":
        elements = st.integers(-100, 100)
    else:
        elements = st.floats(-100, 100, width=8 * dtype.itemsize)
    X = draw(hnp.arrays(dtype, shape, elements=elements))
    if dtype.kind == "f" and draw(st.integers(0, 3)) == 0:  # NaN sometimes
        X[draw(st.integers(0, shape[0] - 1)), draw(st.integers(0, shape[1] - 1))] = np.nan
    return X


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(X=_datasets())
def test_fit_succeeds_or_fails_cleanly_on_any_shape_and_dtype(digits_small, X):
    params = dict(n_components=2, max_iter=2, batch_size=8, random_state=0, device="cpu")
    vae = VAETransformer(**params)
    fitted = VAETransformer(**params).fit(digits_small[0][:20, :3])
    before = _snapshot(fitted)
    has_nan = bool(np.isnan(X.astype(np.float64)).any())
    try:
        vae.fit(X)
    except (ValueError, TypeError) as exc:
        assert has_nan, f"fit refused clean data: {exc}"
        assert vars(vae) == vars(VAETransformer(**params))
        with pytest.raises(type(exc)):
            fitted.fit(X)
        _assert_unchanged(fitted, before)
        return
    assert not has_nan
    Z = vae.transform(X)
    assert Z.shape == (X.shape[0], 2) and np.all(np.isfinite(Z))
    assert Z.dtype == (np.float64 if X.dtype == np.float64 else np.float32)
    assert vae.n_features_in_ == X.shape[1] and vae.n_iter_ == 2
