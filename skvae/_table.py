"""Tables: the columns of a DataFrame as the numbers a VAE models, and back.

A fit on a pandas DataFrame (``likelihood="auto"``, a ``ColumnLikelihood``,
or any non-numeric column) runs in *table mode*. :func:`fit_table` fits a
:class:`TableSchema` on the frame: per column its name, dtype, kind
("numeric", "binary", "categorical"), categories, the likelihood plugin
that models it and the standardisation (mean, scale) of the numeric
columns whose likelihood has ``standardize = True``.

The model sees one float column per table column (sklearn's
``n_features_in_`` is the frame's number of columns):

- numeric columns as numbers, standardised when their likelihood asks for
  it: ``(x - mean) / scale``;
- binary columns (bool, or numbers that are all 0 or 1 in ``fit``) as 0
  and 1 (a numeric one as its values, which the Bernoulli likelihood takes
  in [0, 1]: a later 0.5 is no error);
- categorical columns (category, object, string) as codes 0, ..., K - 1
  in the order of ``categories``;
- missing entries (NaN, None, ``pd.NA``) as NaN.

:meth:`TableSchema.encode` turns a frame into that array (a category not
seen in ``fit`` is an error), :meth:`TableSchema.decode` turns the model's
output back into a frame with the same columns, order, dtypes and
categories: numbers un-standardised (rounded for integer columns), binary
columns and categories from their codes (a binary column's probability
becomes its more probable value). The schema is plain data:
:meth:`TableSchema.to_dict` is JSON, and :meth:`TableSchema.from_dict`
checks a dict as a hostile model file's (types, allowlisted dtype names,
category values str, int, float or bool only).

``likelihood="auto"`` picks per column (:data:`AUTO_LIKELIHOODS`):
"gaussian" for numeric columns (standardised, integers rounded back on
output), "bernoulli" for binary columns, "categorical" for categorical
ones, and "categorical" over its values for a *discrete* numeric column:
one with at most :data:`MAX_DISCRETE_VALUES` distinct values, each seen
:data:`MIN_DISCRETE_COUNT` times on average (ratings, counts, coded ages),
whose codes are those of the nearest value seen in ``fit`` and whose output
is those values in the column's dtype. A likelihood the user names for a
numeric column that models category codes (``Likelihood.models_categories``,
a ``"categorical"`` part of a ``ColumnLikelihood``) makes it categorical the
same way, over every value it holds in ``fit``; one that models two values
(``Likelihood.models_binary``, ``"bernoulli"``) makes a column of exactly two
values binary over them.

A polars DataFrame is read column by column into pandas (:func:`as_pandas`,
without pyarrow), and the schema keeps its polars dtypes
(:attr:`TableSchema.polars_dtypes`), so that the outputs of a model fitted
on one are polars DataFrames with the same dtypes (:meth:`TableSchema.output`).
"""

import math
import sys
import warnings
from numbers import Integral, Real
from typing import NamedTuple, Optional

import numpy as np

from ._registry import get_registry, resolve_plugin
from ._warnings import user_stacklevel
from .base import Column

KINDS = ("numeric", "binary", "categorical")
#: The likelihood ``likelihood="auto"`` gives each kind of column.
AUTO_LIKELIHOODS = {"numeric": "gaussian", "binary": "bernoulli", "categorical": "categorical"}
#: The registered name of the composite likelihood (``ColumnLikelihood``).
COLUMNS_LIKELIHOOD = "columns"
#: A numeric column with at most this many distinct values in ``fit`` ...
MAX_DISCRETE_VALUES = 10
#: ... each seen this many times on average is discrete under ``likelihood="auto"``.
MIN_DISCRETE_COUNT = 5
_INT_DTYPES = tuple(f"{p}int{b}" for p in ("", "u") for b in (8, 16, 32, 64))
_NULLABLE_INT_DTYPES = tuple(f"{p}Int{b}" for p in ("", "U") for b in (8, 16, 32, 64))
#: The dtype names a schema may hold (a model file's included): an allowlist.
NUMERIC_DTYPES = ("float16", "float32", "float64", "Float32", "Float64") + _INT_DTYPES + (
    _NULLABLE_INT_DTYPES
)
BOOL_DTYPES = ("bool", "boolean")
TEXT_DTYPES = ("object", "str", "string")
DTYPES = NUMERIC_DTYPES + BOOL_DTYPES + TEXT_DTYPES + ("category",)


class TableColumn(NamedTuple):
    """One column of a :class:`TableSchema`.

    Parameters
    ----------
    name : str or int
        The column's label in the frame.
    dtype : str
        Its dtype's name, one of :data:`DTYPES` (``"float64"``, ``"Int64"``,
        ``"category"``, ``"str"``...).
    kind : {"numeric", "binary", "categorical"}
        What the model sees: numbers, 0 and 1, or codes 0..K-1.
    categories : tuple or None
        The values coded 0, 1, ... of a binary or categorical column; None
        for numbers.
    ordered : bool
        Whether a category dtype is ordered.
    likelihood : str or None
        The name of the likelihood plugin that models the column.
    mean, scale : float
        The standardisation of a numeric column: the model sees
        ``(x - mean) / scale`` (0 and 1: not standardised).
    """

    name: object
    dtype: str
    kind: str
    categories: Optional[tuple] = None
    ordered: bool = False
    likelihood: Optional[str] = None
    mean: float = 0.0
    scale: float = 1.0

    @property
    def standardized(self):
        """Whether the model sees the column standardised."""
        return self.mean != 0.0 or self.scale != 1.0


