"""Tables: VAETransformer (and VAEImputer) fitted on pandas DataFrames of mixed columns.

Small seeded frames with float, int, bool, category and string columns and
missing entries; few epochs: what is checked is the table's plumbing
(columns, order, dtypes, categories, scale, choices, errors, model files),
not the quality of the model.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

import skvae
from skvae import AuxiliaryClassifierVAE, ConditionalVAETransformer, VAEImputer, VAETransformer
from skvae._table import TableSchema, describe_column, fit_table
from skvae_plugins.categorical import Categorical
from skvae_plugins.columns import ColumnLikelihood
from skvae_plugins.mlp import MLP

SMALL = dict(n_components=2, architecture=MLP(hidden_sizes=(16,)), random_state=0)


@pytest.fixture(autouse=True)
def quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs: not the point
        yield


def make_frame(n=160, seed=0):
    """Every kind of column: floats on a large scale, ints, booleans, categories, strings."""
    rng = np.random.RandomState(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)
    return pd.DataFrame({
        "mass": rng.normal(4200.0, 800.0, n) + 500.0 * (species == "Gentoo"),
        "bill": rng.normal(44.0, 5.0, n).astype(np.float32),
        "eggs": rng.poisson(3.0, n),
        "rings": pd.array(rng.randint(0, 40, n), dtype="Int64"),
        "male": rng.rand(n) < 0.5,
        "tagged": rng.randint(0, 2, n),
        "species": pd.Categorical(species, categories=["Gentoo", "Adelie", "Chinstrap"]),
        "size": pd.Categorical(rng.choice(["S", "M", "L"], n), categories=["S", "M", "L"],
                               ordered=True),
        "island": pd.Series(rng.choice(["Biscoe", "Dream", "Torgersen"], n), dtype="str"),
        "colour": pd.Series(rng.choice(["black", "white"], n).tolist(), dtype=object),
        "note": pd.Series(rng.choice(["a", "b", "c"], n), dtype="string"),
    })


def with_missing(frame, rate=0.15, seed=1):
    """``frame`` with NaN, None or pd.NA (as each dtype holds it) at ``rate`` of each column."""
    rng = np.random.RandomState(seed)
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == bool or out[name].dtype.kind in "iu":
            out[name] = out[name].astype("boolean" if out[name].dtype == bool else "Int64")
        out.loc[rng.rand(len(out)) < rate, name] = None
    return out


def assert_same_columns(result, frame):
    """Same columns, order, dtypes (categories and their order included)."""
    assert isinstance(result, pd.DataFrame)
    assert list(result.columns) == list(frame.columns)
    for name in frame.columns:
        assert result[name].dtype == frame[name].dtype, name
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            assert list(result[name].cat.categories) == list(frame[name].cat.categories)
            assert result[name].cat.ordered == frame[name].cat.ordered


@pytest.fixture(scope="module")
def frame():
    return make_frame()


@pytest.fixture(scope="module")
def fitted(frame):
    return VAETransformer(max_iter=15, **SMALL).fit(frame)


# ----------------------------------------------------------------- the schema
def test_the_schema_encodes_and_decodes_every_dtype_back(frame):
    missing = with_missing(frame)
    schema, _, X = fit_table(missing, "auto")
    assert X.shape == missing.shape and np.isnan(X).any()
    decoded = schema.decode(X)
    assert_same_columns(decoded, missing)
    pd.testing.assert_frame_equal(decoded, missing, check_exact=False, rtol=1e-5)


def test_the_schema_is_json_data_that_reads_back(frame):
    import json

    schema = fit_table(frame, "auto")[0]
    data = json.loads(json.dumps(schema.to_dict()))
    assert TableSchema.from_dict(data) == schema


def test_kinds_come_from_the_dtypes(frame):
    schema = fit_table(frame, "auto")[0]
    assert schema.kinds == {
        "mass": "numeric", "bill": "numeric", "eggs": "categorical", "rings": "numeric",
        "male": "binary", "tagged": "binary", "species": "categorical",
        "size": "categorical", "island": "categorical", "colour": "categorical",
        "note": "categorical",
    }
    columns = dict(zip(schema.names, schema.columns))
    # A category dtype keeps its categories in its order; text is sorted.
    assert columns["species"].categories == ("Gentoo", "Adelie", "Chinstrap")
    assert columns["island"].categories == ("Biscoe", "Dream", "Torgersen")
    assert columns["tagged"].categories == (0, 1)
    # A discrete numeric column: categorical over the values seen, ints for an int dtype.
    assert columns["eggs"].categories == tuple(int(v) for v in np.unique(frame["eggs"]))
    # Booleans held as objects (with None) are binary too.
    flags = pd.Series([True, None, False], dtype=object)
    assert describe_column("flag", flags).kind == "binary"


# ---------------------------------------------------------- fit and outputs
def test_auto_choices_are_recorded_per_column(fitted, frame):
    assert fitted.table_schema_.likelihoods == {
        "mass": "gaussian", "bill": "gaussian", "eggs": "categorical", "rings": "gaussian",
        "male": "bernoulli", "tagged": "bernoulli", "species": "categorical",
        "size": "categorical", "island": "categorical", "colour": "categorical",
        "note": "categorical",
    }
    likelihood = fitted.likelihood_
    assert isinstance(likelihood, ColumnLikelihood)
    plugins = likelihood.column_plugins(frame.shape[1])
    assert [p.name for p in plugins] == list(fitted.table_schema_.likelihoods.values())
    n_eggs = frame["eggs"].nunique()
    # eggs, species, size, island, colour, note
    assert plugins[6].n_categories == [n_eggs, 3, 3, 3, 2, 3]
    assert fitted.n_features_in_ == frame.shape[1]
    assert list(fitted.feature_names_in_) == list(frame.columns)


def test_sample_and_inverse_transform_give_the_same_columns_and_dtypes(fitted, frame):
    for decode in ("mean", "draw"):
        sample = fitted.sample(50, random_state=0, decode=decode)
        assert_same_columns(sample, frame)
        assert sample.shape == (50, frame.shape[1])
        assert not sample.isna().any().any()
    back = fitted.inverse_transform(fitted.transform(frame.iloc[:20]))
    assert_same_columns(back, frame)
    # Categories and booleans come back as values of the column.
    assert set(back["island"]) <= {"Biscoe", "Dream", "Torgersen"}
    assert set(back["tagged"]) <= {0, 1}


def test_transform_takes_the_frame_as_it_is(fitted, frame):
    Z = fitted.transform(frame)
    assert Z.shape == (len(frame), 2) and Z.dtype == np.float64 and np.isfinite(Z).all()
    # A row's code does not depend on the other rows, nor on the frame's index.
    part = frame.iloc[[5, 3]].set_axis(["x", "y"])
    np.testing.assert_allclose(fitted.transform(part), Z[[5, 3]], rtol=1e-4, atol=1e-5)
    scores = fitted.score_samples(frame.iloc[:10])
    assert scores.shape == (10,) and np.isfinite(scores).all()
    assert np.isfinite(fitted.log_likelihood(frame.iloc[:4], n_importance=8)).all()
    assert fitted.kl_per_dimension(frame).shape == (2,)


def test_a_raw_table_needs_no_scaler(recwarn):
    rng = np.random.RandomState(0)
    n = 400
    frame = pd.DataFrame({
        "income": rng.normal(52000.0, 9000.0, n),
        "height": rng.normal(1.7, 0.1, n),
        "visits": rng.poisson(40.0, n),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "standardise X first" warning
        warnings.simplefilter("ignore", ConvergenceWarning)
        # A frame of numbers alone is a table when asked: ColumnLikelihood() chooses
        # per column ("auto" reads it as an array, as scikit-learn expects).
        vae = VAETransformer(likelihood=ColumnLikelihood(), max_iter=60, **SMALL).fit(frame)
    schema = dict(zip(vae.table_schema_.names, vae.table_schema_.columns))
    assert schema["income"].mean == pytest.approx(frame["income"].mean())
    assert schema["income"].scale == pytest.approx(frame["income"].std(ddof=0))
    sample = vae.sample(2000, random_state=0, decode="draw")
    for name in frame.columns:  # the raw scale, within a generous tolerance
        mean, std = frame[name].mean(), frame[name].std()
        assert abs(sample[name].mean() - mean) < 0.3 * std, name
        assert 0.5 * std < sample[name].std() < 2.0 * std, name
    assert sample["visits"].dtype == frame["visits"].dtype


def test_a_column_likelihood_by_name_keeps_counts_unscaled(frame):
    numbers = ["mass", "bill", "rings"]
    text = ["species", "size", "island", "colour", "note"]
    likelihood = ColumnLikelihood([
        ("gaussian", numbers), ("poisson", ["eggs"]), ("bernoulli", ["male", "tagged"]),
        ("categorical", text),
    ])
    vae = VAETransformer(likelihood=likelihood, max_iter=3, **SMALL).fit(frame)
    schema = dict(zip(vae.table_schema_.names, vae.table_schema_.columns))
    assert schema["eggs"].likelihood == "poisson" and not schema["eggs"].standardized
    assert schema["mass"].standardized
    assert vae.likelihood is likelihood  # the parameter is left as it was
    assert_same_columns(vae.sample(5, random_state=0), frame)


def test_missing_entries_in_every_column(frame):
    missing = with_missing(frame)
    with pytest.raises(ValueError, match="NaN"):
        VAETransformer(max_iter=2, **SMALL).fit(missing)
    vae = VAETransformer(max_iter=5, missing_values=np.nan, **SMALL).fit(missing)
    assert np.isfinite(vae.transform(missing)).all()
    assert np.isfinite(vae.score_samples(missing)).all()
    assert_same_columns(vae.sample(10, random_state=0), missing)


def test_the_imputer_fills_a_frame_and_keeps_what_was_observed(frame):
    missing = with_missing(frame)
    imputer = VAEImputer(max_iter=5, n_impute_draws=16, add_indicator=True, **SMALL)
    filled = imputer.fit(missing).transform(missing)
    values = filled.iloc[:, : frame.shape[1]]
    assert_same_columns(values, missing)
    assert not values.isna().any().any()
    observed = missing.notna()
    for name in frame.columns:
        mask = observed[name].to_numpy()
        pd.testing.assert_series_equal(values[name][mask], missing[name][mask])
    indicators = filled.iloc[:, frame.shape[1]:]
    assert list(indicators.columns) == [f"missingindicator_{c}" for c in frame.columns]
    np.testing.assert_array_equal(indicators.to_numpy(), missing.isna().to_numpy())
    restored = imputer.inverse_transform(filled)
    pd.testing.assert_frame_equal(restored.isna(), missing.isna())
    assert imputer.encode(missing).shape == (len(frame), 2)
    # Categories are imputed as the mixture's most probable code, never an average of codes.
    codes = imputer._validate_incomplete(missing)
    completed = imputer._complete(codes, n_importance=16, validated=True)
    kinds = np.array(list(imputer.table_schema_.kinds.values()))
    categorical = completed[:, kinds == "categorical"]
    np.testing.assert_array_equal(categorical, np.round(categorical))


def discrete_frame(n=300, seed=0):
    """Ratings (ints), coded ages (floats, 5 values), a measurement, a text column."""
    rng = np.random.RandomState(seed)
    rating = rng.randint(1, 6, n)
    return pd.DataFrame({
        "rating": rating,
        "age": rng.choice([17.5, 22.0, 27.0, 32.0, 42.0], n),
        "height": rng.normal(1.7, 0.1, n) + 0.02 * rating,
        "group": rng.choice(["a", "b"], n),
    })


def test_discrete_numeric_columns_are_categorical_over_their_values():
    frame = discrete_frame()
    vae = VAETransformer(max_iter=30, **SMALL).fit(frame)
    schema = dict(zip(vae.table_schema_.names, vae.table_schema_.columns))
    assert schema["rating"].kind == "categorical" and schema["rating"].categories == (
        1, 2, 3, 4, 5)
    assert schema["age"].categories == (17.5, 22.0, 27.0, 32.0, 42.0)
    assert schema["height"].kind == "numeric" and schema["height"].likelihood == "gaussian"
    sample = vae.sample(500, random_state=0, decode="draw")
    assert_same_columns(sample, frame)
    assert set(sample["rating"]) <= {1, 2, 3, 4, 5}
    assert set(sample["age"]) <= {17.5, 22.0, 27.0, 32.0, 42.0}
    assert len(set(sample["age"])) > 1  # a draw of the categorical, not one value
    # A value between those seen in fit is coded as the nearest one.
    between = frame.iloc[:3].copy()
    between["age"] = [18.0, 23.0, 41.0]
    nearest = between.assign(age=[17.5, 22.0, 42.0])
    np.testing.assert_allclose(vae.transform(between), vae.transform(nearest), rtol=1e-5)
    # The model file keeps the values as categories.
    assert TableSchema.from_dict(vae.table_schema_.to_dict()) == vae.table_schema_


def test_discrete_needs_enough_rows_per_value_and_auto():
    frame = discrete_frame(n=20)  # 5 ratings in 20 rows: too few rows per value
    assert fit_table(frame, "auto")[0].kinds["rating"] == "numeric"
    frame = discrete_frame()
    assert fit_table(frame, "auto")[0].kinds["rating"] == "categorical"
    # Named likelihoods are kept: a Gaussian on the ratings if asked.
    likelihood = ColumnLikelihood([("gaussian", ["rating", "age", "height"]),
                                   ("categorical", ["group"])])
    schema = fit_table(frame, likelihood)[0]
    assert schema.kinds["rating"] == "numeric" and schema.likelihoods["rating"] == "gaussian"


# --------------------------------------------------------------------- errors
def test_an_unseen_category_is_a_clear_error(fitted, frame):
    bad = frame.iloc[:5].copy()
    bad["island"] = bad["island"].astype(object)
    bad.loc[bad.index[2], "island"] = "Atlantis"
    for method in (fitted.transform, fitted.score_samples):
        with pytest.raises(ValueError, match="'island'.*not seen in fit: 'Atlantis'"):
            method(bad)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda f: f.iloc[:, ::-1], "same order"),
        (lambda f: f.drop(columns="island"), "missing"),
        (lambda f: f.rename(columns={"mass": "weight"}), "unseen at fit time"),
    ],
    ids=["order", "missing", "renamed"],
)
def test_wrong_columns_are_scikit_learn_errors(fitted, frame, edit, match):
    with pytest.raises(ValueError, match=match):
        fitted.transform(edit(frame))


def test_a_failed_fit_leaves_the_estimator_unchanged(fitted, frame):
    vae = pickle.loads(pickle.dumps(fitted))
    before = vae.table_schema_
    bad = frame.assign(when=pd.Timestamp("2024-01-01"))
    with pytest.raises(TypeError, match="'when' has the dtype datetime64"):
        vae.fit(bad)
    assert vae.table_schema_ == before
    with pytest.raises(ValueError, match="not seen in fit"):
        vae.partial_fit(frame.assign(colour="green"))
    assert vae.table_schema_ == before and vae.n_iter_ == fitted.n_iter_


def test_partial_fit_encodes_chunks_with_the_first_schema(frame):
    vae = VAETransformer(**SMALL).partial_fit(frame.iloc[:80])
    schema = vae.table_schema_
    vae.partial_fit(frame.iloc[80:])
    assert vae.table_schema_ is schema and vae.n_iter_ == 2


# ----------------------------------------------------- arrays stay as they were
def test_arrays_and_explicit_likelihoods_keep_the_array_path(frame):
    numbers = frame[["mass", "bill"]]
    vae = VAETransformer(likelihood="gaussian", max_iter=2, **SMALL)
    with pytest.warns(UserWarning, match="standardised data"):  # not standardised
        vae.fit(numbers)
    assert not hasattr(vae, "table_schema_")
    assert isinstance(vae.sample(3, random_state=0), np.ndarray)
    # "auto" reads a frame of numbers alone as its array: the same model.
    auto = VAETransformer(max_iter=2, **SMALL)
    with pytest.warns(UserWarning, match="standardised data"):
        auto.fit(numbers)
    assert not hasattr(auto, "table_schema_")
    on_array = VAETransformer(max_iter=2, **SMALL)
    with pytest.warns(UserWarning, match="standardised data"):
        on_array.fit(numbers.to_numpy())
    np.testing.assert_allclose(auto.transform(numbers), on_array.transform(numbers.to_numpy()),
                               rtol=1e-4, atol=1e-5)
    # A table model refitted on an array drops its schema.
    by_position = ColumnLikelihood([("gaussian", [0, 1])])
    vae = VAETransformer(likelihood=by_position, max_iter=2, **SMALL).fit(numbers)
    assert hasattr(vae, "table_schema_")
    with pytest.warns(UserWarning, match="standardised data"):
        vae.fit(numbers.to_numpy())
    assert not hasattr(vae, "table_schema_")


def test_an_array_of_codes_configures_the_categorical_likelihood():
    rng = np.random.RandomState(0)
    codes = np.column_stack([rng.randint(0, 4, 120), rng.randint(0, 2, 120)]).astype(float)
    vae = VAETransformer(likelihood=Categorical(), max_iter=3, **SMALL).fit(codes)
    assert vae.likelihood_.n_categories == [4, 2]
    draws = vae.sample(200, random_state=0, decode="draw")
    assert set(np.unique(draws[:, 0])) <= {0.0, 1.0, 2.0, 3.0}


# ---------------------------------------------------------------- model files
def test_model_files_keep_the_schema(fitted, frame, tmp_path):
    loaded = skvae.load(skvae.save(fitted, tmp_path / "table.skvae"))
    assert loaded.table_schema_ == fitted.table_schema_
    np.testing.assert_allclose(loaded.transform(frame), fitted.transform(frame),
                               rtol=1e-4, atol=1e-5)
    pd.testing.assert_frame_equal(loaded.sample(20, random_state=3),
                                  fitted.sample(20, random_state=3))
    again = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(again.sample(5, random_state=1),
                                  fitted.sample(5, random_state=1))


# --------------------------------------------------------------------- polars
def polars_frame(n=160, seed=0):
    """A polars DataFrame of every dtype a table holds, with nulls."""
    pl = pytest.importorskip("polars")
    rng = np.random.RandomState(seed)
    mass = rng.normal(4200.0, 800.0, n)
    return pl.DataFrame({
        "mass": mass,
        "bill": rng.normal(44.0, 5.0, n).astype(np.float32),
        "rings": pl.Series([None if m > 5000 else int(v) for m, v in
                            zip(mass, rng.randint(0, 40, n))], dtype=pl.Int32),
        "male": (rng.rand(n) < 0.5).tolist(),
        "island": pl.Series(rng.choice(["Biscoe", "Dream", "Torgersen"], n).tolist(),
                            dtype=pl.Categorical),
        "size": pl.Series(rng.choice(["S", "M", "L"], n).tolist(), dtype=pl.Enum(["S", "M", "L"])),
        "note": rng.choice(["a", "b"], n).tolist(),
    })


def test_a_polars_frame_is_a_table_and_outputs_are_polars(tmp_path):
    pl = pytest.importorskip("polars")
    frame = polars_frame()
    vae = VAETransformer(max_iter=5, missing_values=np.nan, **SMALL).fit(frame)
    assert vae.table_schema_.polars_dtypes == (
        "Float64", "Float32", "Int32", "Boolean", "Categorical", "Enum", "String")
    assert list(vae.feature_names_in_) == frame.columns
    for out in (vae.sample(20, random_state=0), vae.inverse_transform(vae.transform(frame[:20]))):
        assert isinstance(out, pl.DataFrame)
        assert out.columns == frame.columns and out.dtypes == frame.dtypes
        assert set(out["island"].to_list()) <= {"Biscoe", "Dream", "Torgersen"}
    # The same model as on the pandas frame that holds the same values.
    pandas_frame = _table_as_pandas(frame)
    twin = VAETransformer(max_iter=5, missing_values=np.nan, **SMALL).fit(pandas_frame)
    np.testing.assert_allclose(vae.transform(frame), twin.transform(pandas_frame),
                               rtol=1e-4, atol=1e-5)
    # The model file keeps the polars dtypes.
    loaded = skvae.load(skvae.save(vae, tmp_path / "polars.skvae"))
    assert loaded.table_schema_ == vae.table_schema_
    assert loaded.sample(3, random_state=0).dtypes == frame.dtypes


def _table_as_pandas(frame):
    from skvae._table import as_pandas

    pandas_frame, _ = as_pandas(frame)
    assert isinstance(pandas_frame, pd.DataFrame)
    assert str(pandas_frame["rings"].dtype) == "Int32" and pandas_frame["rings"].isna().any()
    assert list(pandas_frame["size"].cat.categories) == ["S", "M", "L"]
    return pandas_frame


def test_the_imputer_fills_a_polars_frame():
    pl = pytest.importorskip("polars")
    frame = polars_frame()
    imputer = VAEImputer(max_iter=3, add_indicator=True, **SMALL).fit(frame)
    filled = imputer.transform(frame)
    assert isinstance(filled, pl.DataFrame) and filled.null_count().sum_horizontal()[0] == 0
    assert filled.columns[-1] == "missingindicator_rings"
    observed = frame["rings"].is_not_null()
    assert filled["rings"].filter(observed).to_list() == frame["rings"].filter(observed).to_list()
    restored = imputer.inverse_transform(filled)
    assert restored.dtypes == frame.dtypes
    assert restored["rings"].null_count() == frame["rings"].null_count()


def test_a_polars_dtype_a_table_cannot_hold_is_a_clear_error():
    pl = pytest.importorskip("polars")
    import datetime

    frame = polars_frame().with_columns(pl.lit(datetime.date(2024, 1, 1)).alias("day"))
    with pytest.raises(TypeError, match="'day' has the polars dtype Date"):
        VAETransformer(max_iter=1, **SMALL).fit(frame)


# ------------------------------------------------------------ labelled models
LABELLED = [ConditionalVAETransformer, AuxiliaryClassifierVAE]


def labelled_frame(n=240, seed=0):
    """:func:`make_frame` and a label that moves ``mass`` and ``colour``: the class shows."""
    rng = np.random.RandomState(seed)
    frame = make_frame(n, seed)
    y = rng.randint(0, 2, n)
    frame["mass"] = rng.normal(3500.0, 300.0, n) + 1500.0 * y
    frame["colour"] = pd.Series(np.where(y == 1, "black", "white"), dtype=object)
    return frame, np.where(y == 1, "big", "small").astype(object)


@pytest.fixture(scope="module", params=LABELLED, ids=lambda cls: cls.__name__)
def labelled(request):
    frame, y = labelled_frame()
    model = request.param(max_iter=60, **dict(SMALL, architecture=MLP(hidden_sizes=(64,)))
                          ).fit(frame, y)
    return model, frame, y


def test_labelled_models_read_a_table_and_give_frames_back(labelled):
    model, frame, y = labelled
    assert model.table_schema_.likelihoods["colour"] == "categorical"
    assert model.transform(frame).shape == (len(frame), 2)
    for out in (model.sample(30, random_state=0, y="big"),
                model.sample(30, random_state=0, y="small", decode="draw"),
                model.inverse_transform(model.transform(frame[:30]), y=y[:30])):
        assert_same_columns(out, frame)
        assert set(out["island"]) <= {"Biscoe", "Dream", "Torgersen"}


def test_labelled_models_generate_the_chosen_class_of_a_table(labelled):
    model, frame, y = labelled
    big, small = (model.sample(400, random_state=0, y=label) for label in ("big", "small"))
    assert big["mass"].mean() > small["mass"].mean() + 750.0  # half the 1500 g the class adds
    assert (big["colour"] == "black").mean() > 0.9 and (small["colour"] == "white").mean() > 0.9


def test_the_classifier_of_a_table_reads_the_frame():
    frame, y = labelled_frame()
    model = AuxiliaryClassifierVAE(max_iter=60, **SMALL).fit(frame, y)
    assert model.score(frame, y) > 0.95  # colour gives the class away
    assert list(model.classes_) == ["big", "small"]


def test_labelled_models_of_a_table_learn_from_unlabelled_rows_too():
    frame, y = labelled_frame()
    partly = y.copy()
    partly[20:] = -1  # 20 labelled rows of 240
    model = AuxiliaryClassifierVAE(max_iter=60, **SMALL).fit(frame, partly)
    assert model.score(frame[20:], y[20:]) > 0.8  # half are right by chance
    conditional = ConditionalVAETransformer(max_iter=5, **SMALL).fit(frame, partly)
    assert_same_columns(conditional.sample(5, random_state=0, y="big"), frame)


@pytest.mark.parametrize("cls", LABELLED, ids=lambda cls: cls.__name__)
def test_labelled_models_of_a_table_survive_a_model_file(cls, tmp_path):
    frame, y = labelled_frame(80)
    model = cls(max_iter=3, **SMALL).fit(frame, y)
    loaded = skvae.load(skvae.save(model, tmp_path / "labelled.skvae"))
    assert loaded.table_schema_ == model.table_schema_
    np.testing.assert_allclose(loaded.transform(frame), model.transform(frame),
                               rtol=1e-4, atol=1e-5)
    pd.testing.assert_frame_equal(loaded.sample(10, random_state=2, y="big"),
                                  model.sample(10, random_state=2, y="big"))


@pytest.mark.parametrize("cls", LABELLED, ids=lambda cls: cls.__name__)
def test_a_failed_labelled_fit_on_a_table_leaves_no_schema(cls):
    frame, y = labelled_frame(60)
    model = cls(max_iter=1, **SMALL)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.fit(frame, y[:10])
    with pytest.raises(ValueError, match="requires y to be passed"):
        model.fit(frame)
    assert not hasattr(model, "table_schema_") and not hasattr(model, "n_iter_")
    model.fit(frame, y)
    model.fit(np.random.RandomState(0).normal(size=(60, 3)), y)  # an array forgets the table
    assert not hasattr(model, "table_schema_")


def test_labelled_partial_fit_keeps_the_first_schema():
    frame, y = labelled_frame(120)
    model = ConditionalVAETransformer(**SMALL).partial_fit(frame[:60], y[:60],
                                                           classes=["big", "small"])
    schema = model.table_schema_
    model.partial_fit(frame[60:], y[60:])
    assert model.table_schema_ is schema and model.n_iter_ == 2


@pytest.mark.parametrize("cls", LABELLED, ids=lambda cls: cls.__name__)
def test_labelled_models_of_a_table_stream_rows_with_missing_entries(cls):
    frame, y = labelled_frame(90)
    partly = y.copy()
    partly[::3] = -1
    incomplete = with_missing(frame)
    streamed = cls(max_iter=3, missing_values=np.nan, data_on_device=False, **SMALL)
    in_memory = cls(max_iter=3, missing_values=np.nan, **SMALL)
    for model in (streamed, in_memory):
        model.fit(incomplete, partly)
    np.testing.assert_allclose(streamed.transform(incomplete), in_memory.transform(incomplete),
                               rtol=1e-4, atol=1e-5)
    assert np.isfinite(streamed.score_samples(incomplete)).all()
    assert_same_columns(streamed.sample(5, random_state=0, y="big"), incomplete)
