"""Prior ``normal``: the standard normal N(0, I), with analytic KL."""

import torch

from skvae.base import Prior, PriorModule, gaussian_log_prob
from skvae.hookspecs import hookimpl


class StandardNormalModule(PriorModule):
    """Torch side of :class:`Normal`."""

    def __init__(self, n_components):
        super().__init__()
        self.n_components = n_components

    def kl_per_dim(self, mean, log_var, z):
        # Closed form of KL(N(mean, exp(log_var)) || N(0, 1)), per dimension
        # (mean * mean: the values of mean.pow(2), from a plain multiply).
        return 0.5 * (mean * mean + log_var.exp() - 1.0 - log_var)

    def kl(self, mean, log_var, z):
        # kl_per_dim(...).sum(-1), written out (one call less in every step),
        # halved after the sum: on the batch's sums, not on every element
        # (the same values: halving is exact in floating point).
        return 0.5 * (mean * mean + log_var.exp() - 1.0 - log_var).sum(-1)

    def log_prob(self, z):
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        return gaussian_log_prob(z, zero, zero).sum(-1)

    def sample(self, n_samples, generator=None, device=None):
        return torch.randn(
            (n_samples, self.n_components), generator=generator, device=device
        )


class Normal(Prior):
    """Standard normal prior p(z) = N(0, I).

    The KL term of the objective is computed in closed form:
    ``0.5 * sum(mean**2 + var - 1 - log var)``.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.normal import Normal
    >>> prior = Normal().build(n_components=2, n_features=4)
    >>> prior.kl(torch.zeros(1, 2), torch.zeros(1, 2), None)
    tensor([0.])
    """

    name = "normal"

    def build(self, n_components, n_features):
        return StandardNormalModule(n_components)


@hookimpl
def skvae_register_priors():
    return [Normal]
