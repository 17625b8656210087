"""The ``categorical`` likelihood and ``ColumnLikelihood`` (mixed tables, issue 14)."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from torch import distributions as D
from torch.nn import functional as F

import skvae
from skvae import VAETransformer
from skvae.base import Column
from skvae_plugins.bernoulli import Bernoulli
from skvae_plugins.categorical import Categorical, CategoricalModule
from skvae_plugins.columns import ColumnLikelihood
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.mlp import MLP

F64 = torch.float64
SIZES = [2, 3, 5]  # categories of three columns: blocks padded to 5
TOL = {"rtol": 1e-4, "atol": 1e-5}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def codes_and_logits(sizes, rows=64, dtype=torch.float32, seed=0):
    """Random codes of each column and logits (one block per column)."""
    rng = gen(seed)
    codes = torch.stack([torch.randint(0, k, (rows,), generator=rng) for k in sizes], 1)
    logits = 3 * torch.randn(rows, sum(sizes), generator=rng, dtype=F64)
    return codes.to(dtype), logits.to(dtype)


def blocks(logits, sizes):
    return torch.split(logits, sizes, dim=-1)


# ------------------------------------------------------------------ the maths
@pytest.mark.parametrize("sizes", [SIZES, [4, 4], [3]])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_log_prob_matches_torch_categorical(sizes, dtype):
    module = CategoricalModule(sizes)
    x, logits = codes_and_logits(sizes, dtype=dtype)
    expected = torch.stack([
        D.Categorical(logits=block).log_prob(x[:, j].long())
        for j, block in enumerate(blocks(logits, sizes))
    ], 1)
    got = module.log_prob_features(x, logits)
    assert got.dtype == dtype and got.shape == x.shape
    torch.testing.assert_close(got, expected, **TOL)
    torch.testing.assert_close(module.log_prob(x, logits), expected.sum(1), **TOL)
    torch.testing.assert_close(module.nll(x, logits), -expected.sum(1), **TOL)


def test_float32_and_float64_agree():
    module = CategoricalModule(SIZES)
    x, logits = codes_and_logits(SIZES, dtype=F64)
    torch.testing.assert_close(
        module.nll(x.float(), logits.float()).double(), module.nll(x, logits), **TOL
    )


def test_padding_gives_finite_gradients_equal_to_softmax_minus_one_hot():
    module = CategoricalModule(SIZES)
    x, logits = codes_and_logits(SIZES, rows=8)
    logits.requires_grad_()
    (grad,) = torch.autograd.grad(module.nll(x, logits).sum(), logits)
    assert torch.isfinite(grad).all()
    expected = torch.cat([
        torch.softmax(block, -1) - F.one_hot(x[:, j].long(), k)
        for j, (block, k) in enumerate(zip(blocks(logits.detach(), SIZES), SIZES))
    ], 1)
    torch.testing.assert_close(grad, expected, **TOL)


def test_features_are_one_hot_and_zero_where_missing():
    module = CategoricalModule(SIZES)
    x, _ = codes_and_logits(SIZES, rows=16)
    expected = torch.cat([F.one_hot(x[:, j].long(), k) for j, k in enumerate(SIZES)], 1)
    torch.testing.assert_close(module.features(x), expected.float())
    x[3, 1] = np.nan
    view = module.features(x)
    assert view[3, 2:5].eq(0).all()  # column 1's block
    torch.testing.assert_close(view[3, :2], expected[3, :2].float())
    assert not torch.isnan(view).any()


@pytest.mark.parametrize("sizes", [SIZES, [4, 4]])
def test_mean_is_the_mode(sizes):
    module = CategoricalModule(sizes)
    _, logits = codes_and_logits(sizes, dtype=F64)
    expected = torch.stack(
        [D.Categorical(logits=b).probs.argmax(-1) for b in blocks(logits, sizes)], 1
    )
    mean = module.mean(logits)
    assert mean.dtype == F64
    assert torch.equal(mean, expected.to(F64))


def test_draws_follow_the_probabilities_and_the_generator():
    module = CategoricalModule(SIZES)
    _, logits = codes_and_logits(SIZES, rows=1, dtype=F64)
    params = logits.expand(20_000, -1)
    draws = module.sample(params, generator=gen(1))
    assert draws.shape == (20_000, len(SIZES)) and draws.dtype == F64
    for j, block in enumerate(blocks(logits[0], SIZES)):
        expected = D.Categorical(logits=block).probs
        frequencies = torch.bincount(draws[:, j].long(), minlength=len(expected)) / 20_000
        torch.testing.assert_close(frequencies.to(F64), expected, atol=0.015, rtol=0)
    assert torch.equal(draws, module.sample(params, generator=gen(1)))
    assert not torch.equal(draws, module.sample(params, generator=gen(2)))


@pytest.mark.parametrize("sizes", [SIZES, [4, 4]])
def test_predictive_stats_are_probabilities_and_their_point_the_mixture_mode(sizes):
    """What an imputation averages over draws of z: the probabilities (the
    average of modes would be no category), then the mixture's mode."""
    module = CategoricalModule(sizes)
    _, logits = codes_and_logits(sizes, rows=6, dtype=F64)
    stats = module.predictive_stats(logits)
    assert module.n_stats == stats.shape[1] == sum(sizes)
    expected = torch.cat([torch.softmax(b, -1) for b in blocks(logits, sizes)], 1)
    torch.testing.assert_close(stats, expected)
    assert torch.equal(module.predictive_point(stats), module.mean(logits))
    averaged = (stats[:3] + stats[3:]) / 2  # a mixture of two draws per row
    mode = torch.stack([b.argmax(-1) for b in blocks(averaged, sizes)], 1).to(F64)
    assert torch.equal(module.predictive_point(averaged), mode)


