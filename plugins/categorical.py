"""Likelihood ``categorical``: a softmax over the categories of each column.

Each column holds category codes 0, 1, ..., K_j - 1 (floats, NaN where
missing). The decoder outputs one logit per category of each column, the
columns' blocks side by side; the encoder sees each column one-hot.
"""

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.base import clone
from torch.nn import functional as F

from skvae.base import Likelihood, LikelihoodModule
from skvae.hookspecs import hookimpl


class CategoricalModule(LikelihoodModule):
    """Torch side of :class:`Categorical`: one logit per category of each column.

    ``params`` holds the columns' blocks of logits side by side (column 0's
    ``K_0`` logits, then column 1's ``K_1``...). The blocks are gathered into
    one ``(batch, n_features, max K)`` tensor, short blocks padded with -inf,
    so that every column is handled by the same few kernels.

    Parameters
    ----------
    n_categories : sequence of int
        The number of categories K_j of each column.

    Examples
    --------
    >>> import torch
    >>> module = CategoricalModule([2, 3])
    >>> module.features(torch.tensor([[1.0, 2.0], [0.0, float("nan")]]))
    tensor([[0., 1., 0., 0., 1.],
            [1., 0., 0., 0., 0.]])
    >>> module.log_prob_features(torch.tensor([[1.0, 2.0]]), torch.zeros(1, 5))
    tensor([[-0.6931, -1.0986]])
    """

    def __init__(self, n_categories):
        super().__init__()
        sizes = [int(k) for k in n_categories]
        self.n_categories = tuple(sizes)
        self.width = sum(sizes)
        self.max_categories = max(sizes)
        offsets = np.cumsum([0, *sizes[:-1]])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.long),
                             persistent=False)
        self.padded = len(set(sizes)) > 1
        if self.padded:  # where each column's logits sit in a padded block of max K
            index = torch.zeros(len(sizes), self.max_categories, dtype=torch.long)
            padding = torch.ones(len(sizes), self.max_categories, dtype=torch.bool)
            for j, (offset, k) in enumerate(zip(offsets.tolist(), sizes)):
                index[j, :k] = torch.arange(offset, offset + k)
                padding[j, :k] = False
            self.register_buffer("index", index.reshape(-1), persistent=False)
            self.register_buffer("padding", padding, persistent=False)
            self.register_buffer("unpadded", torch.nonzero(~padding.reshape(-1))[:, 0],
                                 persistent=False)

    def logits(self, params):
        """The logits as ``(batch, n_features, max K)``, -inf past a column's K."""
        shape = (params.shape[0], len(self.n_categories), self.max_categories)
        if not self.padded:
            return params.reshape(shape)
        logits = params.index_select(-1, self.index).reshape(shape)
        return logits.masked_fill(self.padding, -math.inf)

    def features(self, x):
        """Each column's code one-hot, ``(batch, sum K)``; a missing code (NaN) all zeros."""
        observed = ~torch.isnan(x)
        codes = torch.where(observed, x, 0.0).long() + self.offsets
        view = x.new_zeros((x.shape[0], self.width))
        return view.scatter_(1, codes, observed.to(x.dtype))

    def log_prob_features(self, x, params):
        """log softmax(logits_j)[x_j] of each column, shape ``(batch, n_features)``."""
        logits = self.logits(params)
        chosen = logits.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)
        return chosen - torch.logsumexp(logits, dim=-1)

    def nll(self, x, params):
        """The cross-entropies summed over columns, shape ``(batch,)``."""
        logits = self.logits(params)
        loss = F.cross_entropy(
            logits.reshape(-1, self.max_categories), x.long().reshape(-1), reduction="none"
        )
        return loss.reshape(x.shape).sum(-1)

    def log_prob(self, x, params):
        return -self.nll(x, params)

    def mean(self, params):
        """The most probable category's code of each column (the mode)."""
        return self.logits(params).argmax(-1).to(params.dtype)

    @property
    def n_stats(self):
        """Width of :meth:`predictive_stats`: one probability per category."""
        return self.width

    def predictive_stats(self, params):
        """The categories' probabilities, ``(batch, sum K)``: what an average over
        draws of z (an imputation's importance weights) averages.

        The average of the modes of several draws would be no category;
        :meth:`predictive_point` turns the averaged probabilities into the
        most probable category of the mixture.
        """
        probs = torch.softmax(self.logits(params), dim=-1)
        if not self.padded:
            return probs.reshape(params.shape)
        return probs.reshape(params.shape[0], -1).index_select(-1, self.unpadded)

    def predictive_point(self, stats):
        """The most probable category of each column under averaged probabilities."""
        return self.logits(stats).argmax(-1).to(stats.dtype)

    def sample(self, params, generator=None):
        """One drawn code per column, shape ``(batch, n_features)``."""
        logits = self.logits(params)
        probs = torch.softmax(logits, dim=-1).reshape(-1, self.max_categories)
        codes = torch.multinomial(probs, 1, generator=generator)
        return codes.reshape(logits.shape[:2]).to(params.dtype)


