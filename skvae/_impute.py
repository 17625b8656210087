"""VAEImputer: missing-value imputation with a VAE, in ``sklearn.impute``'s conventions.

A :class:`~skvae.VAETransformer` subclass fitted with ``missing_values=np.nan``
(MIWAE, Mattei and Frellsen 2019: the likelihood over the observed entries,
the encoder sees the zero-filled row with its mask) whose ``transform``
returns the completed data, as ``SimpleImputer``, ``KNNImputer`` and
``IterativeImputer`` do: each missing entry filled with the importance-
weighted conditional mean E[x_miss | x_obs] (single imputation), or, with
``sample_posterior=True``, with one draw from p(x_miss | x_obs) per call
(multiple imputation). ``add_indicator`` appends the missingness indicator
columns, ``keep_empty_features`` keeps the features with no observed value
in ``fit`` (filled with 0), as in scikit-learn's imputers.

Why a subclass rather than a wrapper holding a ``VAETransformer`` in
``vae_``: the imputer *is* the fitted VAE (one set of weights, one
``history_``), so that it saves and loads with :func:`skvae.save` /
:func:`skvae.load`, resumes from checkpoints, continues with ``partial_fit``
and ``warm_start``, and scores rows (``score_samples``, ``score``: the
bound of log p(x_obs), which ranks a ``GridSearchCV`` without a
``scoring``) with the machinery every skvae estimator shares, and its
parameters are the VAE's own (``n_components``, ``architecture``,
``max_iter``, ...), as ``VAEOutlierDetector`` and the label models have
them. Only ``transform`` changes meaning: the completed data, not the
latent codes (those are :meth:`VAEImputer.encode`); ``inverse_transform``
is the imputers' one (missing entries put back, from the indicator).
"""

import warnings
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_feature_names_in, check_array, check_is_fitted

from . import _data, _io, _table
from ._conditional import _with_vae_parameters
from ._estimator import VAETransformer, _is_nan, validate_data

#: The column-name prefix of the indicator features (as MissingIndicator's).
_INDICATOR_PREFIX = "missingindicator_"


