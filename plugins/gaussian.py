"""Likelihood ``gaussian``: diagonal Gaussian with a fixed, learned or predicted scale."""

import math

import torch

from skvae.base import Likelihood, LikelihoodModule
from skvae.hookspecs import hookimpl

from ._scale import ScaleModule, check_scale, n_params_for_scale, warn_if_unscaled

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class GaussianModule(LikelihoodModule):
    """Torch side of :class:`Gaussian`: the decoder outputs the mean (and scale).

    Examples
    --------
    >>> import torch
    >>> module = GaussianModule(n_features=2, scale=1.0, min_scale=1e-3)
    >>> module.nll(torch.zeros(1, 2), torch.zeros(1, 2))  # 2 * log(2 pi) / 2
    tensor([1.8379])
    """

    def __init__(self, n_features, scale, min_scale):
        super().__init__()
        self.scale = ScaleModule(n_features, scale, min_scale)

    def nll(self, x, params):
        """-log N(x; loc, scale**2) summed over features, shape ``(batch,)``.

        Written as ``0.5 * sum(((x - loc) / scale)**2) + sum(log scale) +
        n_features * log(2 pi) / 2``: one pass over the batch's elements,
        the scale's own terms computed on the scale alone when it is fixed
        (Python numbers) or learned (one value per feature).
        """
        scale = self.scale
        n_features = x.shape[-1]
        if scale.fixed_log_scale is not None:
            log_scale = scale.fixed_log_scale
            z = (x - params) * math.exp(-log_scale)
            return (z * z).sum(-1).mul_(0.5).add_(n_features * (log_scale + _HALF_LOG_2PI))
        loc, log_scale = scale.split(params)
        z = (x - loc) * torch.exp(-log_scale)
        if scale.predicted:  # one scale per sample and feature
            scale_terms = log_scale.sum(-1).add_(n_features * _HALF_LOG_2PI)
        else:  # learned: one scale per feature
            scale_terms = log_scale.sum().add_(n_features * _HALF_LOG_2PI)
        return torch.add(scale_terms, (z * z).sum(-1), alpha=0.5)

    def log_prob(self, x, params):
        return -self.nll(x, params)

    def log_prob_features(self, x, params):
        """log N(x_j; loc_j, scale_j**2) of each feature, shape ``(batch, n_features)``."""
        loc, log_scale = self.scale.split(params)
        z = (x - loc) * torch.exp(-log_scale)
        return -0.5 * (z * z) - log_scale - _HALF_LOG_2PI

    def mean(self, params):
        return self.scale.split(params)[0]

    def sample(self, params, generator=None):
        loc, log_scale = self.scale.split(params)
        noise = torch.randn(
            loc.shape, generator=generator, device=loc.device, dtype=loc.dtype
        )
        return loc + torch.exp(log_scale) * noise


class Gaussian(Likelihood):
    """Diagonal Gaussian likelihood N(x; mu(z), sigma**2), for real-valued data.

    The decoder outputs the mean mu(z); the standard deviation sigma is fixed,
    learned per feature, or predicted by the decoder per sample and feature
    (heteroscedastic). Standardise the data (``StandardScaler``) first.

    Parameters
    ----------
    scale : float, "learned" or "predicted", default="learned"
        Observation standard deviation: a fixed positive number (such as
        0.5), "learned" for one learned scale per feature, or "predicted"
        for a scale output by the decoder (the decoder then has two outputs
        per feature: the means, then the raw scales).
    min_scale : float, default=1e-3
        Lower bound of a learned or predicted scale, so that constant
        features cannot drive the likelihood to infinity.

    Attributes
    ----------
    n_params_per_feature : int
        Decoder outputs per feature: 2 with ``scale="predicted"``, else 1.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.gaussian import Gaussian
    >>> module = Gaussian(scale=1.0).build(n_features=1)
    >>> round(float(module.log_prob(torch.zeros(1, 1), torch.zeros(1, 1))), 4)
    -0.9189
    >>> Gaussian(scale="predicted").n_params_per_feature
    2
    """

    name = "gaussian"
    #: In a table, skvae standardises the columns it models (and undoes it on output).
    standardize = True

    def __init__(self, scale="learned", min_scale=1e-3):
        self.scale = scale
        self.min_scale = min_scale

    @property
    def n_params_per_feature(self):
        return n_params_for_scale(self.scale)

    def check_training_data(self, X):
        warn_if_unscaled(self.name, X)

    def build(self, n_features):
        check_scale("Gaussian", self.scale, self.min_scale)
        return GaussianModule(n_features, self.scale, self.min_scale)


@hookimpl
def skvae_register_likelihoods():
    return [Gaussian]
