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


class PoissonModule(LikelihoodModule):
    """Torch side of :class:`Poisson`: the decoder outputs log-rates."""

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

    def build(self, n_features):
        return PoissonModule()

    def check_data(self, X):
        check_counts(
            self.name,
            X,
            "use likelihood='gaussian' for real-valued data.",
        )


@hookimpl
def skvae_register_likelihoods():
    return [Poisson]