# ----------------------------------------------------------- the plugin class
def test_configure_counts_categories_and_leaves_self_alone():
    plugin = Categorical()
    cols = [Column("island", "categorical", ("Biscoe", "Dream", "Torgersen"), 0.0, 1.0),
            Column("x1", "numeric", None, 0.0, 6.0),
            Column("x2", "numeric", None, np.nan, np.nan)]
    configured = plugin.configure(cols)
    assert configured is not plugin and plugin.n_categories == "auto"
    assert configured.n_categories == [3, 7, 1]
    assert configured.n_params(3) == configured.n_inputs(3) == 11
    explicit = Categorical(n_categories=[4, 7, 2])
    assert explicit.configure(cols).n_categories == [4, 7, 2]
    assert explicit.n_categories == [4, 7, 2]


@pytest.mark.parametrize("plugin, n_features, message", [
    (Categorical(), 2, "does not know its categories yet"),
    (Categorical(n_categories=[3, 4]), 3, "n_categories for 2 columns"),
    (Categorical(n_categories=[3, 0]), 2, "positive ints"),
    (Categorical(n_categories=[3, 2.5]), 2, "positive ints"),
    (Categorical(n_categories=4), 1, "'auto' or a list of ints"),
])
def test_bad_n_categories_are_named(plugin, n_features, message):
    with pytest.raises(ValueError, match=message):
        plugin.n_params(n_features)