class TableSchema:
    """The columns of a table as a VAE models them: see :mod:`skvae._table`.

    Made by :func:`fit_table` (``fit`` on a DataFrame), held by a fitted
    estimator as ``table_schema_``.

    Parameters
    ----------
    columns : sequence of TableColumn

    Attributes
    ----------
    columns : tuple of TableColumn

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"mass": [3750.0, 3800.0, 3250.0],
    ...                       "island": ["Dream", "Biscoe", "Dream"]})
    >>> schema = TableSchema([describe_column("mass", frame["mass"]),
    ...                       describe_column("island", frame["island"])])
    >>> schema.kinds
    {'mass': 'numeric', 'island': 'categorical'}
    >>> schema.encode(frame)
    array([[3.75e+03, 1.00e+00],
           [3.80e+03, 0.00e+00],
           [3.25e+03, 1.00e+00]])
    >>> schema.decode(schema.encode(frame)).equals(frame)
    True
    >>> TableSchema.from_dict(schema.to_dict()) == schema
    True
    """

    def __init__(self, columns, polars_dtypes=None):
        self.columns = tuple(columns)
        #: The polars dtype names of a table read from a polars DataFrame, else None.
        self.polars_dtypes = None if polars_dtypes is None else tuple(polars_dtypes)

    def __len__(self):
        return len(self.columns)

    def __eq__(self, other):
        return isinstance(other, TableSchema) and (
            (self.columns, self.polars_dtypes) == (other.columns, other.polars_dtypes)
        )

    def __hash__(self):
        return hash((self.columns, self.polars_dtypes))

    def __repr__(self):
        lines = [f"    {_describe(c)}," for c in self.columns]
        return "TableSchema([\n" + "\n".join(lines) + "\n])"

    @property
    def names(self):
        """The column names, in order."""
        return [c.name for c in self.columns]

    @property
    def kinds(self):
        """``{name: kind}`` of each column."""
        return {c.name: c.kind for c in self.columns}

    @property
    def likelihoods(self):
        """``{name: likelihood plugin name}`` of each column."""
        return {c.name: c.likelihood for c in self.columns}

    @property
    def dtype(self):
        """The float dtype of the model's view: float32 when every column is float32."""
        if all(c.dtype == "float32" for c in self.columns):
            return np.dtype(np.float32)
        return np.dtype(np.float64)

    # ------------------------------------------------------------ frame -> X
    def encode(self, frame):
        """Return the model's view of ``frame``: one float column per column, NaN if missing.

        Parameters
        ----------
        frame : pandas.DataFrame
            The same columns as in ``fit``, in the same order.

        Returns
        -------
        X : ndarray of shape (n_rows, n_columns)
            float32 when every column of the schema is float32, else float64.

        Raises
        ------
        ValueError
            When a categorical or binary column holds a value not seen in
            ``fit``, or a numeric column holds something that is not a
            number.
        """
        return self.standardize(self.codes(frame))

    def codes(self, frame):
        """Return ``frame`` as numbers and codes, not standardised (float64)."""
        if frame.shape[1] != len(self):
            raise ValueError(
                f"X has {frame.shape[1]} columns, but the table was fitted with {len(self)}."
            )
        out = np.empty(frame.shape, dtype=np.float64)
        for j, column in enumerate(self.columns):
            series = frame.iloc[:, j]
            if _coded_numbers(column):
                out[:, j] = _nearest_codes(_numbers(series, column), column.categories)
            elif column.kind == "numeric" or column.dtype in NUMERIC_DTYPES:
                out[:, j] = _numbers(series, column)  # numbers, or 0/1 numbers as they are
            else:
                out[:, j] = _codes(series, column)
        return out

    def standardize(self, X):
        """Return numbers and codes ``X`` as the model sees them (in :attr:`dtype`)."""
        X = np.array(X, dtype=np.float64, copy=True)
        for j, column in enumerate(self.columns):
            if column.standardized:
                X[:, j] = (X[:, j] - column.mean) / column.scale
        return X.astype(self.dtype, copy=False)

    # ------------------------------------------------------------ X -> frame
    def decode(self, X, index=None):
        """Return the frame that the model's output ``X`` stands for.

        Numeric columns are un-standardised (integer columns rounded and
        clipped to their dtype's range); a binary column's value (a
        probability, or a draw) becomes its first category below 0.5 and
        its second from 0.5; a categorical column's code becomes its
        category.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_columns)
        index : pandas index, default=None
            The rows' index (default: 0, 1, ...).

        Returns
        -------
        frame : pandas.DataFrame
            The schema's columns, in order, with their dtypes and categories.
        """
        import pandas as pd

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self):
            raise ValueError(f"Expected {len(self)} columns to decode, got shape {X.shape}.")
        data = {j: _decoded(X[:, j], column) for j, column in enumerate(self.columns)}
        frame = pd.DataFrame(data, index=index)
        frame.columns = column_index(self.names)
        return frame

    def output(self, frame):
        """``frame`` (a decoded pandas frame) as the kind of frame the table was read from.

        A polars DataFrame with the polars dtypes of ``fit`` when the table
        came from one, else ``frame`` itself.
        """
        if self.polars_dtypes is None:
            return frame
        return to_polars(frame, self.polars_dtypes, self.columns)

    # ----------------------------------------------------------- likelihood
    def column_info(self, X):
        """One :class:`skvae.base.Column` per column, with the range of its values in ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_columns)
            The numbers and codes of the rows (NaN where missing).

        Returns
        -------
        columns : list of skvae.base.Column
        """
        low, high = _column_ranges(X)
        return [
            Column(c.name if isinstance(c.name, str) else str(c.name), c.kind,
                   c.categories, lo, hi)
            for c, lo, hi in zip(self.columns, low, high)
        ]

    def check_likelihood(self, likelihood):
        """Raise ValueError unless ``likelihood`` models the columns the schema says.

        Checks that each column's plugin (``column_plugins``) has the name
        the schema records, so that a model file cannot pair a schema with
        another model.
        """
        plugins = column_plugins(likelihood, len(self))
        for column, plugin in zip(self.columns, plugins):
            if column.likelihood != getattr(plugin, "name", None):
                raise ValueError(
                    f"the table schema says column {column.name!r} is modelled by "
                    f"{column.likelihood!r}, but the likelihood gives it "
                    f"{getattr(plugin, 'name', None)!r}"
                )

    # ------------------------------------------------------------------ JSON
    def to_dict(self):
        """Return the schema as JSON data (lists, str, int, float, bool, None)."""
        data = {
            "columns": [
                {
                    "name": c.name,
                    "dtype": c.dtype,
                    "kind": c.kind,
                    "categories": None if c.categories is None else list(c.categories),
                    "ordered": bool(c.ordered),
                    "likelihood": c.likelihood,
                    "mean": float(c.mean),
                    "scale": float(c.scale),
                }
                for c in self.columns
            ]
        }
        if self.polars_dtypes is not None:
            data["polars_dtypes"] = list(self.polars_dtypes)
        return data

    @classmethod
    def from_dict(cls, data):
        """Build a schema from :meth:`to_dict`'s JSON data, checking every field.

        Written for data from a file that may be hostile: each column must
        have exactly the fields of :meth:`to_dict`, a name that is a str or
        an int, a dtype among :data:`DTYPES` (never parsed by numpy or
        pandas otherwise), a kind among :data:`KINDS` that fits the dtype,
        categories (for binary and categorical columns only) that are
        unique str, int, finite float or bool values (two for a binary
        column), and a finite mean and positive scale.

        Raises
        ------
        ValueError
            Naming the column and the field that is wrong.
        """
        if not isinstance(data, dict) or not {"columns"} <= set(data) <= {
            "columns", "polars_dtypes"
        }:
            raise ValueError(
                "a table schema must be a dict with the one key 'columns' (and "
                "'polars_dtypes')"
            )
        columns = data["columns"]
        if not isinstance(columns, list) or not columns:
            raise ValueError("a table schema's 'columns' must be a non-empty list")
        columns = [_column_from_dict(entry, j) for j, entry in enumerate(columns)]
        polars = data.get("polars_dtypes")
        if polars is not None and not (
            isinstance(polars, list) and len(polars) == len(columns)
            and all(isinstance(d, str) and d in POLARS_DTYPES for d in polars)
        ):
            raise ValueError(
                f"a table schema's 'polars_dtypes' must list one of {sorted(POLARS_DTYPES)} "
                "per column"
            )
        return cls(columns, polars)


