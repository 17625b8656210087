"""Prior ``mixture``: a learned mixture of diagonal Gaussians, Monte Carlo KL."""

from numbers import Integral

import torch
from torch import nn

from skvae.base import Prior, PriorModule, gaussian_log_prob
from skvae.hookspecs import hookimpl


class GaussianMixturePriorModule(PriorModule):
    """Torch side of :class:`GaussianMixturePrior`.

    Learned parameters: ``means`` and ``log_vars`` of shape
    ``(n_mixture, n_components)`` and the mixing ``logits`` of shape
    ``(n_mixture,)`` (weights = softmax(logits)). The means start as draws
    from N(0, I) (torch's global RNG, which the estimator seeds while it
    builds the model), the variances at 1 and the weights equal.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> module = GaussianMixturePriorModule(n_components=2, n_mixture=3)
    >>> module.means.shape, module.log_prob(torch.zeros(4, 2)).shape
    (torch.Size([3, 2]), torch.Size([4]))
    """

    def __init__(self, n_components, n_mixture):
        super().__init__()
        self.n_components = n_components
        self.means = nn.Parameter(torch.randn(n_mixture, n_components))
        self.log_vars = nn.Parameter(torch.zeros(n_mixture, n_components))
        self.logits = nn.Parameter(torch.zeros(n_mixture))

    # kl: the default one-sample Monte Carlo estimate of PriorModule,
    # log q(z|x) - log p(z) at the reparameterised draw z.

    def log_prob(self, z):
        # (..., 1, D) against (K, D): per-component log densities (..., K).
        per_component = gaussian_log_prob(z.unsqueeze(-2), self.means, self.log_vars).sum(-1)
        return torch.logsumexp(per_component + torch.log_softmax(self.logits, dim=-1), dim=-1)

    def sample(self, n_samples, generator=None, device=None):
        if device is None:
            device = generator.device if generator is not None else self.means.device
        weights = torch.softmax(self.logits.detach(), dim=-1).to(device)
        k = torch.multinomial(weights, n_samples, replacement=True, generator=generator)
        eps = torch.randn(
            (n_samples, self.n_components), generator=generator, device=device,
            dtype=self.means.dtype,
        )
        means, log_vars = self.means.to(device), self.log_vars.to(device)
        return means[k] + torch.exp(0.5 * log_vars[k]) * eps


class GaussianMixturePrior(Prior):
    """Learned mixture-of-Gaussians prior, p(z) = sum_k w_k N(z; m_k, diag(s_k**2)).

    The means, log-variances and mixing weights (through softmax logits) are
    trained with the rest of the model. ``log_prob`` is evaluated with a
    log-sum-exp over the components. A multi-modal prior suits data made of
    clusters (a GMVAE-style latent space without a discrete latent).

    The KL term KL(q(z|x) || p(z)) between a Gaussian and a mixture has no
    closed form: it is estimated by **one-sample Monte Carlo**,
    log q(z|x) - log p(z) at the reparameterised draw z ~ q(z|x) of the
    objective, so gradients reach the mixture's parameters through log p(z).

    Sampling draws the component k ~ Categorical(w) and then
    z ~ N(m_k, diag(s_k**2)), both from the given :class:`torch.Generator`.

    Parameters
    ----------
    n_components_mixture : int, default=10
        Number of Gaussian components K (not the latent size, which is the
        estimator's ``n_components``). The means are initialised as draws
        from N(0, I), spread over the region a standard normal prior covers,
        seeded by the estimator's ``random_state``; variances start at 1 and
        weights equal.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.mixture import GaussianMixturePrior
    >>> _ = torch.manual_seed(0)
    >>> prior = GaussianMixturePrior(n_components_mixture=4).build(n_components=2, n_features=8)
    >>> prior.means.shape, prior.logits.shape
    (torch.Size([4, 2]), torch.Size([4]))
    >>> prior.sample(5, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([5, 2])
    """

    name = "mixture"

    def __init__(self, n_components_mixture=10):
        self.n_components_mixture = n_components_mixture

    def build(self, n_components, n_features):
        k = self.n_components_mixture
        if not (isinstance(k, Integral) and not isinstance(k, bool) and k >= 1):
            raise ValueError(
                "GaussianMixturePrior n_components_mixture must be a positive "
                f"integer (1, 2, ...); got {k!r}."
            )
        return GaussianMixturePriorModule(n_components, int(k))


@hookimpl
def skvae_register_priors():
    return [GaussianMixturePrior]
