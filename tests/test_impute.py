"""VAEImputer: sklearn.impute's conventions, imputation quality, multiple imputation, files."""

import numpy as np
import pytest
from _kernels import expected_order_failures
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import skvae
from skvae import VAEImputer
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.mlp import MLP

RTOL, ATOL = 1e-4, 1e-5


@parametrize_with_checks(
    [
        VAEImputer(max_iter=3, n_impute_draws=16),
        VAEImputer(
            n_components=3,
            architecture=MLP(hidden_sizes=(16,), activation="tanh"),
            likelihood=Gaussian(scale=0.5),
            n_importance=3,
            max_iter=3,
            add_indicator=True,
            keep_empty_features=True,
            n_impute_draws=8,
        ),
    ],
    expected_failed_checks=expected_order_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _small(**params):
    defaults = dict(
        n_components=4, architecture=MLP(hidden_sizes=(64,)), max_iter=30,
        batch_size=64, n_impute_draws=64, random_state=0,
    )
    return VAEImputer(**{**defaults, **params})


def _remove(X, rate, seed):
    """X (float64) with each entry set to NaN with probability ``rate``; and the mask."""
    mask = np.random.RandomState(seed).rand(*X.shape) < rate
    X_missing = np.array(X, dtype=np.float64)
    X_missing[mask] = np.nan
    return X_missing, mask


@pytest.fixture(scope="module")
def incomplete(digits):
    """400 training and 200 test rows of digits with 30 % of the entries missing."""
    X, y = digits
    X = X.astype(np.float64)
    X_train, mask_train = _remove(X[:400], 0.3, 0)
    X_test, mask_test = _remove(X[400:600], 0.3, 1)
    return X[:400], X_train, mask_train, X[400:600], X_test, mask_test, y


@pytest.fixture(scope="module")
def fitted(incomplete):
    _, X_train, *_ = incomplete
    # The MIWAE bound (k = 5) and a brisk learning rate: out of the mean-image
    # plateau within 30 epochs of 400 rows.
    return _small(batch_size=32, learning_rate=3e-3, n_importance=5).fit(X_train)


def test_observed_entries_unchanged_and_every_missing_one_filled(fitted, incomplete):
    _, _, _, _, X_test, mask, _ = incomplete
    completed = fitted.transform(X_test)
    assert completed.shape == X_test.shape and completed.dtype == np.float64
    assert not np.isnan(completed).any()
    np.testing.assert_array_equal(completed[~mask], X_test[~mask])
    # A Bernoulli model's conditional means lie in [0, 1].
    assert completed[mask].min() >= 0 and completed[mask].max() <= 1


def test_beats_mean_imputation_on_held_out_rows(fitted, incomplete):
    X_train_true, X_train, mask_train, X_true, X_test, mask, _ = incomplete
    vae_error = np.sqrt(np.mean((fitted.transform(X_test)[mask] - X_true[mask]) ** 2))
    mean = SimpleImputer().fit(X_train).transform(X_test)
    mean_error = np.sqrt(np.mean((mean[mask] - X_true[mask]) ** 2))
    assert vae_error < 0.9 * mean_error
    # On the training rows too (fit_transform's path).
    train_error = np.sqrt(np.mean((fitted.transform(X_train) - X_train_true)[mask_train] ** 2))
    assert train_error < 0.9 * np.sqrt(
        np.mean((SimpleImputer().fit_transform(X_train) - X_train_true)[mask_train] ** 2)
    )


def test_mean_imputation_is_deterministic_and_rowwise(fitted, incomplete):
    X_test = incomplete[4]
    once = fitted.transform(X_test)
    np.testing.assert_array_equal(fitted.transform(X_test), once)
    # A row's completion does not depend on the other rows.
    np.testing.assert_allclose(fitted.transform(X_test[5:9]), once[5:9], rtol=RTOL, atol=ATOL)


def test_float32_stays_float32(fitted, incomplete):
    X_test = incomplete[4].astype(np.float32)
    completed = fitted.transform(X_test)
    assert completed.dtype == np.float32
    np.testing.assert_allclose(
        completed, fitted.transform(X_test.astype(np.float64)), rtol=RTOL, atol=ATOL
    )


def test_sample_posterior_draws_differ_per_call_and_follow_random_state(incomplete):
    _, X_train, _, _, X_test, mask, _ = incomplete
    X_train, X_test, mask = X_train[:150], X_test[:50], mask[:50]
    params = dict(max_iter=3, sample_posterior=True, random_state=3)
    first = _small(**params).fit(X_train)
    draws = [first.transform(X_test) for _ in range(2)]
    assert first.__sklearn_tags__().non_deterministic
    for draw in draws:
        np.testing.assert_array_equal(draw[~mask], X_test[~mask])
        assert not np.isnan(draw).any()
    assert not np.allclose(draws[0][mask], draws[1][mask])
    np.testing.assert_array_equal(first.n_completions_, [2])
    # The same random_state gives the same sequence of completions.
    again = clone(first).fit(X_train)
    for draw in draws:
        np.testing.assert_allclose(again.transform(X_test), draw, rtol=RTOL, atol=ATOL)
    # A refit starts the sequence again.
    first.fit(X_train)
    np.testing.assert_allclose(first.transform(X_test), draws[0], rtol=RTOL, atol=ATOL)


def test_sample_posterior_without_seed_draws_anew(incomplete):
    X_train, X_test, mask = incomplete[1][:150], incomplete[4][:30], incomplete[5][:30]
    imputer = _small(max_iter=2, sample_posterior=True, random_state=None).fit(X_train)
    assert not np.allclose(imputer.transform(X_test)[mask], imputer.transform(X_test)[mask])


def test_indicator_columns_and_inverse_transform(incomplete):
    _, X_train, _, _, X_test, mask, _ = incomplete
    X_train = X_train[:150].copy()
    X_train[:, 0] = 0.0  # a feature without missing values in fit: no indicator column
    imputer = _small(max_iter=2, add_indicator=True).fit(X_train)
    assert 0 not in imputer.missing_features_
    np.testing.assert_array_equal(
        imputer.missing_features_, np.flatnonzero(np.isnan(X_train).any(axis=0))
    )
    out = imputer.transform(X_test)
    n_missing = imputer.missing_features_.size
    assert out.shape == (X_test.shape[0], X_test.shape[1] + n_missing)
    np.testing.assert_array_equal(out[:, 64:], mask[:, imputer.missing_features_])
    names = imputer.get_feature_names_out()
    assert list(names[:2]) == ["x0", "x1"]
    assert list(names[64:66]) == [f"missingindicator_x{j}" for j in imputer.missing_features_[:2]]
    # inverse_transform puts NaN back where the indicator says (in missing_features_).
    back = imputer.inverse_transform(out)
    expected = X_test.copy()
    expected[:, 0] = out[:, 0]  # feature 0 had no missing value in fit: not restored
    np.testing.assert_array_equal(back, expected)


def test_inverse_transform_needs_the_indicator(fitted, incomplete):
    with pytest.raises(ValueError, match="add_indicator=True"):
        fitted.inverse_transform(fitted.transform(incomplete[4]))


@pytest.mark.parametrize("keep", [False, True])
def test_empty_features(incomplete, keep):
    _, X_train, _, _, X_test, mask, _ = incomplete
    X_train, X_test = X_train[:150].copy(), X_test[:40].copy()
    X_train[:, [3, 10]] = np.nan  # no observed value in fit
    imputer = _small(max_iter=2, keep_empty_features=keep, add_indicator=True).fit(X_train)
    np.testing.assert_array_equal(np.flatnonzero(imputer.empty_features_), [3, 10])
    out = imputer.transform(X_test)
    names = list(imputer.get_feature_names_out())
    assert len(names) == out.shape[1]
    assert ("x3" in names) is keep and "missingindicator_x3" in names
    if keep:
        # Missing entries of an empty feature become 0; observed ones stay.
        column = out[:, 3]
        np.testing.assert_array_equal(column[mask[:40, 3]], 0)
        np.testing.assert_array_equal(column[~mask[:40, 3]], X_test[~mask[:40, 3], 3])
    else:
        assert out.shape[1] == 62 + imputer.missing_features_.size
        np.testing.assert_array_equal(out[:, 2], np.where(mask[:40, 2], out[:, 2], X_test[:, 2]))
    assert not np.isnan(out).any()
    back = imputer.inverse_transform(out)
    assert np.isnan(back[:, [3, 10]]).all() if not keep else np.isnan(back[mask[:40, 3], 3]).all()


def test_feature_names_and_pandas_output(fitted, incomplete):
    pd = pytest.importorskip("pandas")
    _, X_train, _, _, X_test, _, _ = incomplete
    columns = [f"pixel{j}" for j in range(64)]
    imputer = clone(fitted).set_params(max_iter=2, add_indicator=True)
    imputer.fit(pd.DataFrame(X_train[:150], columns=columns))
    imputer.set_output(transform="pandas")
    out = imputer.transform(pd.DataFrame(X_test[:20], columns=columns))
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns[:64]) == columns
    assert out.columns[64] == f"missingindicator_pixel{imputer.missing_features_[0]}"
    assert not out.isna().any().any()
    np.testing.assert_array_equal(imputer.feature_names_in_, columns)


