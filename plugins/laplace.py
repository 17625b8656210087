"""Likelihood ``laplace``: Laplace (double exponential), robust to outliers."""

import math

import torch

from skvae.base import Likelihood, LikelihoodModule
from skvae.hookspecs import hookimpl

from ._scale import ScaleModule, check_scale, n_params_for_scale, warn_if_unscaled

_LOG_2 = math.log(2.0)


class LaplaceModule(LikelihoodModule):
    """Torch side of :class:`Laplace`: the decoder outputs the location (and scale)."""

    def __init__(self, n_features, scale, min_scale):
        super().__init__()
        self.scale = ScaleModule(n_features, scale, min_scale)

    def nll(self, x, params):
        """-log p(x | params) summed over features: the training term, with no negation."""
        loc, log_scale = self.scale.split(params)
        return ((x - loc).abs() * torch.exp(-log_scale) + log_scale).sum(-1).add_(
            x.shape[-1] * _LOG_2
        )

    def log_prob(self, x, params):
        return -self.nll(x, params)

    def log_prob_features(self, x, params):
        loc, log_scale = self.scale.split(params)
        return -((x - loc).abs() * torch.exp(-log_scale) + log_scale + _LOG_2)

    def mean(self, params):
        return self.scale.split(params)[0]

    def sample(self, params, generator=None):
        # The difference of two Exponential(1) draws is Laplace(0, 1).
        loc, log_scale = self.scale.split(params)
        e1 = torch.empty_like(loc).exponential_(generator=generator)
        e2 = torch.empty_like(loc).exponential_(generator=generator)
        return loc + torch.exp(log_scale) * (e1 - e2)


class Laplace(Likelihood):
    """Laplace likelihood, for real-valued data with heavy tails or outliers.

    ``p(x | z) = prod_j exp(-|x_j - mu_j(z)| / b_j) / (2 b_j)``: the decoder
    outputs the location mu(z) (the mean and median); the absolute error
    makes the fit robust to outliers, and the mean reconstruction is a
    conditional median rather than a conditional mean. Standardise the data
    first.

    Parameters
    ----------
    scale : float, "learned" or "predicted", default="learned"
        The scale b (the standard deviation is b * sqrt(2)): a fixed positive
        number, "learned" for one scale per feature, or "predicted" for a
        scale output by the decoder per sample and feature (two decoder
        outputs per feature: the locations, then the raw scales).
    min_scale : float, default=1e-3
        Lower bound of a learned or predicted scale.

    Attributes
    ----------
    n_params_per_feature : int
        Decoder outputs per feature: 2 with ``scale="predicted"``, else 1.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.laplace import Laplace
    >>> module = Laplace(scale=1.0).build(n_features=2)
    >>> module.log_prob(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2))
    tensor([-2.3863])
    >>> Laplace(scale="predicted").n_params_per_feature
    2
    """

    name = "laplace"
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
        check_scale("Laplace", self.scale, self.min_scale)
        return LaplaceModule(n_features, self.scale, self.min_scale)


@hookimpl
def skvae_register_likelihoods():
    return [Laplace]
