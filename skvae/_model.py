"""The VAE as one torch module: the plugins' modules put together.

This is where the objective is defined, once, for training, validation and
scoring alike (:meth:`VAEModule.loss`). Per sample::

    loss = -log p(x | z) + beta * KL(q(z | x) || p(z)),   z = mean + std * eps

where -log p(x | z) is summed over features and the KL term over latent
dimensions; batches average the per-sample loss. With beta = 1 the negative
loss is the evidence lower bound (ELBO) in nats. A conditional model passes a
condition c to the encoder and the decoder: q(z | x, c), p(x | z, c).

A model built for missing values (``missing_values=True``) takes rows with
NaN entries: -log p(x | z) is summed over the observed entries only (the
likelihood's ``log_prob_features``), and the encoder sees the zero-filled
row, with the missingness mask as an encoder condition when the network can
take one (``encoder_mask``). The mask is derived from the NaNs inside the
module, so that the training loop and the data need nothing new, and a model
built without missing values runs exactly the code it ran before.
"""

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

from . import base as _base
from .base import LOG_VAR_MAX, LOG_VAR_MIN, gaussian_log_prob, negative_log_likelihood


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
    encoder_conditions, decoder_conditions : int, default=0
        Widths of the condition ``c`` that the network's encoder and decoder
        take (``encode(x, c)``, ``decode(z, c)``); 0 for none. A missing
        condition (``c=None``) is the all-zero "unknown" condition.
    missing_values : bool, default=False
        Whether rows may hold NaN entries (missing values): the
        reconstruction term then covers the observed entries only, and the
        encoder sees the row with its NaNs replaced by zeros. Needs a
        likelihood module with ``log_prob_features``.
    encoder_mask : bool, default=False
        With ``missing_values``: whether the network's encoder takes the
        missingness mask (1 observed, 0 missing; ``n_features`` columns) as
        a condition after the label's ``encoder_conditions`` columns, i.e.
        it was built with ``encoder_conditions + n_features`` condition
        columns.
    """

    def __init__(
        self, net, likelihood, prior, n_components, encoder_conditions=0, decoder_conditions=0,
        missing_values=False, encoder_mask=False,
    ):
        super().__init__()
        self.n_components = n_components
        self.encoder_conditions = encoder_conditions
        self.decoder_conditions = decoder_conditions
        self.missing_values = bool(missing_values)
        self.encoder_mask = bool(missing_values and encoder_mask)
        self.net = net
        self.likelihood = likelihood
        self.prior = prior
        # Whether the network brings its own model (a ladder VAE's ``terms``
        # and ``log_weights``), looked up once: ``hasattr`` on a torch module
        # that lacks the attribute raises and catches an exception each time.
        self._net_terms = hasattr(net, "terms")
        self._net_log_weights = hasattr(net, "log_weights")
        # The parts as plain references, for the code that runs every step:
        # reading a submodule attribute (``self.net``) goes through
        # nn.Module.__getattr__ (a failed lookup, then a Python call) at
        # every access. The parts are set here once and never replaced.
        if self.missing_values:
            check_log_prob_features(likelihood)
            reconstruction = functools.partial(_observed_nll, likelihood)
            self._log_prob = functools.partial(_observed_log_prob, likelihood)
        else:
            reconstruction = _nll_function(likelihood)
            self._log_prob = likelihood.log_prob
        self._parts = (net, reconstruction, prior)
        # The encoder's view of the rows: the likelihood's ``features`` when it
        # overrides the identity (categories seen one-hot), else the rows.
        self._features = _features_function(likelihood)
        if (self._features is not None and self._net_terms
                and not getattr(net, "encodes_features", False)):
            raise ValueError(
                f"The likelihood module {type(likelihood).__name__} shows the encoder "
                f"its own view of the data (features), which the network "
                f"{type(net).__name__} cannot use: it has its own model. Use a "
                "single-layer architecture, such as 'mlp'."
            )
        # A prior that is no PriorModule is reported by the dry run of
        # skvae._plugin_check, with the plugin's name, not here.
        bind_encoder = getattr(prior, "bind_encoder", None)
        if callable(bind_encoder):
            bind_encoder(self.encode)

    @property
    def config(self):
        """Keyword arguments that rebuild this module's structure (for pickling)."""
        config = {}
        if self.missing_values:
            config["missing_values"] = True
            config["encoder_mask"] = self.encoder_mask
        if self.encoder_conditions:
            config["encoder_conditions"] = self.encoder_conditions
        if self.decoder_conditions:
            config["decoder_conditions"] = self.decoder_conditions
        return config

    def encode(self, x, c=None):
        """Return the posterior mean and clamped log-variance (given ``c``).

        The log-variance is clamped to [:data:`~skvae.base.LOG_VAR_MIN`,
        :data:`~skvae.base.LOG_VAR_MAX`], so that ``exp`` of it (the
        variance, the standard deviation of the draw) stays finite and
        positive. ``hardtanh`` is that clamp in one kernel forward and one
        backward (``clamp``'s backward takes several), and its gradient is
        that of the clamped value: zero outside the range.
        """
        net = self._parts[0]
        if self.missing_values:
            x, c = self._encoder_input(x, c)
            mean, log_var = net.encode(x, c) if c is not None else net.encode(x)
            return mean, F.hardtanh(log_var, LOG_VAR_MIN, LOG_VAR_MAX)
        if self._features is not None:
            x = self._features(x)
        if self.encoder_conditions:
            if c is None:
                c = x.new_zeros((x.shape[0], self.encoder_conditions))
            mean, log_var = net.encode(x, c)
        else:
            mean, log_var = net.encode(x)
        return mean, F.hardtanh(log_var, LOG_VAR_MIN, LOG_VAR_MAX)

    def _encoder_input(self, x, c):
        """The zero-filled rows and the encoder's condition (label, then mask) of a
        model with missing values."""
        observed = ~torch.isnan(x)
        if self._features is not None:  # NaN (or 0) where missing, then 0
            x = self._features(x)
            x = torch.where(torch.isnan(x), 0.0, x)
        else:
            x = torch.where(observed, x, 0.0)
        if self.encoder_conditions and c is None:
            c = x.new_zeros((x.shape[0], self.encoder_conditions))
        if self.encoder_mask:
            mask = observed.to(x.dtype)
            c = mask if c is None else torch.cat([c, mask], dim=-1)
        return x, c

    def decode(self, z, c=None):
        """Return the likelihood parameters for ``z`` (given ``c``)."""
        net = self._parts[0]
        if self.decoder_conditions:
            if c is None:
                c = z.new_zeros((z.shape[0], self.decoder_conditions))
            return net.decode(z, c)
        return net.decode(z)

    def _conditions(self, x, c):
        """Return the conditions (of the encoder, of the decoder) for a batch."""
        return c, c

    def loss(self, x, noise, beta=1.0, free_bits=0.0, n_importance=1, c=None):
        """Return the batch objective and the per-sample terms for the history.

        The objective of training and validation, in one place:

        - ``n_importance == 1``: the negative ELBO with a KL weight,
          mean over the batch of ``-log p(x|z) + beta * KL``. With
          ``free_bits > 0`` the KL term is ``sum_j max(free_bits, KL_j)``,
          KL_j being the batch-mean KL of latent dimension j (Kingma et al.
          2016), so that no dimension is pushed below ``free_bits`` nats.
        - ``n_importance = k > 1``: the negative IWAE bound (Burda et al.
          2016), mean over the batch of
          ``-(logsumexp_k log w_k - log k)``; there is no KL weight.

        ``c`` is the per-row condition of a conditional model, of shape
        ``(batch, width)`` (None: the all-zero unknown condition); the
        encoder and decoder see it, so the terms are those of
        ``q(z | x, c)`` and ``p(x | z, c)``.

        Returns
        -------
        loss : Tensor (scalar)
        nll, kl : Tensor of shape (batch,) or None
            -log p(x|z) and the KL term per sample (None for IWAE).
        """
        if n_importance > 1:
            rows = x.shape[0]
            log_w = self.log_weights(x, noise, c, copies=n_importance)
            bound = torch.logsumexp(log_w.view(rows, n_importance), dim=1)
            return -(bound - math.log(n_importance)).mean(), None, None
        if free_bits > 0:
            c_enc, c_dec = self._conditions(x, c)
            mean, log_var, z = self._posterior_draw(x, noise, c_enc)
            nll = self._parts[1](x, self.decode(z, c_dec))
            kl_dims = self.prior.kl_per_dim(mean, log_var, z)
            kl_term = kl_dims.mean(dim=0).clamp(min=free_bits).sum()
            return nll.mean() + beta * kl_term, nll, kl_dims.sum(-1)
        nll, kl = self.terms(x, noise, c)
        if isinstance(beta, (int, float)) and beta == 1:
            return (nll + kl).mean(), nll, kl  # the ELBO: no multiply in the step
        return (nll + beta * kl).mean(), nll, kl

    def _posterior_draw(self, x, noise, c=None, copies=1):
        """Return the posterior's mean and log-variance and a draw of z, per copy."""
        if self._net_terms:
            raise ValueError(
                f"{type(self.net).__name__} has several stochastic layers; free_bits "
                "and per-dimension KL need a single-layer architecture."
            )
        mean, log_var = self.encode(x, c)
        if copies > 1:  # one encoding per row, `copies` draws of z
            mean, log_var = _repeat(mean, copies), _repeat(log_var, copies)
        return mean, log_var, mean + torch.exp(0.5 * log_var) * noise(mean.shape)

    def terms(self, x, noise, c=None, copies=1):
        """Return the per-sample reconstruction term and KL term.

        Architectures whose model is not a single Gaussian latent layer (a
        ladder VAE) provide ``terms(x, noise, likelihood, prior)`` on their
        network, and this delegates to it.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
        noise : callable
            ``noise(shape)`` returns standard normal draws of that shape, for
            the reparameterisation z = mean + std * eps (see
            :class:`RandomNoise`, :class:`CommonNoise`).
        c : Tensor of shape (batch, width) or None, default=None
            Condition of a conditional model.
        copies : int, default=1
            Draws of z per row: the result has ``copies`` consecutive entries
            per row, as for ``x.repeat_interleave(copies, dim=0)``, but the
            encoder runs once per row.

        Returns
        -------
        nll : Tensor of shape (batch * copies,)
            -log p(x | z), summed over features.
        kl : Tensor of shape (batch * copies,)
            KL(q(z | x) || p(z)), summed over latent dimensions.
        """
        if self._net_terms:
            x, c = _repeat(x, copies), _repeat(c, copies)
            x, likelihood = self._own_model_inputs(x)
            return self.net.terms(x, noise, likelihood, self.prior)
        c_enc, c_dec = self._conditions(x, c)
        if copies > 1:
            mean, log_var, z = self._posterior_draw(x, noise, c_enc, copies)
            x, c_dec = _repeat(x, copies), _repeat(c_dec, copies)
        else:  # one draw per row (a training step): no copies to make
            mean, log_var = self.encode(x, c_enc)
            z = mean + torch.exp(0.5 * log_var) * noise(mean.shape)
        _, nll, prior = self._parts
        return nll(x, self.decode(z, c_dec)), prior.kl(mean, log_var, z)

    def log_weights(self, x, noise, c=None, copies=1):
        """Return log p(x | z) + log p(z) - log q(z | x) for draws z ~ q(z | x).

        The importance weights of the IWAE bound, per sample and draw, shape
        ``(batch * copies,)`` (``copies`` consecutive draws per row, one
        encoding per row). Networks with their own model provide
        ``log_weights(x, noise, likelihood, prior)``. ``c`` is the condition
        of a conditional model.
        """
        if self._net_log_weights:
            x, c = _repeat(x, copies), _repeat(c, copies)
            x, likelihood = self._own_model_inputs(x)
            return self.net.log_weights(x, noise, likelihood, self.prior)
        return self.weighted_draws(x, noise, c, copies)[0]

    def weighted_draws(self, x, noise, c=None, copies=1):
        """Return the log importance weights and the decoder's params of each draw.

        As :meth:`log_weights` (``copies`` draws z_k ~ q(z | x) per row,
        consecutive), with the likelihood parameters of p(x | z_k) too: what
        imputation needs (self-normalised weights, then the means of
        p(x | z_k) or a draw). For single-layer networks only.

        Returns
        -------
        log_w : Tensor of shape (batch * copies,)
            log p(x_obs | z_k) + log p(z_k) - log q(z_k | x).
        params : Tensor of shape (batch * copies, n_params)
            The decoder's output at z_k.
        """
        if self._net_log_weights:
            raise ValueError(
                f"{type(self.net).__name__} has several stochastic layers; imputation "
                "needs a single-layer architecture, such as 'mlp'."
            )
        c_enc, c_dec = self._conditions(x, c)
        mean, log_var, z = self._posterior_draw(x, noise, c_enc, copies)
        x, c_dec = _repeat(x, copies), _repeat(c_dec, copies)
        log_q = gaussian_log_prob(z, mean, log_var).sum(-1)
        params = self.decode(z, c_dec)
        return self._log_prob(x, params) + self.prior.log_prob(z) - log_q, params

    def _own_model_inputs(self, x):
        """The rows and likelihood for a network with its own model (``terms``).

        With missing values: the zero-filled rows, and the likelihood over
        their observed entries (:class:`ObservedLikelihood`).
        """
        if not self.missing_values:
            return x, self.likelihood
        observed = ~torch.isnan(x)
        return torch.where(observed, x, 0.0), ObservedLikelihood(self.likelihood, observed)

    def log_prob_features(self, x, params):
        """log p(x_j | params) per feature, 0 at missing (NaN) entries; ``(batch, n_features)``."""
        return _observed_log_prob_features(self.likelihood, x, params)


