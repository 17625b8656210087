"""Likelihood ``bernoulli``: Bernoulli on logits, for data in [0, 1]."""

import numpy as np
import torch
from torch.nn import functional as F

from skvae.base import Likelihood, LikelihoodModule
from skvae.hookspecs import hookimpl


class BernoulliModule(LikelihoodModule):
    """Torch side of :class:`Bernoulli`: the decoder outputs logits."""

    def log_prob(self, x, params):
        return -self.nll(x, params)

    def log_prob_features(self, x, params):
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none")

    def nll(self, x, params):
        return F.binary_cross_entropy_with_logits(params, x, reduction="none").sum(-1)

    def mean(self, params):
        return torch.sigmoid(params)

    def sample(self, params, generator=None):
        return torch.bernoulli(torch.sigmoid(params), generator=generator)


class Bernoulli(Likelihood):
    """Bernoulli likelihood on logits, for binary or [0, 1]-valued data.

    log p(x | z) = sum_j x_j log p_j + (1 - x_j) log(1 - p_j) with
    p = sigmoid(decoder(z)), i.e. minus the binary cross-entropy. Values
    strictly between 0 and 1 (grey levels) are accepted, as is customary for
    MNIST-like images; the result is then not a normalised density.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.bernoulli import Bernoulli
    >>> module = Bernoulli().build(n_features=2)
    >>> module.log_prob(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2))
    tensor([-1.3863])
    """

    name = "bernoulli"
    models_binary = True

    def build(self, n_features):
        return BernoulliModule()

    def check_data(self, X):
        low, high = float(np.min(X)), float(np.max(X))
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"The 'bernoulli' likelihood needs data in [0, 1], but X ranges "
                f"from {low:.4g} to {high:.4g}. Scale X with "
                "sklearn.preprocessing.MinMaxScaler(clip=True) (clip keeps new data in "
                "[0, 1] too), or use likelihood='gaussian'."
            )


@hookimpl
def skvae_register_likelihoods():
    return [Bernoulli]
