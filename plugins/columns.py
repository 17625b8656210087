"""Likelihood ``columns``: each group of columns with its own likelihood.

:class:`ColumnLikelihood` is to likelihoods what
:class:`sklearn.compose.ColumnTransformer` is to transformers: a list of
``(likelihood, columns)`` pairs covering every column exactly once. The
log-likelihood of a row is the sum of the parts' log-likelihoods of their
columns, so the objective stays one sum over columns.
"""

from numbers import Integral

import numpy as np
import torch
from torch import nn

from skvae import resolve_plugin
from skvae.base import Likelihood, LikelihoodModule, negative_log_likelihood
from skvae.hookspecs import hookimpl


class ColumnLikelihoodModule(LikelihoodModule):
    """Torch side of :class:`ColumnLikelihood`: the parts' modules side by side.

    The decoder's output holds the parts' parameters one part after the
    other (part 0's ``n_params``, then part 1's...); the columns of ``x``
    are picked for each part by index, and per-column results come back in
    the columns' order.

    Parameters
    ----------
    modules : list of LikelihoodModule
        The parts' modules.
    columns : list of list of int
        The columns (positions in ``x``) each part models, in its order.
    widths : list of int
        The number of decoder outputs of each part.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.bernoulli import BernoulliModule
    >>> from skvae_plugins.gaussian import GaussianModule
    >>> module = ColumnLikelihoodModule(
    ...     [GaussianModule(1, 1.0, 1e-3), BernoulliModule()], [[1], [0]], [1, 1])
    >>> module.log_prob_features(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2))
    tensor([[-0.6931, -0.9189]])
    """

    def __init__(self, modules, columns, widths):
        super().__init__()
        self.parts = nn.ModuleList(modules)
        self._columns = []  # a slice for a run of consecutive columns, else a buffer's name
        for i, cols in enumerate(columns):
            if list(cols) == list(range(cols[0], cols[0] + len(cols))):
                self._columns.append(slice(cols[0], cols[0] + len(cols)))
            else:
                name = f"columns_{i}"
                self.register_buffer(name, torch.as_tensor(cols, dtype=torch.long),
                                     persistent=False)
                self._columns.append(name)
        self._stat_widths = [
            getattr(m, "n_stats", None) or len(cols) for m, cols in zip(modules, columns)
        ]
        stops = np.cumsum(widths).tolist()
        self._params = [slice(stop - w, stop) for stop, w in zip(stops, widths)]
        order = [c for cols in columns for c in cols]
        self._reordered = order != list(range(len(order)))
        if self._reordered:  # from the parts' concatenated columns back to x's order
            self.register_buffer("order", torch.as_tensor(np.argsort(order), dtype=torch.long),
                                 persistent=False)

    def _split(self, x, params):
        """(module, x of its columns, its params) for each part."""
        return zip(self.parts, self._columns_of(x), (params[:, w] for w in self._params))

    def _columns_of(self, x):
        """x's columns for each part."""
        return [
            x[:, cols] if isinstance(cols, slice) else x.index_select(-1, getattr(self, cols))
            for cols in self._columns
        ]

    def _merge(self, per_part):
        """Per-column outputs of the parts, ``(batch, n_i)`` each, in x's column order."""
        out = torch.cat(per_part, dim=-1) if len(per_part) > 1 else per_part[0]
        return out.index_select(-1, self.order) if self._reordered else out

    def log_prob_features(self, x, params):
        """log p(x_j | params) of each column, from its part, in column order."""
        return self._merge([m.log_prob_features(xp, p) for m, xp, p in self._split(x, params)])

    def log_prob(self, x, params):
        """The sum of the parts' log-likelihoods, shape ``(batch,)``."""
        return -self.nll(x, params)

    def nll(self, x, params):
        """The sum of the parts' negative log-likelihoods (each its own fast form)."""
        terms = [negative_log_likelihood(m, xp, p) for m, xp, p in self._split(x, params)]
        return terms[0] if len(terms) == 1 else torch.stack(terms).sum(0)

    def mean(self, params):
        """Each part's mean of its columns, in column order."""
        return self._merge([m.mean(params[:, w]) for m, w in zip(self.parts, self._params)])

    @property
    def n_stats(self):
        """Width of :meth:`predictive_stats`: the parts' widths, summed."""
        return sum(self._stat_widths)

    def predictive_stats(self, params):
        """The parts' statistics to average over draws of z, side by side.

        A part's module may define ``predictive_stats``, ``predictive_point``
        and ``n_stats`` (a categorical part averages probabilities); the
        others average their means.
        """
        return torch.cat([
            _stats(m, params[:, w]) for m, w in zip(self.parts, self._params)
        ], dim=-1)

    def predictive_point(self, stats):
        """Each part's point value from its averaged statistics, in column order."""
        chunks = torch.split(stats, self._stat_widths, dim=-1)
        return self._merge([
            m.predictive_point(c) if hasattr(m, "predictive_point") else c
            for m, c in zip(self.parts, chunks)
        ])

    def sample(self, params, generator=None):
        """Each part's draw of its columns, in column order."""
        return self._merge([
            m.sample(params[:, w], generator=generator) for m, w in zip(self.parts, self._params)
        ])