def _features_function(likelihood):
    """The likelihood module's ``features`` when it overrides the identity, else None."""
    method = getattr(type(likelihood), "features", None)
    if method is None or method is _base.LikelihoodModule.features:
        return None
    return likelihood.features


def _nll_function(likelihood):
    """``nll(x, params)`` of a likelihood module: its own ``nll`` when it has one.

    What :func:`skvae.base.negative_log_likelihood` does at each call,
    decided once.
    """
    nll = getattr(likelihood, "nll", None)
    return nll if nll is not None else functools.partial(negative_log_likelihood, likelihood)


def check_log_prob_features(likelihood):
    """Raise a TypeError unless ``likelihood`` has a per-feature log-probability."""
    method = getattr(type(likelihood), "log_prob_features", None)
    base = getattr(_base.LikelihoodModule, "log_prob_features")
    own_sum_only = (
        isinstance(likelihood, _base.LikelihoodModule)
        and method is base
        and type(likelihood).log_prob is not _base.LikelihoodModule.log_prob
    )
    if method is None or own_sum_only:
        raise ValueError(
            f"The likelihood module {type(likelihood).__name__} has no "
            "log_prob_features(x, params) (log p(x_j | params) of each feature, shape "
            "(batch, n_features)), which missing values need: the reconstruction term "
            "is summed over the observed entries only. Use a built-in likelihood, or "
            "implement log_prob_features in the plugin's module."
        )