class VAEImputer(VAETransformer):
    """Imputation of missing values with a variational autoencoder (MIWAE).

    ``fit`` trains a VAE on incomplete data: the likelihood is summed over
    the observed entries only, and the encoder sees each row with its
    missing entries set to 0 together with the missingness mask (MIWAE,
    Mattei and Frellsen 2019). ``transform`` fills every missing entry and
    leaves the observed ones unchanged:

    - ``sample_posterior=False`` (single imputation): the conditional mean
      E[x_miss | x_obs], estimated with ``n_impute_draws`` draws
      z_1..z_k ~ q(z | x_obs) and self-normalised importance weights
      w_k proportional to p(x_obs | z_k) p(z_k) / q(z_k | x_obs). The
      draws are fixed, so the result is deterministic and a row's
      completion does not depend on the other rows;
    - ``sample_posterior=True`` (multiple imputation): one plausible
      completion, drawn from p(x_miss | x_obs) by sampling importance
      resampling (pick z_k with probability w_k, then draw
      x ~ p(x | z_k)), different at each call, as ``IterativeImputer``'s
      ``sample_posterior=True`` offers for multiple imputation.

    It follows ``sklearn.impute``'s conventions: ``missing_values``,
    ``add_indicator``, ``keep_empty_features``, ``get_feature_names_out``
    and ``set_output``; it works in a ``Pipeline`` before a classifier and
    in ``GridSearchCV``. It is also a :class:`~skvae.VAETransformer` with
    the same parameters (any architecture, likelihood or prior by name) and
    methods, except that ``transform`` returns the completed data: the
    latent codes are :meth:`encode`. Standardise tables first (the VAE
    starts with unit scales), e.g. ``make_pipeline(StandardScaler(),
    VAEImputer(...))``: ``StandardScaler`` ignores NaN in ``fit``.

    Parameters
    ----------
    {vae_parameters}
    missing_values : np.nan, default=np.nan
        The placeholder of the missing values: NaN (the only one supported;
        replace another marker first, ``np.where(X == -1, np.nan, X)``).
        pandas' ``pd.NA`` in a float column becomes NaN.
    add_indicator : bool, default=False
        Append the missingness indicator (1.0 where an entry was missing) of
        the features that had missing values in ``fit`` (those of
        ``missing_features_``), after the imputed features, as
        ``sklearn.impute.MissingIndicator`` gives it.
    keep_empty_features : bool, default=False
        Features with no observed value in ``fit`` (``empty_features_``)
        are dropped from ``transform``'s output (False), or kept and their
        missing entries filled with 0 (True), as ``SimpleImputer`` does.
        The VAE itself sees such a feature as the constant 0.
    sample_posterior : bool, default=False
        False: fill with the conditional mean (deterministic). True: fill
        with one draw from p(x_miss | x_obs) at each ``transform`` call
        (multiple imputation: call ``transform`` m times and combine the m
        analyses with Rubin's rules). The draws come from ``random_state``
        and the number of calls so far (``n_completions_``): with an int
        ``random_state`` the i-th call after ``fit`` gives the same
        completions in every run, and calls differ from each other; with
        None every call draws anew. (``IterativeImputer`` behaves alike:
        ``random_state`` fixes the sequence, repeated calls differ.)
    n_impute_draws : int, default=1000
        Draws of z per row for the imputation (k above); the cost of
        ``transform`` grows linearly with it. ``n_importance`` is the number
        of draws per row of the training objective (k > 1: the MIWAE bound).

    Attributes
    ----------
    empty_features_ : ndarray of bool, shape (`n_features_in_`,)
        True for the features with no observed value in ``fit``.
    missing_features_ : ndarray of int
        Indices of the features with missing values in ``fit``: the
        indicator columns of ``add_indicator=True``.
    n_completions_ : ndarray of int64, shape (1,)
        Number of ``transform`` calls with ``sample_posterior=True`` since
        ``fit`` (their draws are seeded by ``random_state`` and this count).
    module_ : torch.nn.Module
        The trained VAE (network, likelihood and prior modules).
    architecture_, likelihood_, prior_ : Plugin
        The resolved plugin configurations.
    optimizer_ : torch.optim.Optimizer
        The optimizer, kept for ``warm_start`` and ``partial_fit``.
    history_ : list of dict
        One dict per epoch, as in :class:`~skvae.VAETransformer`.
    n_iter_ : int
        Number of epochs run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.impute.SimpleImputer : Univariate imputation (mean, median, ...).
    sklearn.impute.KNNImputer : Imputation from the nearest rows.
    sklearn.impute.IterativeImputer : Each feature regressed on the others.
    VAETransformer : The VAE itself (``missing_values=np.nan`` trains it on
        incomplete data too).

    Notes
    -----
    ``fit``, ``partial_fit`` and ``warm_start`` work as in
    :class:`~skvae.VAETransformer`; ``empty_features_`` and
    ``missing_features_`` are set by the first call of a fit (a new fit,
    or the first ``partial_fit``). The ``n_importance`` training draws cost
    k decoder passes per row and step; ``benchmarks/bench_impute.py`` and
    :doc:`/imputation` compare the settings and scikit-learn's imputers.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEImputer
    >>> X = load_digits().data[:300] / 16
    >>> X_missing = X.copy()
    >>> X_missing[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
    >>> imputer = VAEImputer(n_components=4, max_iter=5, random_state=0)
    >>> X_filled = imputer.fit_transform(X_missing)
    >>> X_filled.shape, bool(np.isnan(X_filled).any())
    ((300, 64), False)
    >>> observed = ~np.isnan(X_missing)
    >>> bool((X_filled[observed] == X[observed]).all())
    True
    """

    _parameter_constraints = {
        **VAETransformer._parameter_constraints,
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "sample_posterior": ["boolean"],
        "n_impute_draws": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        architecture="mlp",
        likelihood="auto",
        prior="normal",
        beta=1.0,
        kl_warmup=0.0,
        kl_cycles=1,
        free_bits=0.0,
        n_importance=1,
        max_iter=100,
        batch_size=128,
        learning_rate=1e-3,
        optimizer="adam",
        lr_schedule="constant",
        clip_grad_norm=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        precision="float32",
        compile=False,
        random_state=None,
        verbose=0,
        warm_start=False,
        on_divergence="raise",
        checkpoint_path=None,
        data_on_device="auto",
        missing_values=np.nan,
        add_indicator=False,
        keep_empty_features=False,
        sample_posterior=False,
        n_impute_draws=1000,
    ):
        super().__init__(
            n_components,
            architecture=architecture,
            likelihood=likelihood,
            prior=prior,
            beta=beta,
            kl_warmup=kl_warmup,
            kl_cycles=kl_cycles,
            free_bits=free_bits,
            n_importance=n_importance,
            max_iter=max_iter,
            batch_size=batch_size,
            learning_rate=learning_rate,
            optimizer=optimizer,
            lr_schedule=lr_schedule,
            clip_grad_norm=clip_grad_norm,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            precision=precision,
            compile=compile,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            on_divergence=on_divergence,
            checkpoint_path=checkpoint_path,
            data_on_device=data_on_device,
            missing_values=missing_values,
        )
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.sample_posterior = sample_posterior
        self.n_impute_draws = n_impute_draws

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = bool(self.sample_posterior)
        return tags

    def _check_missing_values(self):
        """NaN marks the missing values; any other ``missing_values`` is an error."""
        if not _is_nan(self.missing_values):
            raise ValueError(
                f"{type(self).__name__} supports missing_values=np.nan only; got "
                f"{self.missing_values!r}. Replace the entries that mark a missing value "
                "by np.nan first, e.g. X = np.where(X == value, np.nan, X)."
            )
        return True

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit the VAE on X, whose NaN entries are missing values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data with NaN at the missing entries (float32 stays
            float32).
        y : None
            Ignored.

        Returns
        -------
        self : VAEImputer
            The fitted imputer.
        """
        return super().fit(X, y)

    def _training_data(self, X, reset, **fit_args):
        """Validated rows; on a new fit, the empty and incomplete features.

        A feature with no observed value is handed to the VAE as the
        constant 0 (in memory; streamed rows, ``data_on_device=False``, with
        such a feature are refused by :class:`VAETransformer`'s check).
        """
        rows = self._training_rows(X, reset)
        if isinstance(rows, np.ndarray):
            observed = (~np.isnan(rows)).sum(axis=0)
        else:
            observed = rows.observed_count
        if reset:
            self.empty_features_ = observed == 0
            self.missing_features_ = np.flatnonzero(observed < rows.shape[0])
            self.n_completions_ = np.zeros(1, dtype=np.int64)
        if isinstance(rows, np.ndarray) and self.empty_features_.any():
            rows = self._zero_empty_features(rows)
        return _data.TrainingData(rows)

    def _zero_empty_features(self, X):
        """A copy of X with the features of ``empty_features_`` set to 0 (as the VAE saw them)."""
        X = np.array(X, copy=True)
        X[:, self.empty_features_] = 0
        return X

    # --------------------------------------------------------------- transform
    def transform(self, X):
        """Impute every missing entry of X; observed entries are returned unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN at the missing entries.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out) or DataFrame
            The completed data, in the dtype of X (float32 or float64); for
            a model fitted on a table, a DataFrame whose columns keep their
            dtypes (observed values unchanged, indicator columns boolean):
            without the features of ``empty_features_`` unless
            ``keep_empty_features``, followed by the indicator columns of
            ``missing_features_`` when ``add_indicator``. With
            ``sample_posterior=True``, one draw of the completion per call.
        """
        check_is_fitted(self)
        if self._fitted_schema() is not None:
            return self._transform_table(X)
        X = self._validate_incomplete(X)
        completed, missing = self._completed(X)
        if not self.keep_empty_features:
            completed = completed[:, ~self.empty_features_]
        if self.add_indicator:
            indicator = missing[:, self.missing_features_].astype(completed.dtype)
            completed = np.hstack([completed, indicator])
        return completed

    def _completed(self, X):
        """Validated X with its missing entries filled (0 in empty features), and the mask."""
        missing = np.isnan(X)
        completed = X.copy()
        to_fill = missing & ~self.empty_features_
        if to_fill.any():
            filled = self._complete_validated(X)
            completed[to_fill] = filled[to_fill]
        completed[:, self.empty_features_] = np.where(
            missing[:, self.empty_features_], 0, completed[:, self.empty_features_]
        )
        return completed, missing

    def _transform_table(self, X):
        """:meth:`transform` of a model fitted on a DataFrame: a DataFrame.

        The frame's own values where observed (unchanged, in the column's
        dtype), the model's completion where missing (numbers in the
        column's scale and dtype, categories from their codes: see
        :meth:`skvae._table.TableSchema.decode`); empty features dropped
        unless ``keep_empty_features``, then the boolean indicator columns
        ``missingindicator_<name>`` with ``add_indicator``.
        """
        import pandas as pd

        codes = self._validate_incomplete(X)
        completed, missing = self._completed(codes)
        frame = _as_frame(X)
        schema = self._fitted_schema()
        decoded = schema.decode(completed)
        columns = [
            frame.iloc[:, j].mask(missing[:, j], decoded.iloc[:, j]) if missing[:, j].any()
            else frame.iloc[:, j]
            for j in range(len(schema))
        ]
        names = list(schema.names)
        if not self.keep_empty_features:
            columns = [c for c, empty in zip(columns, self.empty_features_) if not empty]
            names = [n for n, empty in zip(names, self.empty_features_) if not empty]
        kept = [c for c, empty in zip(schema.columns, self.empty_features_)
                if self.keep_empty_features or not empty]
        if self.add_indicator:
            for j in self.missing_features_:
                columns.append(pd.Series(missing[:, j]))
                names.append(f"{_INDICATOR_PREFIX}{schema.names[j]}")
        return _frame(columns, names, X, schema, kept)

    def _validate_incomplete(self, X):
        """``validate_data`` of the inference methods, NaN allowed; a float array.

        A model fitted on a DataFrame encodes X by its table schema.
        """
        if self._fitted_schema() is not None:
            return self._table_rows(X)
        return validate_data(
            self, X, dtype=[np.float32, np.float64], reset=False, ensure_all_finite="allow-nan"
        )

    def _complete_validated(self, X):
        """The VAE's completion of validated X (every NaN entry filled)."""
        seed = None
        if self.sample_posterior:
            seed = self._draw_seed()
        X = self._zero_empty_features(X) if self.empty_features_.any() else X
        with warnings.catch_warnings():
            # X was validated (feature names included): the plain array is expected.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return self._complete(
                X, n_importance=self.n_impute_draws, sample=self.sample_posterior,
                random_state=seed, validated=self._fitted_schema() is not None,
            )

    def _draw_seed(self):
        """Seed of this ``transform`` call's draws: ``random_state`` and the call count."""
        count = int(self.n_completions_[0])
        self.n_completions_[0] += 1  # in place: transform sets no attribute
        if self.random_state is None:
            return None
        return int(np.random.SeedSequence([self._seed, count]).generate_state(1)[0] >> 1)

    def encode(self, X):
        """Posterior means of the latent codes (``VAETransformer.transform``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; NaN entries are missing.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means, in the dtype of X.
        """
        check_is_fitted(self)
        X = self._validate_incomplete(X)
        if self.empty_features_.any():
            X = self._zero_empty_features(X)
        if self._fitted_schema() is not None:  # X is the table's encoding
            return self._encode_batches(X)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return super().transform(X)

    def active_units(self, X, threshold=0.01):
        """Which latent dimensions are active (variance of :meth:`encode` above ``threshold``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        threshold : float, default=0.01
            Variance threshold.

        Returns
        -------
        active : ndarray of bool, shape (n_components,)
        """
        return np.var(self.encode(X), axis=0) > threshold

    def inverse_transform(self, X):
        """Put the missing values back: NaN wherever the indicator says an entry was missing.

        As ``SimpleImputer.inverse_transform``: needs ``add_indicator=True``,
        and only the features of ``missing_features_`` can be restored
        (the others had no missing value in ``fit``); features dropped as
        empty come back as columns of NaN.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_out)
            The output of :meth:`transform`, indicator columns included.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            X with NaN at the entries that were missing.
        """
        check_is_fitted(self)
        if not self.add_indicator:
            raise ValueError(
                "'inverse_transform' works only when 'VAEImputer' was fitted with "
                f"'add_indicator=True'. Got 'add_indicator={self.add_indicator}' instead."
            )
        n_indicator = self.missing_features_.size
        kept = np.flatnonzero(~self.empty_features_ | self.keep_empty_features)
        if self._fitted_schema() is not None:
            return self._restore_missing_table(X, kept, n_indicator)
        X = check_array(X, dtype=[np.float32, np.float64], ensure_all_finite="allow-nan")
        return self._restore_missing(X, kept, n_indicator)

    def _restore_missing_table(self, X, kept, n_indicator):
        """:meth:`inverse_transform` of a model fitted on a DataFrame: a DataFrame.

        Missing entries are NaN, None or ``pd.NA`` as the column's dtype
        holds them (numpy integers become floats).
        """
        frame = _as_frame(X)
        if frame.shape[1] != kept.size + n_indicator:
            raise ValueError(
                f"X has {frame.shape[1]} features, but inverse_transform expects "
                f"{kept.size + n_indicator} (the output of transform: {kept.size} imputed "
                f"and {n_indicator} indicator columns)."
            )
        schema = self._fitted_schema()
        nothing = schema.decode(np.full((len(frame), len(schema)), np.nan))
        columns = [nothing.iloc[:, j] for j in range(len(schema))]
        for i, j in enumerate(kept):
            columns[j] = frame.iloc[:, i]
        for i, j in enumerate(self.missing_features_):
            columns[j] = columns[j].mask(frame.iloc[:, kept.size + i].to_numpy(dtype=bool))
        return _frame(columns, schema.names, X, schema, schema.columns)

    def _restore_missing(self, X, kept, n_indicator):
        """The body of :meth:`inverse_transform` on a checked 2-D float array."""
        if X.ndim != 2 or X.shape[1] != kept.size + n_indicator:
            raise ValueError(
                f"X has {X.shape[-1] if X.ndim else 0} features, but inverse_transform "
                f"expects {kept.size + n_indicator} (the output of transform: "
                f"{kept.size} imputed and {n_indicator} indicator columns)."
            )
        out = np.full((X.shape[0], self.n_features_in_), np.nan, dtype=X.dtype)
        out[:, kept] = X[:, : kept.size]
        indicator = X[:, kept.size :].astype(bool)
        columns = out[:, self.missing_features_]
        columns[indicator] = np.nan
        out[:, self.missing_features_] = columns
        return out

    def get_feature_names_out(self, input_features=None):
        """Output feature names: the kept input features, then the indicator's.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; None uses ``feature_names_in_`` or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            As ``SimpleImputer`` gives them: the indicator columns are named
            ``missingindicator_<feature>``.
        """
        check_is_fitted(self, "n_features_in_")
        names = _check_feature_names_in(self, input_features)
        kept = names if self.keep_empty_features else names[~self.empty_features_]
        if not self.add_indicator:
            return np.asarray(kept, dtype=object)
        indicator = [_INDICATOR_PREFIX + name for name in names[self.missing_features_]]
        return np.asarray(list(kept) + indicator, dtype=object)

    @property
    def _n_features_out(self):
        return len(self.get_feature_names_out())