class Categorical(Likelihood):
    """Categorical likelihood: a softmax over the categories of each column.

    For columns of category codes 0, 1, ..., K_j - 1 (what
    :class:`sklearn.preprocessing.OrdinalEncoder` gives; a DataFrame's
    category, object and string columns are coded so by ``fit``, and so is
    a numeric column of a DataFrame that it models: its categories are the
    values observed in ``fit``, as ``OneHotEncoder`` reads such a column).
    log p(x | z) = sum_j log softmax(l_j(z))[x_j], with l_j the K_j logits
    the decoder outputs for column j, so the decoder has sum_j K_j outputs;
    the encoder sees each column one-hot (sum_j K_j inputs). The mean of a
    column is its most probable category (the mode: the mean of the codes
    would be no category), and a draw is a code.

    Parameters
    ----------
    n_categories : "auto" or list of int, default="auto"
        The number of categories of each column it models. "auto": taken
        from the data by ``fit`` (:meth:`configure`): the number of
        categories of a DataFrame's column, else the largest observed code
        plus one.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skvae.base import Column
    >>> from skvae_plugins.categorical import Categorical
    >>> likelihood = Categorical().configure(
    ...     [Column("island", "categorical", ("Biscoe", "Dream", "Torgersen"), 0.0, 2.0)])
    >>> likelihood
    Categorical(n_categories=[3])
    >>> likelihood.n_params(1), likelihood.n_inputs(1)
    (3, 3)
    >>> module = likelihood.build(n_features=1)
    >>> module.mean(torch.tensor([[0.1, 2.0, -1.0]]))
    tensor([[1.]])
    >>> likelihood.check_data(np.array([[0.0], [2.0], [np.nan]]))
    """

    name = "categorical"
    models_categories = True

    def __init__(self, n_categories="auto"):
        self.n_categories = n_categories

    def configure(self, columns):
        """Return a copy with ``n_categories`` set from the columns (when "auto").

        A column with ``categories`` has ``len(categories)``; one without (a
        column of an array) has its largest observed code plus one.

        Parameters
        ----------
        columns : list of skvae.base.Column

        Returns
        -------
        likelihood : Categorical
        """
        configured = clone(self)
        if isinstance(self.n_categories, str) and self.n_categories == "auto":
            return configured.set_params(n_categories=[_count(c) for c in columns])
        configured._sizes(len(columns))
        return configured

    def _sizes(self, n_features):
        """``n_categories`` as a list of ints, or a ValueError saying what is wrong."""
        sizes = self.n_categories
        if isinstance(sizes, str) and sizes == "auto":
            raise ValueError(
                "Categorical(n_categories='auto') does not know its categories yet: "
                "fit sets them from the data (configure(columns)). To build it "
                "yourself, pass n_categories=[K_0, K_1, ...], one per column."
            )
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            raise ValueError(
                f"Categorical n_categories must be 'auto' or a list of ints (one per "
                f"column), got {sizes!r}."
            )
        if not all(isinstance(k, Integral) and not isinstance(k, bool) and k >= 1
                   for k in sizes):
            raise ValueError(
                f"Categorical n_categories must hold positive ints (the number of "
                f"categories of each column), got {list(sizes)!r}."
            )
        if len(sizes) != n_features:
            raise ValueError(
                f"Categorical has n_categories for {len(sizes)} columns "
                f"({list(sizes)!r}) but models {n_features} columns; give one number "
                "per column, or n_categories='auto'."
            )
        return [int(k) for k in sizes]

    def n_params(self, n_features):
        """One decoder output per category: ``sum(n_categories)``."""
        return sum(self._sizes(n_features))

    def n_inputs(self, n_features):
        """The encoder sees each column one-hot: ``sum(n_categories)``."""
        return sum(self._sizes(n_features))

    def build(self, n_features):
        return CategoricalModule(self._sizes(n_features))

    def check_data(self, X):
        """Raise ValueError unless X holds codes 0..K_j-1 per column (NaN passes)."""
        X = np.asarray(X)
        auto = isinstance(self.n_categories, str) and self.n_categories == "auto"
        sizes = None if auto else self._sizes(X.shape[1])
        for j in range(X.shape[1]):
            _check_codes(X[:, j], j, None if sizes is None else sizes[j])


def _count(column):
    """The number of categories of a :class:`~skvae.base.Column`."""
    if column.categories is not None:
        return max(1, len(column.categories))
    high = float(column.high)
    # No observed value (NaN) or a value out of the domain: check_data says so.
    return int(math.floor(high)) + 1 if math.isfinite(high) and high >= 0 else 1


def _check_codes(values, j, n_categories):
    """Raise ValueError unless the non-NaN ``values`` of column ``j`` are codes."""
    values = values[~np.isnan(values)]
    hint = (
        "Code categories as 0, 1, ..., K-1 (sklearn.preprocessing.OrdinalEncoder), "
        "or fit on a pandas DataFrame, whose category and string columns are coded "
        "automatically."
    )
    bad = values[~np.isfinite(values) | (values != np.floor(values)) | (values < 0)]
    if bad.size:
        raise ValueError(
            f"The 'categorical' likelihood needs category codes (whole numbers 0, 1, "
            f"..., K-1), but column {j} holds {float(bad[0]):.6g}. {hint}"
        )
    if n_categories is not None and values.size and values.max() >= n_categories:
        raise ValueError(
            f"The 'categorical' likelihood has n_categories={n_categories} for column "
            f"{j} (codes 0 to {n_categories - 1}), but the column holds the code "
            f"{int(values.max())}: a category the model was not fitted with. Refit "
            "on data with every category, or set n_categories to include it."
        )


@hookimpl
def skvae_register_likelihoods():
    return [Categorical]
