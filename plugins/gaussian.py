"""Likelihood ``gaussian``: diagonal Gaussian with a fixed or learned scale."""

import math
from numbers import Real

import torch
from torch import nn
from torch.nn import functional as F

from skvae.base import Likelihood, LikelihoodModule, gaussian_log_prob
from skvae.hookspecs import hookimpl


class GaussianModule(LikelihoodModule):
    """Torch side of :class:`Gaussian`: the decoder outputs the mean."""

    def __init__(self, n_features, scale, min_scale):
        super().__init__()
        self.min_scale = min_scale
        if scale == "learned":
            # scale = min_scale + softplus(raw), starting at 1.
            init = math.log(math.expm1(max(1.0 - min_scale, 1e-6)))
            self.raw_scale = nn.Parameter(torch.full((n_features,), init))
        else:
            self.raw_scale = None
            self.register_buffer("fixed_log_var", torch.tensor(2.0 * math.log(scale)))

    def log_var(self):
        if self.raw_scale is None:
            return self.fixed_log_var
        return 2.0 * torch.log(self.min_scale + F.softplus(self.raw_scale))

    def log_prob(self, x, params):
        return gaussian_log_prob(x, params, self.log_var()).sum(-1)

    def mean(self, params):
        return params

    def sample(self, params, generator=None):
        noise = torch.randn(
            params.shape, generator=generator, device=params.device, dtype=params.dtype
        )
        return params + torch.exp(0.5 * self.log_var()) * noise


class Gaussian(Likelihood):
    """Diagonal Gaussian likelihood N(x; decoder(z), scale**2).

    Parameters
    ----------
    scale : float or "learned", default="learned"
        Observation standard deviation: a fixed positive number (seed 004
        used 0.5), or "learned" for one learned scale per feature.
    min_scale : float, default=1e-3
        Lower bound of a learned scale, so that constant features cannot drive
        the likelihood to infinity.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.gaussian import Gaussian
    >>> module = Gaussian(scale=1.0).build(n_features=1)
    >>> round(float(module.log_prob(torch.zeros(1, 1), torch.zeros(1, 1))), 4)
    -0.9189
    """

    name = "gaussian"

    def __init__(self, scale="learned", min_scale=1e-3):
        self.scale = scale
        self.min_scale = min_scale

    def build(self, n_features):
        scale_ok = self.scale == "learned" or (
            isinstance(self.scale, Real) and not isinstance(self.scale, bool) and self.scale > 0
        )
        if not scale_ok:
            raise ValueError(
                f"Gaussian scale must be a positive number or 'learned'; got {self.scale!r}."
            )
        if not (isinstance(self.min_scale, Real) and self.min_scale > 0):
            raise ValueError(
                f"Gaussian min_scale must be a positive number; got {self.min_scale!r}."
            )
        return GaussianModule(n_features, self.scale, float(self.min_scale))


@hookimpl
def skvae_register_likelihoods():
    return [Gaussian]