# ----------------------------------------------------------------- fitting
def is_dataframe(X):
    """Whether ``X`` is a pandas DataFrame (pandas is not imported for this)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(X, pd.DataFrame)


def is_polars_frame(X):
    """Whether ``X`` is a polars DataFrame (polars is not imported for this)."""
    pl = sys.modules.get("polars")
    return pl is not None and isinstance(X, pl.DataFrame)


def as_pandas(X):
    """``X`` as a pandas DataFrame, and the polars dtype names of a polars one (else None).

    A polars DataFrame is read column by column (no pyarrow): integers as
    pandas' nullable integers, booleans as ``"boolean"``, floats as floats
    (null as NaN), strings as objects, Categorical and Enum as categories;
    other dtypes are a TypeError naming the column. Anything else is
    returned as it is.

    Examples
    --------
    >>> import polars as pl  # doctest: +SKIP
    >>> frame, dtypes = as_pandas(pl.DataFrame({"a": [1, None], "b": ["x", "y"]}))  # doctest: +SKIP
    >>> dtypes, [str(d) for d in frame.dtypes]  # doctest: +SKIP
    (['Int64', 'String'], ['Int64', 'object'])
    """
    if not is_polars_frame(X):
        return X, None
    import pandas as pd

    dtypes = polars_dtype_names(X)
    frame = pd.DataFrame({j: _polars_values(series, dtype) for j, (series, dtype)
                          in enumerate(zip(X.iter_columns(), dtypes))})
    frame.columns = pd.Index(X.columns)
    return frame, dtypes


def polars_dtype_names(X):
    """The dtype name of each column of a polars DataFrame, or a TypeError naming one
    that a table cannot hold (see :data:`POLARS_DTYPES`)."""
    names = []
    for series in X.iter_columns():
        dtype = series.dtype
        name = dtype.__name__ if isinstance(dtype, type) else type(dtype).__name__
        name = {"Utf8": "String"}.get(name, name)
        if name not in POLARS_DTYPES:
            raise TypeError(
                f"Column {series.name!r} has the polars dtype {dtype}, which a table "
                "cannot hold: skvae models numbers, booleans, strings and categories. "
                "Cast it first, e.g. pl.col(name).cast(pl.String), or to a number."
            )
        names.append(name)
    return names


#: The polars dtypes a table may hold, by name, and the pandas dtype each is read as
#: (None: read by _polars_column's own rule).
POLARS_DTYPES = {
    **{f"{p}Int{b}": f"{p}Int{b}" for p in ("", "U") for b in (8, 16, 32, 64)},
    "Float32": "float32", "Float64": "float64", "Boolean": "boolean", "String": "object",
    "Categorical": "category", "Enum": "category",
}


def _polars_values(series, name):
    """The values of a polars Series of dtype ``name`` as a pandas array."""
    import pandas as pd

    values = series.to_list()
    if name in ("Categorical", "Enum"):
        # An Enum's categories are its dtype's; a Categorical's, the values it holds.
        categories = list(series.dtype.categories) if name == "Enum" else (
            sorted({v for v in values if v is not None}))
        return pd.Categorical(values, categories=categories)
    if name.startswith("Float"):
        return series.to_numpy().astype(POLARS_DTYPES[name], copy=False)
    if name == "String":
        return pd.Series(values, dtype=object)
    return pd.array(values, dtype=POLARS_DTYPES[name])


def to_polars(frame, dtypes, columns):
    """A decoded pandas frame as a polars DataFrame of the polars dtypes ``dtypes``."""
    import polars as pl

    data = []
    for j, (dtype, column) in enumerate(zip(dtypes, columns)):
        series = frame.iloc[:, j]
        values = series.astype(object).where(series.notna(), None).to_list()
        if dtype == "Enum":
            target = pl.Enum([str(c) for c in column.categories])
        else:
            target = getattr(pl, dtype)
        data.append(pl.Series(str(frame.columns[j]), values, dtype=target))
    return pl.DataFrame(data)


def has_text_columns(frame):
    """Whether a pandas or polars frame has a column that is not numbers or booleans."""
    if is_polars_frame(frame):
        return not all(d.is_numeric() or d == sys.modules["polars"].Boolean
                       for d in frame.dtypes)
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return not all(is_numeric_dtype(d) or is_bool_dtype(d) for d in frame.dtypes)


def has_non_number_columns(frame):
    """Whether a pandas frame has a column that is not real or integer numbers.

    Booleans, categories, objects and strings count; a frame of numbers
    alone does not (``likelihood="auto"`` reads it as an array, so that a
    DataFrame and its array give the same model, as scikit-learn expects).

    Examples
    --------
    >>> import pandas as pd
    >>> has_non_number_columns(pd.DataFrame({"a": [1.0], "b": [2]}))
    False
    >>> has_non_number_columns(pd.DataFrame({"a": [1.0], "b": [True]}))
    True
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return not all(is_numeric_dtype(d) and not is_bool_dtype(d) for d in frame.dtypes)


