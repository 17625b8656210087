"""The VAE as one torch module: the plugins' modules put together.

This is where the objective is defined, once, for training, validation and
scoring alike. Per sample::

    loss = -log p(x | z) + beta * KL(q(z | x) || p(z)),   z = mean + std * eps

where -log p(x | z) is summed over features and the KL term over latent
dimensions; batches average the per-sample loss. With beta = 1 the negative
loss is the evidence lower bound (ELBO) in nats.
"""

import torch
from torch import nn

# Posterior log-variances are clamped to this range, so that exp() can neither
# overflow nor produce a zero standard deviation.
LOG_VAR_MIN, LOG_VAR_MAX = -30.0, 20.0


class VAEModule(nn.Module):
    """Encoder/decoder network, likelihood and prior as one module.

    Parameters
    ----------
    net : torch.nn.Module
        Built by an architecture plugin; has ``encode`` and ``decode``.
    likelihood : skvae.base.LikelihoodModule
    prior : skvae.base.PriorModule
    n_components : int
        Size of the latent space.
    """

    def __init__(self, net, likelihood, prior, n_components):
        super().__init__()
        self.n_components = n_components
        self.net = net
        self.likelihood = likelihood
        self.prior = prior

    def encode(self, x):
        """Return the posterior mean and clamped log-variance."""
        mean, log_var = self.net.encode(x)
        return mean, log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX)

    def decode(self, z):
        """Return the likelihood parameters for ``z``."""
        return self.net.decode(z)

    def terms(self, x, eps):
        """Return the per-sample reconstruction term and KL term.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
        eps : Tensor of shape (batch, n_components)
            Standard normal noise for the reparameterisation z = mean + std * eps.

        Returns
        -------
        nll : Tensor of shape (batch,)
            -log p(x | z), summed over features.
        kl : Tensor of shape (batch,)
            KL(q(z | x) || p(z)), summed over latent dimensions.
        """
        mean, log_var = self.encode(x)
        z = mean + torch.exp(0.5 * log_var) * eps
        nll = -self.likelihood.log_prob(x, self.decode(z))
        kl = self.prior.kl(mean, log_var, z)
        return nll, kl
