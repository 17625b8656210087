"""Likelihood ``poisson``: Poisson on log-rates, for count data."""

import numpy as np
import torch

from skvae.base import Likelihood, LikelihoodModule
from skvae.hookspecs import hookimpl


def check_counts(name, X, alternative):
    """Raise ValueError unless X holds non-negative integers (counts).

    Parameters
    ----------
    name : str
        Registered name of the likelihood, for the message.
    X : ndarray
    alternative : str
        What to suggest instead, appended to the message.

    Examples
    --------
    >>> import numpy as np
    >>> check_counts("poisson", np.array([[0.0, 3.0]]), "")
    >>> check_counts("poisson", np.array([[0.5, 3.0]]), "")
    Traceback (most recent call last):
    ...
    ValueError: The 'poisson' likelihood needs non-negative integer counts, but X has
    non-integer values (such as 0.5). Round X to counts (np.rint) if it holds counts...
    """
    X = np.asarray(X)
    low = float(np.min(X))
    if low < 0:
        raise ValueError(
            f"The '{name}' likelihood needs non-negative integer counts, but X has "
            f"negative values (the smallest is {low:.4g}). Pass raw counts, not "
            f"centred or log-transformed data, or {alternative}"
        )
    fractional = X[X != np.floor(X)]
    if fractional.size:
        raise ValueError(
            f"The '{name}' likelihood needs non-negative integer counts, but X has "
            f"non-integer values (such as {float(fractional.flat[0]):.4g}). Round X "
            f"to counts (np.rint) if it holds counts, or {alternative}"
        )


def check_log_input(name, log_input):
    """Raise ValueError unless ``log_input`` is a bool.

    Examples
    --------
    >>> check_log_input("poisson", True)
    >>> check_log_input("poisson", "yes")
    Traceback (most recent call last):
    ...
    ValueError: The 'poisson' likelihood's log_input must be True or False; got 'yes'.
    """
    if not isinstance(log_input, (bool, np.bool_)):
        raise ValueError(
            f"The '{name}' likelihood's log_input must be True or False; got {log_input!r}."
        )


class PoissonModule(LikelihoodModule):
    """Torch side of :class:`Poisson`: the decoder outputs log-rates.

    Parameters
    ----------
    log_input : bool, default=True
        Whether the encoder sees log(1 + x) rather than the raw counts.
    """

    def __init__(self, log_input=True):
        super().__init__()
        self.log_input = log_input

    def extra_repr(self):
        return f"log_input={self.log_input}"

    def features(self, x):
        """The encoder's view: log(1 + x) (counts on a log scale), or x."""
        return torch.log1p(x) if self.log_input else x

    def nll(self, x, params):
        """-log p(x | params) summed over features (no negation in the training step)."""
        return (torch.exp(params) - x * params + torch.lgamma(x + 1.0)).sum(-1)

    def log_prob(self, x, params):
        return -self.nll(x, params)

    def log_prob_features(self, x, params):
        return x * params - torch.exp(params) - torch.lgamma(x + 1.0)

    def mean(self, params):
        return torch.exp(params)

    def sample(self, params, generator=None):
        return torch.poisson(torch.exp(params), generator=generator)


class Poisson(Likelihood):
    """Poisson likelihood on log-rates, for count data (non-negative integers).

    p(x | z) = prod_j Poisson(x_j; exp(eta_j(z))), with eta the decoder
    output. The variance equals the mean; for over-dispersed counts (variance
    above the mean, as in single-cell RNA counts) use "negative_binomial".

    Parameters
    ----------
    log_input : bool, default=True
        Whether the encoder sees log(1 + x) rather than the raw counts, as
        scvi-tools does (``log_variational``). Counts in the hundreds seen raw
        drive the first layer's activations, and with them the log-rates, far
        out: ``exp`` overflows and the fit diverges in its first epoch. The
        likelihood always scores the raw counts. Model files written before
        this parameter existed load with ``log_input=False``, as they were fitted.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.poisson import Poisson
    >>> module = Poisson().build(n_features=2)
    >>> module.log_prob(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2))
    tensor([-2.])
    >>> module.mean(torch.zeros(1, 2))
    tensor([[1., 1.]])
    """

    name = "poisson"
    _defaults_of_older_files = {"log_input": False}

    def __init__(self, log_input=True):
        self.log_input = log_input

    def build(self, n_features):
        check_log_input(self.name, self.log_input)
        return PoissonModule(bool(self.log_input))

    def check_data(self, X):
        check_counts(
            self.name,
            X,
            "use likelihood='gaussian' for real-valued data.",
        )


@hookimpl
def skvae_register_likelihoods():
    return [Poisson]