def describe_column(name, series):
    """Return the :class:`TableColumn` of a pandas Series (no likelihood, no scaling yet).

    Parameters
    ----------
    name : str or int
        The column's label.
    series : pandas.Series

    Returns
    -------
    column : TableColumn

    Raises
    ------
    TypeError
        For a dtype a table cannot hold (dates, intervals, complex numbers),
        or categories that are not strings, numbers or booleans.
    ValueError
        For a text column with no observed value (no category to learn).

    Examples
    --------
    >>> import pandas as pd
    >>> describe_column("smoker", pd.Series([0, 1, 1]))
    TableColumn(name='smoker', dtype='int64', kind='binary', categories=(0, 1), \
ordered=False, likelihood=None, mean=0.0, scale=1.0)
    """
    dtype = _dtype_name(name, series.dtype)
    if dtype == "category":
        categories = _category_values(name, series.dtype.categories.tolist())
        return TableColumn(name, dtype, "categorical", categories, bool(series.dtype.ordered))
    if dtype in BOOL_DTYPES:
        return TableColumn(name, dtype, "binary", (False, True))
    if dtype in TEXT_DTYPES:
        return _text_column(name, dtype, series)
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    observed = values[~np.isnan(values)]
    if observed.size and np.isin(observed, (0.0, 1.0)).all():
        categories = (0.0, 1.0) if dtype.lower().startswith("float") else (0, 1)
        return TableColumn(name, dtype, "binary", categories)
    return TableColumn(name, dtype, "numeric")


def auto_likelihood(columns):
    """The likelihood ``likelihood="auto"`` gives these columns (by :data:`AUTO_LIKELIHOODS`).

    One plugin name when every column has the same; else a
    ``ColumnLikelihood`` of the groups, on column positions.

    Examples
    --------
    >>> auto_likelihood([TableColumn("a", "float64", "numeric")])
    'gaussian'
    """
    names = [AUTO_LIKELIHOODS[c.kind] for c in columns]
    if len(set(names)) == 1:
        return names[0]
    groups = {}
    for j, name in enumerate(names):
        groups.setdefault(name, []).append(j)
    pairs = [(name, groups[name]) for name in AUTO_LIKELIHOODS.values() if name in groups]
    return get_registry().get("likelihood", COLUMNS_LIKELIHOOD)(pairs)