def _stats(module, params):
    """A part's statistics to average over draws of z: its own, else its mean."""
    stats = getattr(module, "predictive_stats", None)
    return stats(params) if stats is not None else module.mean(params)


class ColumnLikelihoodFeaturesModule(ColumnLikelihoodModule):
    """A :class:`ColumnLikelihoodModule` one of whose parts shows the encoder its
    own view (a categorical part's one-hot codes): the encoder sees the parts'
    views side by side, in the parts' order.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.categorical import CategoricalModule
    >>> from skvae_plugins.gaussian import GaussianModule
    >>> module = ColumnLikelihoodFeaturesModule(
    ...     [GaussianModule(1, 1.0, 1e-3), CategoricalModule([3])], [[0], [1]], [1, 3])
    >>> module.features(torch.tensor([[0.5, 2.0]]))
    tensor([[0.5000, 0.0000, 0.0000, 1.0000]])
    """

    def features(self, x):
        views = [m.features(xp) for m, xp in zip(self.parts, self._columns_of(x))]
        return torch.cat(views, dim=-1)


class ColumnLikelihood(Likelihood):
    """Each group of columns with its own likelihood, as ColumnTransformer does.

    log p(x | z) = sum over parts of log p_part(x[columns] | z): one sum
    over columns, each column modelled by the likelihood of the one part
    that names it. The decoder outputs the parts' parameters one part after
    the other; the encoder sees the parts' views of their columns (one-hot
    codes for a categorical part) in the same order.

    Parameters
    ----------
    likelihoods : list of (likelihood, columns) pairs, default=None
        ``likelihood`` is a registered name (``"gaussian"``), a likelihood
        class or a configured instance (``Gaussian(scale=0.5)``);
        ``columns`` a list of column names (str: a DataFrame's columns, or
        ``"x0"``, ``"x1"``... for an array) or of integer positions. Every
        column must be named by exactly one pair (or, with
        ``remainder="auto"``, by at most one). None (on a pandas DataFrame
        only): each column's likelihood is chosen from its dtype, as
        ``likelihood="auto"`` does for a frame with a non-number column;
        the way to have a frame of numbers alone read as a table
        (standardised inside the model, a DataFrame out of ``sample``).
    remainder : {None, "auto"}, default=None
        The columns that no pair names. None: there must be none. "auto"
        (on a pandas DataFrame only): each gets what ``likelihood="auto"``
        gives it, a discrete numeric column's categorical over its values
        included, as ``ColumnTransformer``'s ``remainder`` treats the
        columns it does not name. The way to say "auto, except these
        columns": ``ColumnLikelihood([("gaussian", ["age"])],
        remainder="auto")``.

    See Also
    --------
    sklearn.compose.ColumnTransformer : the same idea for transformers.

    Notes
    -----
    ``fit`` calls :meth:`configure` with the columns of its data: names
    become positions and each part is configured on its own columns
    (a categorical part learns its numbers of categories), giving the
    fitted ``likelihood_``, a ``ColumnLikelihood`` of configured plugins and
    lists of positions. :meth:`column_plugins` says which plugin models
    each column (a table standardises the numeric columns of the parts
    whose ``standardize`` is True).

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.base import Column
    >>> from skvae_plugins.categorical import Categorical
    >>> from skvae_plugins.columns import ColumnLikelihood
    >>> likelihood = ColumnLikelihood([("gaussian", ["length", "mass"]),
    ...                                (Categorical(), ["island"])])
    >>> columns = [Column("island", "categorical", ("Biscoe", "Dream", "Torgersen"), 0, 2),
    ...            Column("length", "numeric", None, -1.9, 2.9),
    ...            Column("mass", "numeric", None, -1.9, 2.6)]
    >>> fitted = likelihood.configure(columns)
    >>> fitted
    ColumnLikelihood(likelihoods=[(Gaussian(), [1, 2]),
                                  (Categorical(n_categories=[3]), [0])])
    >>> fitted.n_params(3), fitted.n_inputs(3)
    (5, 5)
    >>> [plugin.name for plugin in fitted.column_plugins(3)]
    ['categorical', 'gaussian', 'gaussian']

    On a DataFrame, name only the columns to model otherwise than
    ``likelihood="auto"`` would:

    >>> import pandas as pd
    >>> from skvae import VAETransformer
    >>> frame = pd.DataFrame({"age": [17.5, 22.0, 27.0, 32.0] * 10,
    ...                       "rating": [1, 2, 3, 4, 5] * 8,
    ...                       "mass": np.linspace(3000.0, 5000.0, 40)})
    >>> vae = VAETransformer(likelihood=ColumnLikelihood([("gaussian", ["age"])],
    ...                                                  remainder="auto"),
    ...                      n_components=2, max_iter=2, random_state=0).fit(frame)
    >>> vae.table_schema_.likelihoods
    {'age': 'gaussian', 'rating': 'categorical', 'mass': 'gaussian'}
    """

    name = "columns"

    def __init__(self, likelihoods=None, remainder=None):
        self.likelihoods = likelihoods
        self.remainder = remainder

    # ------------------------------------------------------------ the parts
    def _pairs(self):
        """The validated ``(plugin instance, columns)`` pairs, plugins resolved."""
        pairs = self.likelihoods
        if pairs is None or isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__len__") \
                or len(pairs) == 0:
            raise ValueError(
                "ColumnLikelihood needs likelihoods: a non-empty list of (likelihood, "
                "columns) pairs, such as ColumnLikelihood([('gaussian', ['length', "
                f"'mass']), ('categorical', ['island'])]); got {pairs!r}. (Without "
                "pairs it chooses each column's likelihood from its dtype, on a pandas "
                "DataFrame only.)"
            )
        resolved = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(
                    f"ColumnLikelihood likelihoods[{i}] must be a (likelihood, columns) "
                    f"pair, got {pair!r}."
                )
            spec, columns = pair
            plugin = resolve_plugin("likelihood", spec, f"likelihoods[{i}][0]")
            if isinstance(plugin, ColumnLikelihood):
                raise ValueError(
                    f"ColumnLikelihood likelihoods[{i}] is itself a ColumnLikelihood; "
                    "list its pairs in the outer one instead."
                )
            resolved.append((plugin, _column_list(columns, i)))
        return resolved

    def _parts(self, n_features, names=None):
        """``(plugin, positions)`` of each part; every column covered exactly once.

        Parameters
        ----------
        n_features : int
        names : list of str, default=None
            The columns' names, to resolve names given in ``likelihoods``.
        """
        parts = self._positioned_pairs(n_features, names)
        if self._check_remainder() == "auto":
            raise ValueError(
                "ColumnLikelihood(remainder='auto') gives the columns it does not name "
                "what likelihood='auto' gives them, from a pandas DataFrame's dtypes: fit "
                "it on a DataFrame, or name every column (remainder=None)."
            )
        _check_coverage(parts, n_features, names)
        return parts

    def named_positions(self, n_features, names=None):
        """The sorted positions of the columns that the pairs name.

        Parameters
        ----------
        n_features : int
        names : list of str, default=None
            The columns' names, to resolve names given in ``likelihoods``.

        Returns
        -------
        positions : list of int
            For ``remainder="auto"``: the other columns are the remainder.

        Examples
        --------
        >>> ColumnLikelihood([("gaussian", ["b"])], remainder="auto").named_positions(
        ...     3, ["a", "b", "c"])
        [1]
        """
        self._check_remainder()
        return sorted({p for _, positions in self._positioned_pairs(n_features, names)
                       for p in positions})

    def _positioned_pairs(self, n_features, names):
        """``(plugin, positions)`` of each pair: its columns resolved to positions."""
        return [(plugin, [_position(c, i, n_features, names) for c in columns])
                for i, (plugin, columns) in enumerate(self._pairs())]

    def _check_remainder(self):
        """``remainder``, or a ValueError unless it is None or "auto"."""
        if self.remainder is not None and not (
                isinstance(self.remainder, str) and self.remainder == "auto"):
            raise ValueError(
                f"ColumnLikelihood remainder must be None (every column named) or 'auto' "
                f"(the others as likelihood='auto' models them), got {self.remainder!r}."
            )
        return self.remainder

    # ---------------------------------------------------- Likelihood's API
    def configure(self, columns):
        """Return a new ColumnLikelihood of configured parts on column positions.

        Names become positions; each part is configured on its own columns
        (its :meth:`~skvae.base.Likelihood.configure`). ``self`` is left as
        it was.

        Parameters
        ----------
        columns : list of skvae.base.Column

        Returns
        -------
        likelihood : ColumnLikelihood
            Pairs of a configured plugin and a list of int positions.
        """
        names = [str(c.name) for c in columns]
        configured = []
        for plugin, positions in self._parts(len(columns), names):
            part = plugin.configure([columns[p] for p in positions])
            if not isinstance(part, Likelihood):
                raise TypeError(
                    f"{type(plugin).__name__}.configure returned {part!r}, not a "
                    "skvae.base.Likelihood."
                )
            configured.append((part, positions))
        return type(self)(configured)

    def column_plugins(self, n_features, names=None):
        """Return the plugin that models each column, in column order.

        For example to ask ``column_plugins(n)[j].standardize`` whether
        column j is a location-scale column.

        Parameters
        ----------
        n_features : int
        names : list of str, default=None
            The columns' names, to resolve names given in ``likelihoods``
            (not needed once :meth:`configure` has made them positions).

        Returns
        -------
        plugins : list of Likelihood
            One per column; the columns of a part share its instance.
        """
        plugins = [None] * n_features
        for plugin, positions in self._parts(n_features, names):
            for p in positions:
                plugins[p] = plugin
        return plugins

    def n_params(self, n_features):
        """The parts' decoder outputs, summed."""
        return sum(p.n_params(len(cols)) for p, cols in self._parts(n_features))

    def n_inputs(self, n_features):
        """The widths of the parts' views for the encoder, summed."""
        return sum(p.n_inputs(len(cols)) for p, cols in self._parts(n_features))

    def build(self, n_features):
        parts = self._parts(n_features)
        modules = [p.build(len(cols)) for p, cols in parts]
        own_view = any(
            type(m).features is not LikelihoodModule.features
            for m in modules
            if isinstance(m, LikelihoodModule)
        )
        cls = ColumnLikelihoodFeaturesModule if own_view else ColumnLikelihoodModule
        return cls(
            modules, [cols for _, cols in parts], [p.n_params(len(cols)) for p, cols in parts]
        )

    def check_data(self, X):
        """Each part's ``check_data`` on its columns; an error names the columns."""
        X = np.asarray(X)
        for i, (plugin, cols) in enumerate(self._parts(X.shape[1])):
            try:
                plugin.check_data(X[:, cols])
            except ValueError as exc:
                raise ValueError(
                    f"ColumnLikelihood part {i} ({plugin.name!r}) models the columns at "
                    f"positions {cols} (its columns 0, 1, ... in this order): {exc}"
                ) from exc

    def check_training_data(self, X):
        """Each part's ``check_training_data`` on its columns."""
        X = np.asarray(X)
        for plugin, cols in self._parts(X.shape[1]):
            check = getattr(plugin, "check_training_data", None)
            if check is not None:
                check(X[:, cols])


