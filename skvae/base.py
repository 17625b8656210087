"""Base classes for skvae plugins: architectures, likelihoods and priors.

A plugin is a small *configuration* object (hyper-parameters only, with
``get_params``/``set_params`` so that scikit-learn can clone and tune it) that
knows how to *build* a :class:`torch.nn.Module` once the data shape is known.
The estimator builds the modules in ``fit``; the configuration object itself
never holds tensors or fitted state.

Writing a new plugin is a matter of subclassing one of :class:`Architecture`,
:class:`Likelihood` or :class:`Prior`, giving it a unique ``name`` and
returning it from the matching hook (see :mod:`skvae.hookspecs`).
"""

import math

import torch
from sklearn.base import BaseEstimator
from torch import nn

__all__ = [
    "Plugin",
    "Architecture",
    "Likelihood",
    "Prior",
    "EncoderDecoder",
    "LikelihoodModule",
    "PriorModule",
    "gaussian_log_prob",
]


class Plugin(BaseEstimator):
    """Base class of every skvae plugin configuration.

    Subclasses set the class attribute ``name`` (the string users pass to
    :class:`~skvae.VAETransformer`) and follow scikit-learn's rule for
    ``__init__``: store every keyword argument unchanged under the same name.

    Examples
    --------
    >>> from skvae.base import Prior
    >>> class MyPrior(Prior):
    ...     name = "my_prior"
    ...     def __init__(self, scale=1.0):
    ...         self.scale = scale
    >>> MyPrior(scale=2.0).get_params()
    {'scale': 2.0}
    """

    #: Registered name of the plugin; unique within its kind.
    name = None
    #: Kind of the plugin: "architecture", "likelihood" or "prior".
    kind = None