def column_plugins(likelihood, n_features, names=None):
    """The plugin of each of ``n_features`` columns.

    A ``ColumnLikelihood`` says it (its ``column_plugins``; ``names``, the
    columns' names, resolve the names of one not configured yet); any other
    likelihood models every column.
    """
    method = getattr(likelihood, "column_plugins", None)
    if method is None:
        return [likelihood] * n_features
    return list(method(n_features) if names is None else method(n_features, names))


def fit_table(frame, likelihood):
    """Fit the schema of ``frame`` and the likelihood that models it.

    Parameters
    ----------
    frame : pandas.DataFrame
    likelihood : "auto", str, Likelihood subclass or instance
        The estimator's ``likelihood`` parameter: "auto" and a
        ``ColumnLikelihood`` without pairs pick per column
        (:func:`auto_likelihood`).

    Returns
    -------
    schema : TableSchema
        With each column's likelihood and standardisation.
    likelihood : Likelihood
        Configured on the columns (``configure``).
    X : ndarray of shape (n_rows, n_columns)
        The model's view of ``frame``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"mass": [3750.0, 3800.0, 3250.0, 4000.0]})
    >>> schema, likelihood, X = fit_table(frame, "auto")
    >>> likelihood
    Gaussian()
    >>> schema.likelihoods
    {'mass': 'gaussian'}
    """
    schema = TableSchema(describe_column(_column_name(name), frame.iloc[:, j])
                         for j, name in enumerate(frame.columns))
    raw = schema.codes(frame)
    choose = _is_auto(likelihood) or _is_columns_without_pairs(likelihood)
    if choose:
        schema = TableSchema(_discrete(column, raw[:, j])
                             for j, column in enumerate(schema.columns))
        likelihood = auto_likelihood(schema.columns)
    else:
        if getattr(likelihood, "remainder", None) == "auto":
            likelihood, schema = _with_auto_remainder(likelihood, schema, raw)
        schema = _with_named_categories(resolve_plugin("likelihood", likelihood), schema, raw)
    raw = schema.codes(frame)
    configured = configure(resolve_plugin("likelihood", likelihood), schema.column_info(raw))
    plugins = column_plugins(configured, len(schema))
    schema = TableSchema(
        _scaled(column, raw[:, j], plugin) for j, (column, plugin)
        in enumerate(zip(schema.columns, plugins))
    )
    return schema, configured, schema.standardize(raw)


def array_columns(X, names=None):
    """One :class:`skvae.base.Column` per column of an array (or of a HostRows' chunks).

    Kind "numeric", no categories, low and high the observed (non-NaN)
    minimum and maximum (NaN for a column with none); names ``x0``, ``x1``...
    unless given.

    Examples
    --------
    >>> array_columns(np.array([[0.0, 2.0], [1.0, np.nan]]))[1]
    Column(name='x1', kind='numeric', categories=None, low=2.0, high=2.0)
    """
    chunks = X.chunks() if hasattr(X, "chunks") else [X]
    low = high = None
    for chunk in chunks:
        lo, hi = _column_ranges(np.asarray(chunk, dtype=np.float64))
        low = lo if low is None else np.fmin(low, lo)
        high = hi if high is None else np.fmax(high, hi)
    n = X.shape[1]
    names = [f"x{j}" for j in range(n)] if names is None else [str(v) for v in names]
    return [Column(names[j], "numeric", None, float(low[j]), float(high[j])) for j in range(n)]


def configure(likelihood, columns):
    """``likelihood.configure(columns)``, checked to return a likelihood."""
    configured = likelihood.configure(columns)
    if type(configured).kind != "likelihood":
        raise TypeError(
            f"{type(likelihood).__name__}.configure returned {configured!r}, not a likelihood."
        )
    return configured


# ------------------------------------------------------------------ helpers
def _is_auto(spec):
    return isinstance(spec, str) and spec == "auto"


def _with_auto_remainder(likelihood, schema, raw):
    """A ``ColumnLikelihood(remainder="auto")`` completed with "auto"'s parts, and the schema.

    The columns that ``likelihood`` does not name get what
    ``likelihood="auto"`` gives them (a discrete numeric column becomes
    categorical over its values, :func:`_discrete`); the returned
    likelihood names every column (``remainder=None``): the user's pairs,
    then one pair per plugin of the remainder, on positions.
    """
    names = [str(c.name) for c in schema.columns]
    named = set(likelihood.named_positions(len(schema), names))
    columns = [column if j in named else _discrete(column, raw[:, j])
               for j, column in enumerate(schema.columns)]
    groups = {}
    for j, column in enumerate(columns):
        if j not in named:
            groups.setdefault(AUTO_LIKELIHOODS[column.kind], []).append(j)
    params = dict(likelihood.get_params(deep=False), remainder=None,
                  likelihoods=[*likelihood.likelihoods, *groups.items()])
    return type(likelihood)(**params), TableSchema(columns)