def _column_list(columns, i):
    """The columns of pair ``i`` as a list of str or int, or a ValueError."""
    if isinstance(columns, np.ndarray):
        columns = columns.tolist()
    ok = isinstance(columns, (list, tuple)) and len(columns) > 0 and all(
        isinstance(c, str) or (isinstance(c, Integral) and not isinstance(c, bool))
        for c in columns
    )
    if not ok:
        raise ValueError(
            f"ColumnLikelihood likelihoods[{i}][1] must be a non-empty list of column "
            f"names (str) or integer positions, got {columns!r}."
        )
    return [c if isinstance(c, str) else int(c) for c in columns]


def _position(column, i, n_features, names):
    """The position of ``column`` (a name or an int) among ``n_features`` columns."""
    if isinstance(column, int):
        if not -n_features <= column < n_features:
            raise ValueError(
                f"ColumnLikelihood likelihoods[{i}] names the column position {column}, "
                f"but the data have {n_features} columns."
            )
        return column % n_features
    if names is None:
        raise ValueError(
            f"ColumnLikelihood likelihoods[{i}] names the column {column!r}: names are "
            "resolved by configure(columns), which fit calls with the data's columns "
            "(a DataFrame's names, or 'x0', 'x1'... for an array). Use integer positions "
            "to build it without data."
        )
    if column not in names:
        raise ValueError(
            f"ColumnLikelihood likelihoods[{i}] names the column {column!r}, which the "
            f"data do not have; their columns are {names}."
        )
    return names.index(column)


def _check_coverage(parts, n_features, names):
    """Raise ValueError unless every column is in exactly one part."""
    counts = np.zeros(n_features, dtype=int)
    for _, positions in parts:
        np.add.at(counts, positions, 1)
    label = (lambda p: repr(names[p])) if names is not None else str
    problems = []
    uncovered = np.flatnonzero(counts == 0).tolist()
    if uncovered:
        problems.append(
            f"no likelihood for the column(s) {', '.join(label(p) for p in uncovered)}"
        )
    doubled = np.flatnonzero(counts > 1).tolist()
    if doubled:
        problems.append(
            f"more than one likelihood for the column(s) "
            f"{', '.join(label(p) for p in doubled)}"
        )
    if problems:
        raise ValueError(
            f"ColumnLikelihood must model each of the {n_features} columns exactly once: "
            f"{'; '.join(problems)}. Name every column in exactly one "
            "(likelihood, columns) pair."
        )


@hookimpl
def skvae_register_likelihoods():
    return [ColumnLikelihood]