def _observed_log_prob_features(likelihood, x, params):
    """log p(x_j | params) at the observed entries of x, 0 at its NaN entries."""
    observed = ~torch.isnan(x)
    # Missing entries are evaluated at 0 (in every built-in domain) and then
    # dropped: no NaN reaches the likelihood, its value or its gradient.
    log_p = likelihood.log_prob_features(torch.where(observed, x, 0.0), params)
    return torch.where(observed, log_p, 0.0)


def _observed_log_prob(likelihood, x, params):
    """log p(x_obs | params): the per-feature terms summed over the observed entries."""
    return _observed_log_prob_features(likelihood, x, params).sum(-1)


def _observed_nll(likelihood, x, params):
    """-log p(x_obs | params), the reconstruction term with missing values."""
    return -_observed_log_prob(likelihood, x, params)


class ObservedLikelihood:
    """A likelihood module restricted to the observed entries of a batch.

    What a network with its own model (``terms(x, noise, likelihood,
    prior)``, such as the ladder) is given under missing values: it is
    handed the zero-filled rows, and this object's ``log_prob`` and ``nll``
    sum the likelihood's ``log_prob_features`` over the entries that
    ``observed`` marks (rows repeated as the network repeats them).

    Parameters
    ----------
    likelihood : skvae.base.LikelihoodModule
    observed : Tensor of bool, shape (batch, n_features)

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.bernoulli import BernoulliModule
    >>> observed = torch.tensor([[True, False]])
    >>> ObservedLikelihood(BernoulliModule(), observed).nll(torch.ones(1, 2), torch.zeros(1, 2))
    tensor([0.6931])
    """

    def __init__(self, likelihood, observed):
        self.likelihood = likelihood
        self.observed = observed

    def log_prob_features(self, x, params):
        log_p = self.likelihood.log_prob_features(x, params)
        return torch.where(self.observed, log_p, 0.0)

    def features(self, x):
        """The likelihood's view of the rows, 0 where the view is missing."""
        view = self.likelihood.features(torch.where(self.observed, x, torch.nan))
        return torch.where(torch.isnan(view), 0.0, view)

    def log_prob(self, x, params):
        return self.log_prob_features(x, params).sum(-1)

    def nll(self, x, params):
        return -self.log_prob(x, params)

    def __getattr__(self, name):  # mean, sample, ...: the likelihood's own
        if name in ("likelihood", "observed"):  # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self.likelihood, name)