def test_missing_values_other_than_nan_are_refused(incomplete):
    X = np.where(np.isnan(incomplete[1]), -1.0, incomplete[1])
    imputer = _small(missing_values=-1)
    with pytest.raises(ValueError, match="missing_values=np.nan only"):
        imputer.fit(X)
    assert not hasattr(imputer, "module_")


def test_not_fitted():
    with pytest.raises(NotFittedError):
        VAEImputer().transform(np.zeros((2, 3)))


def test_pipeline_and_grid_search(incomplete):
    _, X_train, _, _, X_test, _, y = incomplete
    pipe = Pipeline([
        ("impute", _small(max_iter=3, n_impute_draws=16)),
        ("clf", LogisticRegression(max_iter=200)),
    ])
    search = GridSearchCV(pipe, {"impute__n_components": [2, 4]}, cv=2)
    search.fit(X_train[:200], y[:200])
    assert search.best_params_["impute__n_components"] in (2, 4)
    assert search.score(X_test, y[400:600]) > 0.5
    # Without a scoring, the imputer alone is ranked by its score (the mean bound).
    alone = GridSearchCV(_small(max_iter=2, n_impute_draws=8), {"n_components": [2, 3]}, cv=2)
    alone.fit(X_train[:120])
    assert np.isfinite(alone.best_score_)


def test_model_file_round_trip(fitted, incomplete, tmp_path):
    X_test = incomplete[4]
    path = skvae.save(fitted, tmp_path / "imputer.skvae")
    loaded = skvae.load(path)
    assert type(loaded) is VAEImputer
    assert loaded.get_params()["n_impute_draws"] == fitted.n_impute_draws
    np.testing.assert_array_equal(loaded.empty_features_, fitted.empty_features_)
    np.testing.assert_array_equal(loaded.missing_features_, fitted.missing_features_)
    np.testing.assert_allclose(
        loaded.transform(X_test), fitted.transform(X_test), rtol=RTOL, atol=ATOL
    )


def test_model_file_keeps_the_sequence_of_draws(incomplete, tmp_path):
    X_train, X_test = incomplete[1][:150], incomplete[4][:30]
    imputer = _small(max_iter=2, sample_posterior=True, random_state=5).fit(X_train)
    imputer.transform(X_test)
    loaded = skvae.load(skvae.save(imputer, tmp_path / "mi.skvae"))
    np.testing.assert_allclose(
        loaded.transform(X_test), imputer.transform(X_test), rtol=RTOL, atol=ATOL
    )