def _with_named_categories(likelihood, schema, raw):
    """``schema`` with each numeric column that a category likelihood models made categorical.

    A column whose plugin has ``models_categories`` (``"categorical"``) gets
    the values observed in ``fit`` as its categories, sorted (ints for an
    integer dtype), as ``OneHotEncoder(categories="auto")`` reads a numeric
    column: the model sees their codes, and outputs are those values. A
    value not seen in ``fit`` is coded as the nearest one, as for a
    discrete column under "auto". A column of exactly two values whose
    plugin has ``models_binary`` (``"bernoulli"``) becomes binary over them
    the same way (codes 0 and 1).
    """
    plugins = column_plugins(likelihood, len(schema), [str(c.name) for c in schema.columns])
    columns = []
    for j, (column, plugin) in enumerate(zip(schema.columns, plugins)):
        if column.kind == "numeric" and getattr(plugin, "models_categories", False):
            column = _numbers_as_categories(column, raw[:, j])
            _warn_if_mostly_distinct(column, raw[:, j])
        elif column.kind == "numeric" and getattr(plugin, "models_binary", False):
            column = _two_numbers_as_binary(column, raw[:, j])
        columns.append(column)
    return TableSchema(columns)


def _numbers_as_categories(column, values):
    """A numeric column as categorical over its observed values, or a ValueError."""
    distinct = np.unique(values[~np.isnan(values)])
    if distinct.size == 0:
        raise ValueError(
            f"Column {column.name!r} is modelled by a categorical likelihood, but no value "
            "of it is observed in fit: there is no category to learn. Drop the column, "
            "or give it another likelihood."
        )
    if not np.isfinite(distinct).all():
        raise ValueError(
            f"Column {column.name!r} holds infinity, which cannot be a category. Replace "
            "it with a finite number, or with NaN to mark the entry missing."
        )
    cast = int if _numpy_int(column.dtype) is not None else float
    return column._replace(kind="categorical", categories=tuple(cast(v) for v in distinct))


def _warn_if_mostly_distinct(column, values):
    """Warn when a numeric column made categorical has more categories than half its rows.

    A likely mistake (a measurement named for ``"categorical"``): each value
    becomes a category seen once or twice, and the model grows with them.
    """
    observed = int(np.count_nonzero(~np.isnan(values)))
    k = len(column.categories)
    if k > MAX_DISCRETE_VALUES and 2 * k > observed:
        warnings.warn(
            f"Column {column.name!r} is modelled as categorical over its values, and {k} of "
            f"its {observed} observed values are distinct: each category is seen once or "
            "twice, and the model has an output per category. If it holds measurements, "
            "name it for 'gaussian' instead.",
            UserWarning, stacklevel=user_stacklevel(),
        )


def _two_numbers_as_binary(column, values):
    """A numeric column of exactly two observed values as binary over them, else as it is."""
    if np.unique(values[~np.isnan(values)]).size != 2:
        return column
    return _numbers_as_categories(column, values)._replace(kind="binary")


def _is_columns_without_pairs(spec):
    """Whether ``spec`` is ``ColumnLikelihood()`` (or its name or class): choose per column."""
    if isinstance(spec, str):
        return spec == COLUMNS_LIKELIHOOD
    if getattr(spec, "name", None) != COLUMNS_LIKELIHOOD:
        return False
    return isinstance(spec, type) or getattr(spec, "likelihoods", None) is None


def _column_name(name):
    """A column label as a str or an int (what a model file holds), or a TypeError."""
    if isinstance(name, str):
        return name
    if isinstance(name, Integral) and not isinstance(name, (bool, np.bool_)):
        return int(name)
    raise TypeError(
        f"The column label {name!r} is neither a string nor an int: a table's columns "
        "need such labels (a model file holds them as JSON). Rename the columns, e.g. "
        "df.columns = [str(c) for c in df.columns]."
    )


def _discrete(column, values):
    """``column`` as categorical over its values when it is a discrete numeric column.

    Discrete: numeric, with at most :data:`MAX_DISCRETE_VALUES` distinct
    observed values and at least :data:`MIN_DISCRETE_COUNT` observed rows per
    value. Its categories are those values (ints for an integer dtype).
    """
    if column.kind != "numeric":
        return column
    observed = values[~np.isnan(values)]
    distinct = np.unique(observed)
    if not 0 < distinct.size <= MAX_DISCRETE_VALUES or (
        observed.size < MIN_DISCRETE_COUNT * distinct.size
    ):
        return column
    return _numbers_as_categories(column, values)


def _nearest_codes(values, categories):
    """The code of the nearest category of each number (NaN stays NaN).

    Examples
    --------
    >>> _nearest_codes(np.array([1.0, 2.4, 2.6, 9.0, np.nan]), (1, 2, 3))
    array([ 0.,  1.,  2.,  2., nan])
    """
    grid = np.asarray(categories, dtype=np.float64)
    right = np.clip(np.searchsorted(grid, values), 1, grid.size - 1) if grid.size > 1 else (
        np.zeros(values.shape, dtype=np.intp))
    if grid.size > 1:
        left = right - 1
        right = np.where(np.abs(values - grid[left]) <= np.abs(grid[right] - values), left, right)
    codes = right.astype(np.float64)
    codes[np.isnan(values)] = np.nan
    return codes