def _as_frame(X):
    """X (a pandas or polars DataFrame, or an array) as a pandas frame indexed 0, 1, ..."""
    import pandas as pd

    X = _table.as_pandas(X)[0]
    return (X if _table.is_dataframe(X) else pd.DataFrame(X)).reset_index(drop=True)


def _frame(columns, names, like, schema, table_columns):
    """A DataFrame of the Series ``columns`` labelled ``names``, with ``like``'s index.

    ``table_columns`` are the schema's columns among ``columns`` (the first
    ones; the rest are boolean indicators). A table read from a polars
    DataFrame gives a polars DataFrame (of the polars dtypes of ``fit``).
    """
    import pandas as pd

    out = pd.concat(columns, axis=1, ignore_index=True)
    out.columns = _table.column_index(names)
    if schema.polars_dtypes is not None:
        dtypes = dict(zip(schema.columns, schema.polars_dtypes))
        kinds = [dtypes[c] for c in table_columns]
        extra = len(columns) - len(kinds)
        return _table.to_polars(out, kinds + ["Boolean"] * extra,
                                list(table_columns) + [None] * extra)
    if _table.is_dataframe(like):
        out.index = like.index
    return out


VAEImputer.__doc__ = _with_vae_parameters(VAEImputer.__doc__)

_io.register_estimator(
    VAEImputer, extra_fitted=("empty_features_", "missing_features_", "n_completions_")
)
