"""Prior ``vamp``: the VampPrior, a mixture of the encoder's posteriors at learned pseudo-inputs."""

import math
from numbers import Integral, Real

import torch
from torch import nn

from skvae.base import Prior, PriorModule, gaussian_log_prob
from skvae.hookspecs import hookimpl


class VampPriorModule(PriorModule):
    """Torch side of :class:`VampPrior`.

    Holds the learned ``pseudo_inputs`` of shape ``(n_pseudo_inputs,
    n_features)``; the encoder comes from :meth:`bind_encoder` and is kept as
    a plain attribute, not a submodule: it is a bound method of the parent
    VAE module, and registering the parent under its own child would make a
    cycle (infinite recursion in ``modules()``, ``state_dict()``, ``to()``).
    Its parameters are the encoder's, trained and saved by the parent.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> module = VampPriorModule(n_components=2, n_features=4, n_pseudo_inputs=3,
    ...                          init_std=1.0)
    >>> encoder = torch.nn.Linear(4, 2 * 2)
    >>> module.bind_encoder(lambda x: encoder(x).chunk(2, dim=-1))
    >>> module.log_prob(torch.zeros(5, 2)).shape
    torch.Size([5])
    """

    def __init__(self, n_components, n_features, n_pseudo_inputs, init_std):
        super().__init__()
        self.n_components = n_components
        self.pseudo_inputs = nn.Parameter(init_std * torch.randn(n_pseudo_inputs, n_features))
        self.__dict__["_encode"] = None

    def bind_encoder(self, encode):
        # Straight into __dict__: even an nn.Module passed here is not registered.
        self.__dict__["_encode"] = encode

    def components(self):
        """Return the mean and log-variance of q(z | u_k), each ``(K, n_components)``."""
        if self._encode is None:
            raise RuntimeError(
                "The VampPrior needs the encoder: call bind_encoder(encode) first "
                "(VAEModule does it when it is built)."
            )
        return self._encode(self.pseudo_inputs)

    # kl: the default one-sample Monte Carlo estimate of PriorModule,
    # log q(z|x) - log p(z) at the reparameterised draw z.

    def log_prob(self, z):
        mean, log_var = self.components()
        per_component = gaussian_log_prob(z.unsqueeze(-2), mean, log_var).sum(-1)
        return torch.logsumexp(per_component, dim=-1) - math.log(mean.shape[0])

    def sample(self, n_samples, generator=None, device=None):
        if device is None:
            device = generator.device if generator is not None else self.pseudo_inputs.device
        mean, log_var = self.components()
        mean, log_var = mean.to(device), log_var.to(device)
        k = torch.randint(mean.shape[0], (n_samples,), generator=generator, device=device)
        eps = torch.randn(
            (n_samples, self.n_components), generator=generator, device=device,
            dtype=mean.dtype,
        )
        return mean[k] + torch.exp(0.5 * log_var[k]) * eps


class VampPrior(Prior):
    """VampPrior (Tomczak & Welling, 2018): p(z) = 1/K sum_k q(z | u_k).

    The prior is the encoder's own posterior averaged over K learned
    *pseudo-inputs* u_k, points in data space trained with the rest of the
    model; it approximates the aggregate posterior, the optimal prior for the
    ELBO. ``log_prob`` runs the encoder on the pseudo-inputs and takes a
    log-sum-exp over the K Gaussians.

    The KL term has no closed form: it is estimated by **one-sample Monte
    Carlo**, log q(z|x) - log p(z) at the reparameterised draw z ~ q(z|x) of
    the objective; gradients reach the pseudo-inputs (and the encoder)
    through log p(z).

    Sampling picks k uniformly, then draws z ~ q(z | u_k), both from the
    given :class:`torch.Generator`.

    Parameters
    ----------
    n_pseudo_inputs : int, default=50
        Number of pseudo-inputs K.
    init_std : float, default=0.1
        The pseudo-inputs start as draws from N(0, init_std**2) per feature
        (seeded by the estimator's ``random_state``); the paper started near
        a blank image, N(0.05, 0.01**2), for pixel data in [0, 1].

    Notes
    -----
    Every training step evaluates the encoder on the K pseudo-inputs as well
    as on the batch, so an encoder with batch statistics (batch norm) sees
    them too.

    References
    ----------
    J. M. Tomczak and M. Welling, "VAE with a VampPrior", AISTATS 2018.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.vamp import VampPrior
    >>> _ = torch.manual_seed(0)
    >>> prior = VampPrior(n_pseudo_inputs=5).build(n_components=2, n_features=8)
    >>> prior.pseudo_inputs.shape
    torch.Size([5, 8])
    >>> encoder = torch.nn.Linear(8, 2 * 2)
    >>> prior.bind_encoder(lambda x: encoder(x).chunk(2, dim=-1))
    >>> prior.sample(3, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 2])
    """

    name = "vamp"

    def __init__(self, n_pseudo_inputs=50, init_std=0.1):
        self.n_pseudo_inputs = n_pseudo_inputs
        self.init_std = init_std

    def build(self, n_components, n_features):
        k = self.n_pseudo_inputs
        if not (isinstance(k, Integral) and not isinstance(k, bool) and k >= 1):
            raise ValueError(
                f"VampPrior n_pseudo_inputs must be a positive integer (1, 2, ...); got {k!r}."
            )
        std = self.init_std
        if not (
            isinstance(std, Real) and not isinstance(std, bool) and math.isfinite(std) and std >= 0
        ):
            raise ValueError(
                f"VampPrior init_std must be a finite number >= 0; got {std!r}."
            )
        return VampPriorModule(n_components, n_features, int(k), float(std))


@hookimpl
def skvae_register_priors():
    return [VampPrior]