class EncoderDecoder(nn.Module):
    """Torch module pairing an encoder network with a decoder network.

    The encoder maps a batch ``x`` of shape ``(batch, n_features)`` to
    ``2 * n_components`` outputs, read as the posterior mean and log-variance
    of a diagonal Gaussian; the decoder maps ``z`` of shape
    ``(batch, n_components)`` to the likelihood's parameters.

    Parameters
    ----------
    encoder : torch.nn.Module
        Network from ``x`` to ``2 * n_components`` values.
    decoder : torch.nn.Module
        Network from ``z`` to ``n_likelihood_params`` values.

    Examples
    --------
    >>> from torch import nn
    >>> from skvae.base import EncoderDecoder
    >>> net = EncoderDecoder(nn.Linear(4, 2 * 2), nn.Linear(2, 4))
    >>> import torch
    >>> mean, log_var = net.encode(torch.zeros(3, 4))
    >>> mean.shape, net.decode(mean).shape
    (torch.Size([3, 2]), torch.Size([3, 4]))
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x):
        """Return the posterior mean and log-variance for ``x``."""
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        return mean, log_var

    def decode(self, z):
        """Return the likelihood parameters for latent codes ``z``."""
        return self.decoder(z)


class Architecture(Plugin):
    """Base class of architecture plugins (the encoder and decoder networks).

    Subclasses implement :meth:`build`.

    Examples
    --------
    >>> from torch import nn
    >>> from skvae.base import Architecture, EncoderDecoder
    >>> class Linear(Architecture):
    ...     name = "linear"
    ...     def build(self, n_features, n_components, n_outputs):
    ...         return EncoderDecoder(nn.Linear(n_features, 2 * n_components),
    ...                               nn.Linear(n_components, n_outputs))
    >>> net = Linear().build(n_features=8, n_components=2, n_outputs=8)
    >>> type(net).__name__
    'EncoderDecoder'
    """

    kind = "architecture"

    def build(self, n_features, n_components, n_outputs):
        """Build the network.

        Parameters
        ----------
        n_features : int
            Number of input features.
        n_components : int
            Size of the latent space.
        n_outputs : int
            Number of decoder outputs per sample (the likelihood's parameters).

        Returns
        -------
        module : torch.nn.Module
            A module with ``encode(x) -> (mean, log_var)`` and
            ``decode(z) -> params``, such as :class:`EncoderDecoder`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement build(n_features, "
            "n_components, n_outputs)."
        )


class Likelihood(Plugin):
    """Base class of likelihood plugins, p(x | z).

    The decoder outputs ``n_params_per_feature * n_features`` values per
    sample; the module returned by :meth:`build` turns them into a
    log-probability, a mean and draws.

    Examples
    --------
    >>> import torch
    >>> from skvae.base import Likelihood, LikelihoodModule
    >>> class Exact(Likelihood):
    ...     name = "exact"
    ...     def build(self, n_features):
    ...         return ExactModule()
    >>> class ExactModule(LikelihoodModule):
    ...     def log_prob(self, x, params):
    ...         return -((x - params) ** 2).sum(-1)
    ...     def mean(self, params):
    ...         return params
    ...     def sample(self, params, generator=None):
    ...         return params
    >>> Exact().n_params_per_feature
    1
    """

    kind = "likelihood"
    #: Number of decoder outputs per feature (e.g. 2 for mean and scale).
    n_params_per_feature = 1

    def build(self, n_features):
        """Build the likelihood module (holds any learned parameters).

        Parameters
        ----------
        n_features : int
            Number of features of the data.

        Returns
        -------
        module : LikelihoodModule
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build.")

    def check_data(self, X):
        """Raise ValueError if ``X`` lies outside the likelihood's domain.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated training data.
        """


class LikelihoodModule(nn.Module):
    """Torch side of a likelihood: log-probability, mean and draws.

    ``params`` is the decoder output, of shape
    ``(batch, n_params_per_feature * n_features)``.

    Examples
    --------
    >>> import torch
    >>> from skvae.base import LikelihoodModule
    >>> class Poissonish(LikelihoodModule):
    ...     def log_prob(self, x, params):
    ...         rate = params.exp()
    ...         return (x * params - rate - torch.lgamma(x + 1)).sum(-1)
    ...     def mean(self, params):
    ...         return params.exp()
    >>> Poissonish().log_prob(torch.zeros(1, 3), torch.zeros(1, 3))
    tensor([-3.])
    """

    def log_prob(self, x, params):
        """Return log p(x | params) summed over features, shape ``(batch,)``."""
        raise NotImplementedError

    def mean(self, params):
        """Return the mean of p(x | params), shape ``(batch, n_features)``."""
        raise NotImplementedError

    def sample(self, params, generator=None):
        """Return one draw of x ~ p(x | params), shape ``(batch, n_features)``."""
        raise NotImplementedError


class Prior(Plugin):
    """Base class of prior plugins, p(z).

    Examples
    --------
    >>> from skvae.base import Prior
    >>> Prior.kind
    'prior'
    """

    kind = "prior"

    def build(self, n_components, n_features):
        """Build the prior module (holds any learned parameters).

        Parameters
        ----------
        n_components : int
            Size of the latent space.
        n_features : int
            Number of features of the data (for priors defined through the
            encoder, such as the VampPrior's pseudo-inputs).

        Returns
        -------
        module : PriorModule
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build.")


class PriorModule(nn.Module):
    """Torch side of a prior: KL term, log-density and draws.

    Subclasses implement :meth:`log_prob` and :meth:`sample`; :meth:`kl`
    defaults to a one-sample Monte Carlo estimate and can be overridden with
    a closed form.

    Examples
    --------
    >>> import torch
    >>> from skvae.base import PriorModule, gaussian_log_prob
    >>> class Wide(PriorModule):  # N(0, 4 I)
    ...     def log_prob(self, z):
    ...         log_var = torch.full_like(z, 2 * torch.log(torch.tensor(2.0)))
    ...         return gaussian_log_prob(z, torch.zeros_like(z), log_var).sum(-1)
    >>> z = torch.zeros(1, 2)
    >>> bool(Wide().kl(z, torch.zeros(1, 2), z) > 0)
    True
    """

    def kl(self, mean, log_var, z):
        """Return KL(q(z|x) || p(z)) per sample, shape ``(batch,)``.

        ``z`` is a draw from q, for priors whose KL has no closed form
        (a one-sample Monte Carlo estimate log q(z|x) - log p(z)).
        """
        return gaussian_log_prob(z, mean, log_var).sum(-1) - self.log_prob(z)

    def kl_per_dim(self, mean, log_var, z):
        """Return the KL term per latent dimension, shape ``(batch, n_components)``.

        Defined for priors that factorise over dimensions; used by free bits
        and :meth:`skvae.VAETransformer.kl_per_dimension`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} gives no per-dimension KL; free_bits and "
            "kl_per_dimension need a prior that factorises over latent dimensions, "
            "such as 'normal'."
        )

    def bind_encoder(self, encode):
        """Receive the model's ``encode(x) -> (mean, log_var)``; called once.

        Priors defined through the encoder (the VampPrior) keep it; others
        ignore it.
        """

    def log_prob(self, z):
        """Return log p(z) summed over latent dimensions, shape ``(batch,)``."""
        raise NotImplementedError

    def sample(self, n_samples, generator=None, device=None):
        """Return ``n_samples`` draws from the prior."""
        raise NotImplementedError


_LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x, mean, log_var):
    """Element-wise log N(x; mean, exp(log_var)).

    Examples
    --------
    >>> import torch
    >>> from skvae.base import gaussian_log_prob
    >>> round(float(gaussian_log_prob(torch.tensor(0.0), torch.tensor(0.0),
    ...                               torch.tensor(0.0))), 4)
    -0.9189
    """
    return -0.5 * (_LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var))
