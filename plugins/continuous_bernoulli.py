"""Likelihood ``continuous_bernoulli``: the normalised Bernoulli for data in [0, 1]."""

import math

import numpy as np
import torch
from torch.nn import functional as F

from skvae.base import Likelihood, LikelihoodModule
from skvae.hookspecs import hookimpl

_LOG_2 = math.log(2.0)
# Below these |logit|s, Taylor expansions around logit 0 (p = 1/2) replace the
# closed forms, which there are 0/0 or lose digits to cancellation.
_LOG_NORM_TAYLOR = 0.1
_MEAN_TAYLOR = 1.0
_SAMPLE_TAYLOR = 1e-6


def log_normalizer(logits):
    """log C(logits), the log normalising constant of the continuous Bernoulli.

    With p = sigmoid(eta), C = 2 artanh(1 - 2p) / (1 - 2p) = eta / tanh(eta / 2),
    computed as ``log|eta| - log(-expm1(-|eta|)) + log1p(exp(-|eta|))`` and,
    for |eta| < 0.1, as log 2 + u**2 / 3 - 7 u**4 / 90 + 62 u**6 / 2835 with
    u = eta / 2. Finite, with finite gradients, for every finite logit.

    Examples
    --------
    >>> import torch
    >>> log_normalizer(torch.tensor([0.0, 100.0]))  # log 2, then about log 100
    tensor([0.6931, 4.6052])
    """
    small = logits.abs() < _LOG_NORM_TAYLOR
    # Each branch sees only the values it is accurate for (and a harmless
    # stand-in elsewhere), so that neither produces inf or nan gradients.
    a = torch.where(small, torch.ones_like(logits), logits.abs())
    exact = torch.log(a) - torch.log(-torch.expm1(-a)) + torch.log1p(torch.exp(-a))
    u2 = torch.where(small, 0.5 * logits, torch.zeros_like(logits)).square()
    taylor = _LOG_2 + u2 * (1.0 / 3.0 + u2 * (-7.0 / 90.0 + u2 * (62.0 / 2835.0)))
    return torch.where(small, taylor, exact)


def cb_mean(logits):
    """Mean of the continuous Bernoulli on logits.

    E[x] = 1/2 + L(eta / 2) / 2 with L(u) = coth(u) - 1/u, the Langevin
    function. For |eta| >= 1 it is computed as ``1/a - 1/expm1(a)``,
    a = |eta|, for eta < 0 (one minus that for eta > 0), which keeps the
    relative precision of means near 0; for |eta| < 1, by the Taylor series
    L(u) = u/3 - u**3/45 + 2u**5/945 - u**7/4725 + 2u**9/93555.

    Examples
    --------
    >>> import torch
    >>> cb_mean(torch.tensor([0.0, 2.0, 1e4, -1e4]))
    tensor([5.0000e-01, 6.5652e-01, 9.9990e-01, 1.0000e-04])
    """
    small = logits.abs() < _MEAN_TAYLOR
    a = torch.where(small, torch.ones_like(logits), logits.abs())
    low = 1.0 / a - 1.0 / torch.expm1(a)  # the mean at logit -a
    exact = torch.where(logits > 0, 1.0 - low, low)
    v = 0.5 * torch.where(small, logits, torch.zeros_like(logits))
    v2 = v * v
    langevin = v * (
        1.0 / 3.0 + v2 * (-1.0 / 45.0 + v2 * (2.0 / 945.0 + v2 * (-1.0 / 4725.0 + v2 * 2.0 / 93555.0)))
    )
    return torch.where(small, 0.5 + 0.5 * langevin, exact)


class ContinuousBernoulliModule(LikelihoodModule):
    """Torch side of :class:`ContinuousBernoulli`: the decoder outputs logits."""

    def nll(self, x, params):
        """-log p(x | params) summed over features: the Bernoulli cross-entropy
        minus the log-normaliser (no negation in the training step)."""
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return (bce - log_normalizer(params)).sum(-1)

    def log_prob_features(self, x, params):
        log_kernel = -F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return log_kernel + log_normalizer(params)

    def mean(self, params):
        return cb_mean(params)

    def sample(self, params, generator=None):
        # Inverse CDF. For eta < 0, F^-1(u) = log1p(u * expm1(eta)) / eta,
        # which cannot overflow; for eta > 0, use 1 - X ~ CB(-eta).
        u = torch.rand(params.shape, generator=generator, device=params.device, dtype=params.dtype)
        small = params.abs() < _SAMPLE_TAYLOR
        a = -torch.where(small, torch.ones_like(params), params.abs())
        y = torch.log1p(u * torch.expm1(a)) / a
        x = torch.where(params > 0, 1.0 - y, y)
        return torch.where(small, u, x).clamp(0.0, 1.0)


class ContinuousBernoulli(Likelihood):
    """Continuous Bernoulli likelihood on logits, for data in [0, 1].

    The normalised form of the Bernoulli "likelihood" that VAEs apply to
    grey levels (Loaiza-Ganem & Cunningham, 2019)::

        p(x | eta) = C(eta) p**x (1 - p)**(1 - x),   p = sigmoid(eta),
        C(eta) = 2 artanh(1 - 2p) / (1 - 2p)  (2 at p = 1/2)

    a proper density on [0, 1], so the ELBO is a true bound on log p(x) and
    comparable with other likelihoods. The normaliser is computed stably
    near p = 1/2 (Taylor series) and at extreme logits. Its mean is not p:
    ``inverse_transform`` returns the mean, which lies nearer 1/2, and
    ``sample(decode="draw")`` draws by the inverse CDF.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.continuous_bernoulli import ContinuousBernoulli
    >>> module = ContinuousBernoulli().build(n_features=2)
    >>> module.log_prob(torch.tensor([[0.3, 1.0]]), torch.zeros(1, 2))  # uniform
    tensor([0.])
    >>> module.mean(torch.tensor([[0.0, 2.0]]))
    tensor([[0.5000, 0.6565]])
    """

    name = "continuous_bernoulli"

    def build(self, n_features):
        return ContinuousBernoulliModule()

    def check_data(self, X):
        low, high = float(np.min(X)), float(np.max(X))
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"The 'continuous_bernoulli' likelihood needs data in [0, 1], but X "
                f"ranges from {low:.4g} to {high:.4g}. Scale X with "
                "sklearn.preprocessing.MinMaxScaler(clip=True) (clip keeps new data in "
                "[0, 1] too), or use likelihood='gaussian'."
            )


@hookimpl
def skvae_register_likelihoods():
    return [ContinuousBernoulli]
