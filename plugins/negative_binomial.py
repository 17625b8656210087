"""Likelihood ``negative_binomial``: over-dispersed counts (mean and inverse dispersion)."""

import math

import torch
from torch import nn

from skvae.base import Likelihood, LikelihoodModule
from skvae.hookspecs import hookimpl

from ._scale import is_positive_real, standard_gamma
from .poisson import check_counts, check_log_input


class NegativeBinomialModule(LikelihoodModule):
    """Torch side of :class:`NegativeBinomial`: the decoder outputs log-means."""

    def __init__(self, n_features, theta, log_input=True):
        super().__init__()
        self.log_input = log_input
        if isinstance(theta, str):  # "learned": log theta per feature, theta = 1 at first
            self.log_theta = nn.Parameter(torch.zeros(n_features))
            self.fixed_log_theta = None
        else:
            self.log_theta = None
            self.fixed_log_theta = math.log(theta)  # a Python float: exact in any dtype

    def _log_theta(self, like):
        if self.log_theta is None:
            return torch.full((), self.fixed_log_theta, dtype=like.dtype, device=like.device)
        return self.log_theta

    def theta(self, like=None):
        """Inverse dispersion: a scalar (fixed) or one per feature (learned).

        A fixed theta comes in the dtype and on the device of ``like``.
        """
        return torch.exp(self._log_theta(torch.empty(()) if like is None else like))

    def extra_repr(self):
        if self.log_theta is None:
            return f"theta={math.exp(self.fixed_log_theta):g}, log_input={self.log_input}"
        return f"theta=learned, log_input={self.log_input}"

    def features(self, x):
        """The encoder's view: log(1 + x) (counts on a log scale), or x."""
        return torch.log1p(x) if self.log_input else x

    def log_prob_features(self, x, params):
        # log NB(x; mu, theta) with log mu = params, as in scvi-tools but with
        # log(theta + mu) computed as a log-sum-exp (no epsilon needed).
        log_theta = self._log_theta(params).expand_as(params)
        theta = torch.exp(log_theta)
        log_theta_mu = torch.logaddexp(log_theta, params)
        return (
            theta * (log_theta - log_theta_mu)
            + x * (params - log_theta_mu)
            + torch.lgamma(x + theta)
            - torch.lgamma(theta)
            - torch.lgamma(x + 1.0)
        )

    def mean(self, params):
        return torch.exp(params)

    def sample(self, params, generator=None):
        # Gamma-Poisson mixture: rate ~ Gamma(theta, theta / mu), x ~ Poisson(rate).
        theta = self.theta(params).to(params.dtype).expand_as(params).contiguous()
        rate = standard_gamma(theta, generator) * torch.exp(params) / theta
        return torch.poisson(rate, generator=generator)


class NegativeBinomial(Likelihood):
    """Negative binomial likelihood for over-dispersed counts.

    Parametrised as in scvi-tools by its mean mu(z) = exp(eta(z)), eta the
    decoder output, and an inverse dispersion theta > 0 per feature::

        p(x | mu, theta) = Gamma(x + theta) / (Gamma(theta) x!)
                           * (theta / (theta + mu))**theta
                           * (mu / (theta + mu))**x

    so that Var[x] = mu + mu**2 / theta: theta -> infinity gives the
    Poisson, small theta strong over-dispersion. The data must be
    non-negative integer counts.

    Parameters
    ----------
    theta : float or "learned", default="learned"
        Inverse dispersion: a fixed positive number, or "learned" for one per
        feature (learned on the log scale, starting at 1).
    log_input : bool, default=True
        Whether the encoder sees log(1 + x) rather than the raw counts (see
        :class:`~skvae_plugins.poisson.Poisson`). Model files written before
        this parameter existed load with ``log_input=False``.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.negative_binomial import NegativeBinomial
    >>> module = NegativeBinomial(theta=1.0).build(n_features=1)
    >>> module.log_prob(torch.tensor([[0.0], [1.0]]), torch.zeros(2, 1))  # geometric(1/2)
    tensor([-0.6931, -1.3863])
    """

    name = "negative_binomial"
    _defaults_of_older_files = {"log_input": False}

    def __init__(self, theta="learned", log_input=True):
        self.theta = theta
        self.log_input = log_input

    def build(self, n_features):
        learned = isinstance(self.theta, str) and self.theta == "learned"
        if not (learned or is_positive_real(self.theta)):
            raise ValueError(
                "NegativeBinomial theta (inverse dispersion) must be a positive "
                f"number or 'learned' (one per feature); got {self.theta!r}."
            )
        check_log_input(self.name, self.log_input)
        return NegativeBinomialModule(n_features, self.theta, bool(self.log_input))

    def check_data(self, X):
        check_counts(
            self.name,
            X,
            "use likelihood='gaussian' for real-valued data.",
        )


@hookimpl
def skvae_register_likelihoods():
    return [NegativeBinomial]