def _scaled(column, values, plugin):
    """``column`` with its likelihood's name and, when it asks for it, its standardisation."""
    column = column._replace(likelihood=getattr(plugin, "name", None))
    if column.kind != "numeric" or not getattr(plugin, "standardize", False):
        return column
    observed = values[~np.isnan(values)]
    if not observed.size:
        return column
    mean, scale = float(np.mean(observed)), float(np.std(observed))
    if not (math.isfinite(mean) and math.isfinite(scale)):
        return column
    return column._replace(mean=mean, scale=scale if scale > 0 else 1.0)


def _column_ranges(X):
    """Per-column (min, max) of the non-NaN values; NaN for a column with none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        if not X.shape[0]:
            nan = np.full(X.shape[1], np.nan)
            return nan, nan
        return np.nanmin(X, axis=0), np.nanmax(X, axis=0)


def _dtype_name(name, dtype):
    """The allowlisted name of a column's dtype, or a TypeError saying what to do."""
    text = str(dtype)
    if text == "string" or text.startswith("string["):
        text = "string"
    if text in DTYPES:
        return text
    raise TypeError(
        f"Column {name!r} has the dtype {dtype}, which a table cannot hold: skvae models "
        "numbers, booleans, strings and categories. Convert the column first, e.g. "
        "dates to numbers (df[col].astype('int64') or a year), or to strings "
        "(df[col].astype(str))."
    )


def _category_value(name, value):
    """A category as a plain str, int, float or bool, or a TypeError."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real) and math.isfinite(value):
        return float(value)
    raise TypeError(
        f"Column {name!r} holds the value {value!r} ({type(value).__name__}): the "
        "categories of a table must be strings, numbers or booleans, so that a model "
        f"file holds them as JSON. Convert the column first, e.g. df[{name!r}].astype(str)."
    )


def _category_values(name, values):
    return tuple(_category_value(name, v) for v in values)


def _sort_key(value):
    """Booleans, then numbers, then strings, each in their order."""
    if isinstance(value, bool):
        return (0, value, "")
    if isinstance(value, (int, float)):
        return (1, value, "")
    return (2, 0, value)


def _text_column(name, dtype, series):
    """The column of an object or string series: binary if its values are booleans."""
    values = _category_values(name, series.dropna().unique().tolist())
    if not values:
        raise ValueError(
            f"Column {name!r} has no observed value: its categories cannot be learned. "
            "Drop it, or give it a pandas CategoricalDtype that lists its categories."
        )
    if all(isinstance(v, bool) for v in values):
        return TableColumn(name, dtype, "binary", (False, True))
    return TableColumn(name, dtype, "categorical", tuple(sorted(set(values), key=_sort_key)))


def _numbers(series, column):
    """A numeric column's values as float64, NaN where missing."""
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError(
            f"Column {column.name!r} held numbers in fit ({column.dtype}), but now holds "
            f"values that are not numbers (dtype {series.dtype}). Pass the columns as "
            "they were in fit."
        ) from None


def _codes(series, column):
    """A binary or categorical column's codes as float64, NaN where missing."""
    import pandas as pd

    missing = series.isna().to_numpy()
    index = pd.Index(list(column.categories), dtype=object)
    if isinstance(series.dtype, pd.CategoricalDtype):
        mapping = index.get_indexer(pd.Index(series.cat.categories.tolist(), dtype=object))
        raw = series.cat.codes.to_numpy()
        codes = np.where(raw >= 0, mapping[np.maximum(raw, 0)], -1)
    else:
        codes = index.get_indexer(series.to_numpy(dtype=object))
    unseen = (codes < 0) & ~missing
    if unseen.any():
        values = pd.unique(series[unseen].astype(object))
        shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        known = ", ".join(repr(v) for v in column.categories[:10])
        raise ValueError(
            f"Column {column.name!r} holds {len(values)} value(s) not seen in fit: {shown}. "
            f"The model knows {len(column.categories)} categories ({known}"
            f"{', ...' if len(column.categories) > 10 else ''}). Give the column a pandas "
            "CategoricalDtype listing every category before fit, or drop or replace these "
            "rows (NaN marks a missing value, with missing_values=np.nan)."
        )
    out = codes.astype(np.float64)
    out[missing] = np.nan
    return out


def _numpy_int(dtype):
    """The numpy integer dtype of an integer column's dtype name (``"Int64"`` -> int64)."""
    return np.dtype(dtype.lower()) if dtype in _NULLABLE_INT_DTYPES or dtype in _INT_DTYPES \
        else None


