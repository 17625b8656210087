"""Likelihood ``gaussian``: diagonal Gaussian with a fixed, learned or predicted scale."""

import torch

from skvae.base import Likelihood, LikelihoodModule, gaussian_log_prob
from skvae.hookspecs import hookimpl

from ._scale import ScaleModule, check_scale, n_params_for_scale, warn_if_unscaled


class GaussianModule(LikelihoodModule):
    """Torch side of :class:`Gaussian`: the decoder outputs the mean (and scale)."""

    def __init__(self, n_features, scale, min_scale):
        super().__init__()
        self.scale = ScaleModule(n_features, scale, min_scale)

    def log_prob(self, x, params):
        loc, log_scale = self.scale.split(params)
        return gaussian_log_prob(x, loc, 2.0 * log_scale).sum(-1)

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
        Observation standard deviation: a fixed positive number (seed 004
        used 0.5), "learned" for one learned scale per feature, or
        "predicted" for a scale output by the decoder (the decoder then has
        two outputs per feature: the means, then the raw scales).
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