def _repeat(t, copies):
    """``t.repeat_interleave(copies, dim=0)``; None and ``copies == 1`` pass through."""
    return t if t is None or copies == 1 else t.repeat_interleave(copies, dim=0)


class RandomNoise:
    """Standard normal draws from a seeded :class:`torch.Generator`.

    Parameters
    ----------
    generator : torch.Generator
    device : torch.device
        Must match the generator's device.

    Examples
    --------
    >>> import torch
    >>> noise = RandomNoise(torch.Generator().manual_seed(0), torch.device("cpu"))
    >>> noise((2, 3)).shape
    torch.Size([2, 3])
    """

    def __init__(self, generator, device):
        self.generator = generator
        self.device = device

    def __call__(self, shape):
        return torch.randn(tuple(shape), generator=self.generator, device=self.device)


class CommonNoise:
    """The same ``k`` draws for every row: deterministic, batch-independent scores.

    The rows of a batch are ``k`` consecutive copies of each sample. Every
    call (one per stochastic layer) gets its own fixed block of ``k`` draws,
    in antithetic pairs (eps, -eps), tiled over the samples; so a sample's
    estimate depends neither on the other rows nor on the batch size.

    Parameters
    ----------
    k : int
        Draws per sample.
    device : torch.device
    seed : int, default=0

    Examples
    --------
    >>> import torch
    >>> noise = CommonNoise(4, torch.device("cpu"))
    >>> eps = noise((8, 2))  # two samples, four draws each
    >>> bool(torch.equal(eps[:4], eps[4:])), bool(torch.equal(eps[0], -eps[2]))
    (True, True)
    """

    def __init__(self, k, device, seed=0):
        self.k = k
        self.device = device
        self.seed = seed
        self._calls = 0

    def __call__(self, shape):
        n, rest = shape[0], tuple(shape[1:])
        generator = torch.Generator().manual_seed(self.seed + self._calls)
        self._calls += 1
        half = torch.randn(((self.k + 1) // 2, *rest), generator=generator)
        block = torch.cat([half, -half])[: self.k].to(self.device)
        return block.repeat(n // self.k, *([1] * len(rest)))