def _decoded(values, column):
    """One column of the model's output as a pandas Series of the column's dtype.

    NaN (no value) becomes a missing entry: NaN, None or ``pd.NA`` as the
    dtype holds it (a float column for numpy integers, object for numpy
    booleans).
    """
    import pandas as pd

    dtype = pd.api.types.pandas_dtype(column.dtype)
    missing = np.isnan(values)
    if column.kind == "numeric":
        values = values * column.scale + column.mean
        integer = _numpy_int(column.dtype)
        if integer is None:
            return pd.Series(values, dtype=dtype)
        info = np.iinfo(integer)
        values = np.clip(np.rint(values), float(info.min), float(info.max))
        if not missing.any():
            return pd.Series(values.astype(integer), dtype=dtype)
        series = pd.Series(values)
        return series.astype(dtype) if column.dtype in _NULLABLE_INT_DTYPES else series
    k = len(column.categories)
    if column.kind == "binary":
        codes = (values >= 0.5).astype(np.intp)
    else:
        codes = np.clip(np.rint(np.nan_to_num(values)), 0, k - 1).astype(np.intp)
    codes[missing] = -1
    if column.dtype == "category":
        categories = pd.CategoricalDtype(list(column.categories), ordered=column.ordered)
        return pd.Series(pd.Categorical.from_codes(codes, dtype=categories))
    table = np.empty(k + 1, dtype=object)
    table[:k] = list(column.categories)
    table[k] = None  # code -1: missing
    if missing.any() and (column.dtype == "bool" or column.dtype in _INT_DTYPES):
        # numpy booleans and integers hold no missing value
        dtype = np.dtype(object) if column.dtype == "bool" else np.dtype(np.float64)
    return pd.Series(table[codes], dtype=dtype)


def column_index(names):
    """A pandas Index of column labels, as given (strings, ints or a mix).

    Examples
    --------
    >>> list(column_index(["a", 0]))
    ['a', 0]
    """
    import pandas as pd

    if all(isinstance(n, str) for n in names):
        return pd.Index(names)
    return pd.Index(names, dtype=object) if not all(
        isinstance(n, Integral) for n in names) else pd.Index(names, dtype=np.int64)


def _describe(column):
    """One line of a schema's repr."""
    text = f"{column.name!r}: {column.dtype}, {column.kind}"
    if column.categories is not None:
        cats = ", ".join(repr(v) for v in column.categories[:6])
        text += f" [{cats}{', ...' if len(column.categories) > 6 else ''}]"
    text += f", {column.likelihood}"
    if column.standardized:
        text += f" (standardised: mean {column.mean:.6g}, scale {column.scale:.6g})"
    return text


_FIELDS = set(TableColumn._fields)


def _column_from_dict(entry, j):
    """A :class:`TableColumn` from JSON data, every field checked (see ``from_dict``)."""
    where = f"table schema column {j}"
    if not isinstance(entry, dict) or set(entry) != _FIELDS:
        raise ValueError(f"{where} must be a dict with the keys {sorted(_FIELDS)}")
    name, dtype, kind = entry["name"], entry["dtype"], entry["kind"]
    if not (isinstance(name, str) or (isinstance(name, int) and not isinstance(name, bool))):
        raise ValueError(f"{where}: the name must be a str or an int, got {name!r}")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"{where}: the dtype {dtype!r} is not one a table may hold")
    if kind not in KINDS or not _kind_fits(kind, dtype):
        raise ValueError(f"{where}: the kind {kind!r} does not fit the dtype {dtype!r}")
    categories = _categories_from_json(entry["categories"], kind, where)
    if not isinstance(entry["ordered"], bool):
        raise ValueError(f"{where}: 'ordered' must be true or false")
    likelihood = entry["likelihood"]
    if likelihood is not None and not isinstance(likelihood, str):
        raise ValueError(f"{where}: the likelihood must be a plugin name or null")
    mean, scale = entry["mean"], entry["scale"]
    if not (_is_finite(mean) and _is_finite(scale) and scale > 0):
        raise ValueError(f"{where}: mean and scale must be finite numbers, scale > 0")
    column = TableColumn(name, dtype, kind, categories, entry["ordered"], likelihood,
                         float(mean), float(scale))
    return _check_numeric_categories(column, where)


def _kind_fits(kind, dtype):
    if dtype == "category":
        return kind == "categorical"
    if dtype in BOOL_DTYPES:
        return kind == "binary"
    if dtype in TEXT_DTYPES:
        return kind in ("binary", "categorical")
    return kind in KINDS


def _is_finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (
        math.isfinite(value)
    )


def _categories_from_json(values, kind, where):
    if kind == "numeric":
        if values is not None:
            raise ValueError(f"{where}: a numeric column has no categories")
        return None
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: the categories must be a non-empty list")
    if kind == "binary" and len(values) != 2:
        raise ValueError(f"{where}: a binary column has 2 categories, got {len(values)}")
    for value in values:
        if not (isinstance(value, (str, bool, int)) or _is_finite(value)):
            raise ValueError(
                f"{where}: the category {value!r} is not a str, int, finite float or bool"
            )
    if len(set(values)) != len(values):  # 1, 1.0 and True are one key
        raise ValueError(f"{where}: the categories repeat a value")
    return tuple(values)


def _coded_numbers(column):
    """Whether a numeric-dtype column is modelled by the codes of its values (not the values).

    A categorical one (discrete, or named for a likelihood of categories), and
    a binary one of two values other than 0 and 1; a 0/1 column is its codes.
    """
    if column.dtype not in NUMERIC_DTYPES or column.kind == "numeric":
        return False
    return column.kind == "categorical" or tuple(column.categories) != (0, 1)


def _check_numeric_categories(column, where):
    """A coded numeric column's categories: increasing numbers (what its codes need)."""
    if column.kind == "numeric" or column.dtype not in NUMERIC_DTYPES:
        return column
    values = column.categories
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) or (
        any(b <= a for a, b in zip(values, values[1:]))
    ):
        raise ValueError(
            f"{where}: the categories of a numeric column must be increasing numbers"
        )
    return column