def test_check_data():
    plugin = Categorical(n_categories=[3, 2])
    plugin.check_data(np.array([[0.0, 1.0], [2.0, np.nan], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"column 1 holds 0\.5.*OrdinalEncoder"):
        plugin.check_data(np.array([[0.0, 0.5]]))
    with pytest.raises(ValueError, match="column 0 holds -1"):
        plugin.check_data(np.array([[-1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"n_categories=2 for column 1 .*holds the code 2"):
        plugin.check_data(np.array([[0.0, 2.0]]))
    Categorical().check_data(np.array([[0.0, 41.0]]))  # "auto": any code
    with pytest.raises(ValueError, match="holds inf"):
        Categorical().check_data(np.array([[np.inf]]))


# ------------------------------------------------------------ ColumnLikelihood
# Columns of the table below: code (3), real, code (4), binary, real.
PARTS = [(Gaussian(scale=0.7), [1, 4]), (Categorical(n_categories=[4, 3]), [2, 0]),
         (Bernoulli(), [3])]


def table(rows=240, seed=0, missing=0.0):
    """An integer-coded mixed table whose columns depend on each other."""
    rng = np.random.RandomState(seed)
    group = rng.randint(0, 3, rows)
    X = np.c_[
        group,
        group + 0.3 * rng.randn(rows),
        (group + rng.randint(0, 2, rows)) % 4,
        (group == 1) | (rng.rand(rows) < 0.1),
        -group + 0.3 * rng.randn(rows),
    ].astype(np.float32)
    if missing:
        X[rng.rand(*X.shape) < missing] = np.nan
    return X


def test_module_is_the_sum_of_its_parts_in_column_order():
    likelihood = ColumnLikelihood(PARTS)
    module = likelihood.build(5)
    x = torch.as_tensor(table(rows=32))
    params = torch.randn(32, likelihood.n_params(5), generator=gen(3))
    assert likelihood.n_params(5) == 2 + 7 + 1 and likelihood.n_inputs(5) == 2 + 7 + 1
    gaussian, cat, bernoulli = (p.build(len(c)) for p, c in PARTS)
    p_g, p_c, p_b = params[:, :2], params[:, 2:9], params[:, 9:]
    expected = torch.empty(32, 5)
    expected[:, [1, 4]] = gaussian.log_prob_features(x[:, [1, 4]], p_g)
    expected[:, [2, 0]] = cat.log_prob_features(x[:, [2, 0]], p_c)
    expected[:, [3]] = bernoulli.log_prob_features(x[:, [3]], p_b)
    torch.testing.assert_close(module.log_prob_features(x, params), expected, **TOL)
    torch.testing.assert_close(module.nll(x, params), -expected.sum(1), **TOL)
    torch.testing.assert_close(module.log_prob(x, params), expected.sum(1), **TOL)
    mean = module.mean(params)
    torch.testing.assert_close(mean[:, [1, 4]], gaussian.mean(p_g))
    torch.testing.assert_close(mean[:, [2, 0]], cat.mean(p_c))
    torch.testing.assert_close(mean[:, [3]], bernoulli.mean(p_b))
    view = module.features(x)
    torch.testing.assert_close(view, torch.cat([x[:, [1, 4]], cat.features(x[:, [2, 0]]),
                                                x[:, [3]]], 1))


def test_predictive_stats_of_the_parts_in_column_order():
    likelihood = ColumnLikelihood(PARTS)
    module = likelihood.build(5)
    params = torch.randn(6, likelihood.n_params(5), generator=gen(5))
    stats = module.predictive_stats(params)
    gaussian, cat, bernoulli = (p.build(len(c)) for p, c in PARTS)
    assert module.n_stats == stats.shape[1] == 2 + 7 + 1
    torch.testing.assert_close(stats, torch.cat([
        gaussian.mean(params[:, :2]), cat.predictive_stats(params[:, 2:9]),
        bernoulli.mean(params[:, 9:])], 1))
    torch.testing.assert_close(module.predictive_point(stats), module.mean(params))
    averaged = (stats[:3] + stats[3:]) / 2
    point = module.predictive_point(averaged)
    torch.testing.assert_close(point[:, [1, 4]], averaged[:, :2])
    torch.testing.assert_close(point[:, [2, 0]], cat.predictive_point(averaged[:, 2:9]))


def test_draws_come_from_each_part_in_column_order():
    likelihood = ColumnLikelihood([(Categorical(n_categories=[3]), [1]), ("gaussian", [0])])
    module = likelihood.build(2)
    params = torch.tensor([[0.0, 0.0, 50.0, 10.0]])  # category 2 certain; loc 10
    draws = module.sample(params.expand(200, -1), generator=gen(0))
    assert draws[:, 1].eq(2).all()
    assert abs(draws[:, 0].mean().item() - 10) < 0.5
    assert torch.equal(module.mean(params), torch.tensor([[10.0, 2.0]]))


def test_without_a_categorical_part_the_encoder_sees_the_rows():
    """No part with its own view: the module keeps the identity ``features``
    (a network with its own model, such as the ladder, can then be used)."""
    module = ColumnLikelihood([("gaussian", [1]), ("bernoulli", [0])]).build(2)
    assert type(module).features is skvae.base.LikelihoodModule.features


def test_configure_resolves_names_and_configures_each_part():
    likelihood = ColumnLikelihood([("gaussian", ["length", "mass"]),
                                   (Categorical(), ["island", "sex"])])
    before = repr(likelihood.get_params())
    cols = [Column("island", "categorical", ("a", "b", "c"), 0, 2),
            Column("length", "numeric", None, -2.0, 2.0),
            Column("sex", "binary", ("f", "m"), 0, 1),
            Column("mass", "numeric", None, -2.0, 2.0)]
    configured = likelihood.configure(cols)
    assert repr(likelihood.get_params()) == before  # never mutates self
    (gaussian, where_g), (cat, where_c) = configured.likelihoods
    assert gaussian.name == "gaussian" and where_g == [1, 3]
    assert cat.n_categories == [3, 2] and where_c == [0, 2]
    assert all(isinstance(p, int) for p in where_g + where_c)
    assert configured.n_params(4) == 2 + 5
    plugins = configured.column_plugins(4)
    assert [p.name for p in plugins] == ["categorical", "gaussian", "categorical", "gaussian"]
    assert [p.standardize for p in plugins] == [False, Gaussian.standardize, False,
                                                Gaussian.standardize]
    # Configured or not, it clones like any scikit-learn parameter.
    for plugin in (likelihood, configured):
        copy = clone(plugin)
        assert repr(copy) == repr(plugin) and copy.likelihoods is not plugin.likelihoods


def test_array_columns_by_name_and_negative_position():
    cols = [Column(f"x{j}", "numeric", None, 0.0, 2.0) for j in range(3)]
    configured = ColumnLikelihood([("categorical", ["x2", "x0"]), ("gaussian", [-2])]) \
        .configure(cols)
    assert configured.likelihoods[0][0].n_categories == [3, 3]
    assert configured.likelihoods[0][1] == [2, 0] and configured.likelihoods[1][1] == [1]


@pytest.mark.parametrize("likelihoods, message", [
    ([("gaussian", ["a"]), ("categorical", ["b"])], r"no likelihood for the column\(s\) 'c'"),
    ([("gaussian", ["a", "b"]), ("categorical", ["b", "c"])],
     r"more than one likelihood for the column\(s\) 'b'"),
    ([("gaussian", ["a", "b", "c", "d"])], "'d', which the data do not have"),
    ([("gaussian", [0, 1, 2, 3])], "position 3, but the data have 3 columns"),
    ([("gaussian", [])], "non-empty list of column names"),
    ([("gaussian", "a")], "non-empty list of column names"),
    ([("gaussian",)], r"likelihoods\[0\] must be a \(likelihood, columns\) pair"),
    ([], "non-empty list of"),
    (None, "non-empty list of"),
    ([("no_such_likelihood", ["a", "b", "c"])], "Unknown likelihood 'no_such_likelihood'"),
    ([(ColumnLikelihood([("gaussian", [0])]), ["a", "b", "c"])], "is itself a ColumnLikelihood"),
])
def test_bad_pairs_are_named(likelihoods, message):
    cols = [Column(name, "numeric", None, 0.0, 1.0) for name in "abc"]
    with pytest.raises(ValueError, match=message):
        ColumnLikelihood(likelihoods).configure(cols)


def test_names_need_configure():
    with pytest.raises(ValueError, match="resolved by configure"):
        ColumnLikelihood([("gaussian", ["a"])]).n_params(1)


def test_check_data_dispatches_and_names_the_columns():
    likelihood = ColumnLikelihood(PARTS)
    likelihood.check_data(table(rows=50, missing=0.2))
    X = table(rows=50)
    X[5, 2] = 4  # column 2 is the categorical part's column 0, with 4 categories
    with pytest.raises(ValueError, match=r"part 1 \('categorical'\) models the columns at "
                                         r"positions \[2, 0\].*for column 0 .*holds the code 4"):
        likelihood.check_data(X)
    X = table(rows=50)
    X[0, 3] = 2.0
    with pytest.raises(ValueError, match=r"part 2 \('bernoulli'\).*\[0, 1\]"):
        likelihood.check_data(X)


# ---------------------------------------------------------- in the estimator
def fitted(X, likelihood=None, **params):
    params = {"n_components": 2, "max_iter": 4, "batch_size": 64, "random_state": 0,
              "architecture": MLP(hidden_sizes=(16,)), **params}
    return VAETransformer(likelihood=likelihood or ColumnLikelihood(PARTS), **params).fit(X)


def test_fit_on_an_integer_coded_table():
    X = table()
    vae = fitted(X)
    first, last = vae.module_.net.encoder[0], vae.module_.net.decoder[-1]
    assert first.in_features == ColumnLikelihood(PARTS).n_inputs(5) == 10  # one-hot view
    assert last.out_features == ColumnLikelihood(PARTS).n_params(5) == 10
    assert np.isfinite(vae.score_samples(X)).all()
    means = vae.inverse_transform(vae.transform(X[:20]))
    assert set(np.unique(means[:, [0, 2]])) <= {0.0, 1.0, 2.0, 3.0}  # modes: codes
    draws = vae.sample(50, random_state=0, decode="draw")
    assert set(np.unique(draws[:, 0])) <= {0, 1, 2} and set(np.unique(draws[:, 2])) <= {
        0, 1, 2, 3}
    assert np.array_equal(draws, vae.sample(50, random_state=0, decode="draw"))


def test_fit_learns_the_categorical_column():
    """Trained longer, the model reconstructs the category from the row better
    than the majority class does (the numeric columns reveal it)."""
    X = table()
    vae = fitted(X, max_iter=60)
    modes = vae.inverse_transform(vae.transform(X))[:, 0]
    majority = np.bincount(X[:, 0].astype(int)).max() / len(X)
    assert np.mean(modes == X[:, 0]) > majority + 0.2


def test_fit_configures_an_auto_categorical():
    X = table()
    likelihood = ColumnLikelihood([(Gaussian(scale=0.7), ["x1", "x4"]),
                                   ("categorical", ["x2", "x0"]), ("bernoulli", ["x3"])])
    try:
        vae = fitted(X, likelihood)
    except ValueError as exc:
        if "resolved by configure" in str(exc) or "know its categories" in str(exc):
            pytest.skip("fit does not call Likelihood.configure yet")
        raise
    part, positions = vae.likelihood_.likelihoods[1]
    assert part.n_categories == [4, 3] and positions == [2, 0]
    assert vae.likelihood is likelihood and likelihood.likelihoods[1][0] == "categorical"


def test_fit_and_transform_refuse_bad_codes():
    X = table()
    bad = X.copy()
    bad[0, 0] = 1.5
    with pytest.raises(ValueError, match="column 1 holds 1.5"):
        fitted(bad)
    vae = fitted(X)
    bad = X[:4].copy()
    bad[1, 2] = 7
    with pytest.raises(ValueError, match="holds the code 7"):
        vae.transform(bad)


def test_model_file_round_trip(tmp_path):
    X = table()
    vae = fitted(X)
    path = tmp_path / "table.skvae"
    skvae.save(vae, path)
    loaded = skvae.load(path)
    assert repr(loaded.likelihood_) == repr(vae.likelihood_)
    for method in ("transform", "score_samples"):
        np.testing.assert_allclose(getattr(loaded, method)(X), getattr(vae, method)(X), **TOL)
    Z = vae.transform(X[:30])
    np.testing.assert_allclose(loaded.inverse_transform(Z), vae.inverse_transform(Z), **TOL)
    np.testing.assert_allclose(loaded.sample(20, random_state=3, decode="draw"),
                               vae.sample(20, random_state=3, decode="draw"), **TOL)


def test_missing_values_in_every_kind_of_column():
    # The domain check fills each NaN with an observed value of its own
    # column (skvae._data.observed_values): with X's smallest value instead,
    # a real column's negative values would land in a column of codes.
    X = table(missing=0.15)
    assert np.isnan(X).any(axis=0).all()
    likelihood = ColumnLikelihood([("gaussian", [1, 4]), (Categorical(n_categories=[4, 3]),
                                                            [2, 0]), ("bernoulli", [3])])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        vae = fitted(X, likelihood, missing_values=np.nan)
    assert np.isfinite(vae.score_samples(X)).all()
    assert np.isfinite(vae.transform(X)).all()
    # The reconstruction term is over the observed entries only: a row with
    # its code missing gets the log-likelihood of its other columns.
    module = vae.module_
    x = torch.as_tensor(X[:40])
    params = torch.randn(40, likelihood.n_params(5), generator=gen(4))
    got = module.log_prob_features(x, params)
    observed = ~torch.isnan(x)
    full = module.likelihood.log_prob_features(torch.where(observed, x, 0.0), params)
    torch.testing.assert_close(got, torch.where(observed, full, 0.0))
    assert got[~observed].eq(0).all()


# ------------------------------------------------------- remainder="auto"
def coded_frame(n=60, seed=0):
    """A frame of a coded float (ages), a rating, a measurement, a category, a bool."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.choice([17.5, 22.0, 27.0, 32.0], n),
        "rating": rng.integers(1, 6, n),
        "mass": rng.normal(4000.0, 500.0, n),
        "island": pd.Categorical(rng.choice(["Biscoe", "Dream"], n)),
        "male": rng.random(n) < 0.5,
    })


def fit_frame(frame, likelihood):
    return VAETransformer(n_components=2, architecture=MLP(hidden_sizes=(8,)),
                          likelihood=likelihood, max_iter=2, random_state=0).fit(frame)


def test_remainder_auto_models_the_unnamed_columns_as_auto_does():
    frame = coded_frame()
    auto = fit_frame(frame, "auto").table_schema_
    vae = fit_frame(frame, ColumnLikelihood([("gaussian", ["age"])], remainder="auto"))
    schema = vae.table_schema_
    assert auto.likelihoods["age"] == "categorical"  # a coded float: discrete under "auto"
    assert schema.likelihoods == dict(auto.likelihoods, age="gaussian")
    by_name = {c.name: c for c in schema.columns}
    assert by_name["age"].kind == "numeric" and by_name["age"].scale > 0  # standardised
    assert by_name["rating"].categories == (1, 2, 3, 4, 5)  # over its values, as "auto"
    draws = vae.sample(200, random_state=0, decode="draw")
    assert list(draws.dtypes) == list(frame.dtypes)
    assert set(draws["rating"]) <= {1, 2, 3, 4, 5}
    assert not set(draws["age"]) <= {17.5, 22.0, 27.0, 32.0}  # continuous now


def test_remainder_auto_leaves_the_parameter_alone_and_fits_a_complete_likelihood():
    likelihood = ColumnLikelihood([("gaussian", ["age"])], remainder="auto")
    vae = fit_frame(coded_frame(), likelihood)
    assert vae.likelihood is likelihood
    assert likelihood.get_params() == {"likelihoods": [("gaussian", ["age"])],
                                       "remainder": "auto"}
    assert vae.likelihood_.remainder is None
    named = sorted(p for _, positions in vae.likelihood_.likelihoods for p in positions)
    assert named == [0, 1, 2, 3, 4]
    assert clone(vae).likelihood.remainder == "auto"


def test_remainder_auto_with_every_column_named_is_the_explicit_model():
    frame = coded_frame()
    pairs = [("gaussian", ["age", "rating", "mass"]), ("categorical", ["island"]),
             ("bernoulli", ["male"])]
    explicit = fit_frame(frame, ColumnLikelihood(pairs))
    completed = fit_frame(frame, ColumnLikelihood(pairs, remainder="auto"))
    assert repr(completed.likelihood_) == repr(explicit.likelihood_)
    np.testing.assert_allclose(completed.transform(frame), explicit.transform(frame), **TOL)


def test_remainder_auto_model_file_round_trip(tmp_path):
    frame = coded_frame()
    vae = fit_frame(frame, ColumnLikelihood([("gaussian", ["age"])], remainder="auto"))
    path = tmp_path / "remainder.skvae"
    skvae.save(vae, path)
    loaded = skvae.load(path)
    assert loaded.likelihood.get_params() == vae.likelihood.get_params()
    assert loaded.table_schema_.likelihoods == vae.table_schema_.likelihoods
    np.testing.assert_allclose(loaded.transform(frame), vae.transform(frame), **TOL)
    draws, loaded_draws = (m.sample(20, random_state=3, decode="draw") for m in (vae, loaded))
    np.testing.assert_allclose(loaded_draws["age"], draws["age"], **TOL)
    assert (loaded_draws["rating"] == draws["rating"]).all()


def test_remainder_auto_on_an_array_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(30, 3))
    vae = VAETransformer(likelihood=ColumnLikelihood([("gaussian", [0])], remainder="auto"),
                         max_iter=1)
    with pytest.raises(ValueError, match="fit it on a DataFrame, or name every column"):
        vae.fit(X)
    assert not hasattr(vae, "n_iter_")


@pytest.mark.parametrize("remainder", ["drop", "passthrough", True, "AUTO"])
def test_bad_remainders_are_named(remainder):
    with pytest.raises(ValueError, match="remainder must be None .* or 'auto'"):
        fit_frame(coded_frame(), ColumnLikelihood([("gaussian", ["age"])],
                                                  remainder=remainder))


# ------------------------------------- numeric columns named for a categorical part
def education_frame(n=120, seed=0):
    """Years of schooling (ints 9-20, six values), coded ages, a measurement."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "educ": rng.choice([9, 12, 14, 16, 17, 20], n),
        "age": rng.choice([17.5, 22.0, 27.0, 32.0], n),
        "mass": rng.normal(4000.0, 500.0, n),
    })


@pytest.mark.parametrize("remainder", [None, "auto"])
def test_a_numeric_column_named_categorical_has_its_values_as_categories(remainder):
    frame = education_frame()
    pairs = [("categorical", ["educ", "age"])] + ([("gaussian", ["mass"])] if remainder is None
                                                  else [])
    vae = fit_frame(frame, ColumnLikelihood(pairs, remainder=remainder))
    by_name = {c.name: c for c in vae.table_schema_.columns}
    assert by_name["educ"].kind == "categorical"
    assert by_name["educ"].categories == (9, 12, 14, 16, 17, 20)  # ints: not 0..20 as codes
    assert by_name["age"].categories == (17.5, 22.0, 27.0, 32.0)  # floats: no code error
    categorical = next(p for p, _ in vae.likelihood_.likelihoods if p.name == "categorical")
    assert categorical.n_categories == [6, 4]
    draws = vae.sample(300, random_state=0, decode="draw")
    assert list(draws.dtypes) == list(frame.dtypes)
    assert set(draws["educ"]) == {9, 12, 14, 16, 17, 20}
    assert set(draws["age"]) <= {17.5, 22.0, 27.0, 32.0}


def test_a_named_categorical_numeric_column_codes_unseen_values_as_the_nearest():
    frame = education_frame()
    vae = fit_frame(frame, ColumnLikelihood([("categorical", ["educ"])], remainder="auto"))
    moved = frame.assign(educ=frame["educ"].replace({9: 10, 20: 19}))
    np.testing.assert_allclose(vae.transform(moved), vae.transform(frame), **TOL)
    assert not np.allclose(vae.transform(frame.assign(educ=9)), vae.transform(frame))


def test_a_named_categorical_numeric_column_survives_a_model_file(tmp_path):
    frame = education_frame()
    vae = fit_frame(frame, ColumnLikelihood([("categorical", ["educ"])], remainder="auto"))
    loaded = skvae.load(skvae.save(vae, tmp_path / "educ.skvae"))
    assert loaded.table_schema_ == vae.table_schema_
    np.testing.assert_allclose(loaded.transform(frame), vae.transform(frame), **TOL)
    draws, loaded_draws = (m.sample(30, random_state=1, decode="draw") for m in (vae, loaded))
    assert (loaded_draws["educ"] == draws["educ"]).all()
    assert loaded_draws["educ"].dtype == frame["educ"].dtype


def test_a_named_categorical_column_with_no_observed_value_is_a_clear_error():
    frame = education_frame().assign(educ=np.nan)
    vae = VAETransformer(likelihood=ColumnLikelihood([("categorical", ["educ"])],
                                                     remainder="auto"),
                         missing_values=np.nan, max_iter=1)
    with pytest.raises(ValueError, match="'educ' is modelled by a categorical likelihood, "
                                         "but no value of it is observed"):
        vae.fit(frame)
    assert not hasattr(vae, "n_iter_")


def test_a_third_party_likelihood_of_categories_gets_them_from_numeric_columns():
    seen = []

    class Recording(Categorical):
        name = "recording_categorical"

        def configure(self, columns):
            seen.extend(columns)
            return super().configure(columns)

    class NotCategories(Recording):
        models_categories = False

    frame = education_frame()
    fit_frame(frame, ColumnLikelihood([(Recording(), ["educ"])], remainder="auto"))
    assert (seen[0].kind, seen[0].categories) == ("categorical", (9, 12, 14, 16, 17, 20))
    assert (seen[0].low, seen[0].high) == (0.0, 5.0)  # the model sees the codes
    seen.clear()
    with pytest.raises(ValueError, match="needs category codes"):  # the values, as they are
        fit_frame(frame, ColumnLikelihood([(NotCategories(), ["age"])], remainder="auto"))
    assert seen[0].kind == "numeric"


@pytest.mark.parametrize("likelihood", [
    "auto", ColumnLikelihood([("categorical", ["educ"])], remainder="auto")])
def test_infinity_in_a_column_read_as_categories_is_a_clear_error(likelihood):
    frame = education_frame().astype({"educ": "float64"}).assign(island="Dream")
    frame.loc[3, "educ"] = np.inf  # the island column makes the frame a table for "auto"
    vae = VAETransformer(likelihood=likelihood, max_iter=1)
    with pytest.raises(ValueError, match="'educ' holds infinity, which cannot be a category"):
        vae.fit(frame)
    assert not hasattr(vae, "n_iter_")


# ------------------------------------- numeric columns named for a Bernoulli part
def test_a_two_valued_numeric_column_named_bernoulli_is_binary_over_its_values(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "sex": rng.choice([1, 2], 80),              # two values, not 0 and 1
        "share": rng.random(80),                    # numbers in [0, 1]: stay numbers
        "island": pd.Categorical(rng.choice(["Biscoe", "Dream"], 80)),
    })
    vae = fit_frame(frame, ColumnLikelihood([("bernoulli", ["sex", "share"])],
                                            remainder="auto"))
    by_name = {c.name: c for c in vae.table_schema_.columns}
    assert (by_name["sex"].kind, by_name["sex"].categories) == ("binary", (1, 2))
    assert by_name["share"].kind == "numeric"
    draws = vae.sample(200, random_state=0, decode="draw")
    assert draws["sex"].dtype == frame["sex"].dtype and set(draws["sex"]) == {1, 2}
    assert draws["share"].isin([0.0, 1.0]).all()  # Bernoulli draws of the numbers
    loaded = skvae.load(skvae.save(vae, tmp_path / "sex.skvae"))
    assert loaded.table_schema_ == vae.table_schema_
    np.testing.assert_allclose(loaded.transform(frame), vae.transform(frame), **TOL)
    flipped = frame.assign(sex=3 - frame["sex"])
    assert not np.allclose(vae.transform(flipped), vae.transform(frame))


def test_a_numeric_column_of_three_values_named_bernoulli_is_still_out_of_its_domain():
    frame = education_frame().assign(island="Dream")
    with pytest.raises(ValueError, match="'bernoulli' likelihood needs data in \\[0, 1\\]"):
        fit_frame(frame, ColumnLikelihood([("bernoulli", ["age"])], remainder="auto"))


def test_a_measurement_named_categorical_is_warned_about_and_codes_are_not():
    frame = education_frame()
    with pytest.warns(UserWarning, match="'mass' is modelled as categorical over its values, "
                                         "and 120 of its 120 observed values are distinct"):
        fit_frame(frame, ColumnLikelihood([("categorical", ["mass"])], remainder="auto"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # six values over 120 rows: no warning
        warnings.simplefilter("ignore", ConvergenceWarning)  # two epochs: not the point
        fit_frame(frame, ColumnLikelihood([("categorical", ["educ"])], remainder="auto"))
