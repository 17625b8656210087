"""Architecture ``ladder``: a Ladder VAE with two or more stochastic layers.

The Ladder VAE of Sonderby et al. (2016), "Ladder Variational Autoencoders",
for tabular data with any number of features. Stochastic layers are numbered
from the bottom, ``z_1`` (next to the data) to ``z_L`` (the top, of size
``n_components``, the layer ``transform`` returns).

Generative model::

    p(x, z) = p(x | z_1) p(z_L) prod_{i<L} p(z_i | z_{i+1})

with p(z_L) the estimator's prior plugin and p(z_i | z_{i+1}) diagonal
Gaussians from top-down networks. Inference: a deterministic bottom-up pass
gives a Gaussian "likelihood" term N(m_BU, s_BU^2) per layer; the top
posterior is the bottom-up term itself, and each lower posterior merges the
bottom-up term with the top-down prior N(m_TD, s_TD^2) by precision
weighting::

    var  = 1 / (s_BU^-2 + s_TD^-2)
    mean = (m_BU s_BU^-2 + m_TD s_TD^-2) * var

A draw is ``z = mean + sqrt(var) * eps``: the standard deviation, not the
variance, scales the noise (scaling it by the variance, as some
implementations do, draws from the wrong distribution).
Everything is carried as log-variances.

Besides the plugin class :class:`Ladder`, the module offers
:func:`transform_layers` (posterior means of every layer from a fitted
estimator), :func:`precision_weighted` and :func:`gaussian_kl`.
"""


import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from skvae.base import (
    ACTIVATIONS,
    LOG_VAR_MAX,
    LOG_VAR_MIN,
    Architecture,
    check_layer_sizes,
    gaussian_log_prob,
    map_batches,
    negative_log_likelihood,
)
from skvae.hookspecs import hookimpl

__all__ = ["Ladder", "LadderNet", "gaussian_kl", "precision_weighted", "transform_layers"]



def precision_weighted(mean_bu, log_var_bu, mean_td, log_var_td):
    """Merge two diagonal Gaussians by precision weighting (their normalised product).

    Returns the mean and log-variance of::

        var  = 1 / (var_bu^-1 + var_td^-1)
        mean = (mean_bu / var_bu + mean_td / var_td) * var

    computed stably in log space. The standard deviation of the result is
    ``exp(0.5 * log_var)``.

    Parameters
    ----------
    mean_bu, log_var_bu : Tensor
        Bottom-up term (mean and log-variance).
    mean_td, log_var_td : Tensor
        Top-down term (mean and log-variance), same shape.

    Returns
    -------
    mean, log_var : Tensor
        The merged Gaussian.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.ladder import precision_weighted
    >>> mean, log_var = precision_weighted(
    ...     torch.tensor([0.0]), torch.tensor([1.0]).log(),  # N(0, 1)
    ...     torch.tensor([3.0]), torch.tensor([0.5]).log())  # N(3, 0.5)
    >>> round(float(log_var.exp()), 4), round(float(mean), 4)  # var = 1 / (1 + 2)
    (0.3333, 2.0)
    """
    # precision_bu * var = 1 / (1 + var_bu / var_td) = sigmoid(log_var_td - log_var_bu)
    weight_bu = torch.sigmoid(log_var_td - log_var_bu)
    mean = weight_bu * mean_bu + (1.0 - weight_bu) * mean_td
    log_var = -torch.logaddexp(-log_var_bu, -log_var_td)
    return mean, log_var


def gaussian_kl(mean_q, log_var_q, mean_p, log_var_p):
    """Element-wise KL(N(mean_q, exp(log_var_q)) || N(mean_p, exp(log_var_p))).

    Parameters
    ----------
    mean_q, log_var_q : Tensor
        The first Gaussian (the posterior).
    mean_p, log_var_p : Tensor
        The second Gaussian (the prior), same shape.

    Returns
    -------
    kl : Tensor
        Same shape as the inputs; sum over the last axis for a diagonal
        Gaussian.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.ladder import gaussian_kl
    >>> zero = torch.zeros(1)
    >>> gaussian_kl(torch.ones(1), zero, zero, zero)  # (1 - 0)^2 / 2
    tensor([0.5000])
    """
    diff = mean_q - mean_p
    return 0.5 * (
        log_var_p - log_var_q + (log_var_q.exp() + diff * diff) * torch.exp(-log_var_p) - 1.0
    )


def _clamp(log_var):
    # The model's clamp (VAEModule.encode): hardtanh is clamp with a
    # one-kernel backward.
    return F.hardtanh(log_var, LOG_VAR_MIN, LOG_VAR_MAX)


def encoder_view(likelihood, x):
    """The rows as the encoder sees them: the likelihood module's ``features``.

    A likelihood of counts shows log(1 + x), a categorical one one-hot codes;
    a module without ``features`` shows the rows themselves.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.poisson import PoissonModule
    >>> encoder_view(PoissonModule(), torch.tensor([[0.0, 1.0]]))
    tensor([[0.0000, 0.6931]])
    """
    features = getattr(likelihood, "features", None)
    return x if features is None else features(x)


class _BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that uses its running statistics for a one-row training batch.

    The last minibatch of an epoch can hold a single row, on which batch
    statistics are undefined.
    """

    def forward(self, x):
        if self.training and x.shape[0] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias,
                False, 0.0, self.eps,
            )
        return super().forward(x)


def _mlp(n_in, sizes, activation, batch_norm, n_out=None):
    """Hidden layers ``sizes`` (Linear [BatchNorm] activation), then an optional linear output."""
    layers = []
    for size in sizes:
        layers.append(nn.Linear(n_in, size))
        if batch_norm:
            layers.append(_BatchNorm1d(size))
        layers.append(ACTIVATIONS[activation]())
        n_in = size
    if n_out is not None:
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class LadderNet(nn.Module):
    """Torch network of a Ladder VAE, built by :class:`Ladder`.

    Parameters
    ----------
    n_features : int
        Number of input features.
    latent_sizes : sequence of int
        Sizes of the stochastic layers, bottom (``z_1``) to top (``z_L``);
        at least two.
    hidden_sizes : sequence of int
        Widths of every deterministic block.
    n_outputs : int
        Number of likelihood parameters per sample.
    activation : str, default="relu"
    batch_norm : bool, default=False

    Attributes
    ----------
    bottom_up : ModuleList
        Deterministic blocks d_1..d_L (d_1 reads x, d_i reads d_{i-1}).
    bottom_up_heads : ModuleList
        Linear heads giving (mean, log-variance) of each layer's bottom-up term.
    top_down : ModuleList
        ``top_down[i]`` maps z_{i+2} to (mean, log-variance) of p(z_{i+1} | z_{i+2})
        (0-based index i; one per lower layer).
    decoder : Sequential
        From z_1 to the likelihood's parameters.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.ladder import LadderNet
    >>> net = LadderNet(n_features=5, latent_sizes=(4, 2), hidden_sizes=(8,), n_outputs=5)
    >>> [tuple(m.shape) for m, _ in net.encode_layers(torch.zeros(3, 5))]
    [(3, 4), (3, 2)]
    >>> net.decode(torch.zeros(3, 2)).shape
    torch.Size([3, 5])
    """

    #: ``terms`` and ``log_weights`` encode the likelihood's view of the rows
    #: (:func:`encoder_view`), as the model's ``encode`` does before calling
    #: :meth:`encode`: so count and categorical likelihoods pair with the ladder.
    encodes_features = True

    def __init__(
        self, n_features, latent_sizes, hidden_sizes, n_outputs, activation="relu",
        batch_norm=False,
    ):
        super().__init__()
        self.latent_sizes = tuple(latent_sizes)
        n_layers = len(self.latent_sizes)
        width = hidden_sizes[-1]
        self.bottom_up = nn.ModuleList(
            _mlp(n_features if i == 0 else width, hidden_sizes, activation, batch_norm)
            for i in range(n_layers)
        )
        self.bottom_up_heads = nn.ModuleList(
            nn.Linear(width, 2 * size) for size in self.latent_sizes
        )
        self.top_down = nn.ModuleList(
            _mlp(self.latent_sizes[i + 1], hidden_sizes, activation, batch_norm,
                 2 * self.latent_sizes[i])
            for i in range(n_layers - 1)
        )
        self.decoder = _mlp(
            self.latent_sizes[0], hidden_sizes[::-1], activation, batch_norm, n_outputs
        )

    # ---------------------------------------------------------------- passes
    def _bottom_up(self, x):
        """Bottom-up terms (mean, clamped log_var) of every layer, bottom to top."""
        terms, h = [], x
        for block, head in zip(self.bottom_up, self.bottom_up_heads):
            h = block(h)
            mean, log_var = head(h).chunk(2, dim=-1)
            terms.append((mean, _clamp(log_var)))
        return terms

    def _prior_conditional(self, i, z_above):
        """(mean, clamped log_var) of p(z_{i+1} | z_{i+2}), 0-based lower layer ``i``."""
        mean, log_var = self.top_down[i](z_above).chunk(2, dim=-1)
        return mean, _clamp(log_var)

    def posterior(self, x, noise=None):
        """Run inference: the posterior of every layer, and z drawn top-down.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
        noise : callable or None
            ``noise(shape)`` gives standard normal draws; it is called once
            per stochastic layer, top layer first. None uses each posterior
            mean as z (no sampling).

        Returns
        -------
        layers : list of dict, bottom to top
            Keys ``z``, ``mean``, ``log_var`` (the posterior q(z_i | .)) and,
            for every layer but the top, ``prior_mean`` and ``prior_log_var``
            (p(z_i | z_{i+1}) at the drawn z_{i+1}).
        """
        bottom_up = self._bottom_up(x)
        mean, log_var = bottom_up[-1]  # the top posterior is the bottom-up term
        z = mean if noise is None else mean + torch.exp(0.5 * log_var) * noise(mean.shape)
        layers = [{"z": z, "mean": mean, "log_var": log_var}]
        for i in range(len(bottom_up) - 2, -1, -1):
            prior_mean, prior_log_var = self._prior_conditional(i, z)
            mean, log_var = precision_weighted(*bottom_up[i], prior_mean, prior_log_var)
            log_var = _clamp(log_var)
            z = mean if noise is None else mean + torch.exp(0.5 * log_var) * noise(mean.shape)
            layers.append(
                {"z": z, "mean": mean, "log_var": log_var,
                 "prior_mean": prior_mean, "prior_log_var": prior_log_var}
            )
        return layers[::-1]

    # ------------------------------------------------------ module interface
    def encode(self, x):
        """Return the top layer's posterior (mean, log_var): what ``transform`` gives."""
        return self._bottom_up(x)[-1]

    def encode_layers(self, x):
        """Return the posterior (mean, log_var) of every layer, bottom to top.

        Lower layers depend on the layer above; here each z_{i+1} is set to
        its posterior mean, so the result is deterministic.
        """
        return [(layer["mean"], layer["log_var"]) for layer in self.posterior(x)]

    def decode(self, z):
        """Return the likelihood parameters for top-layer codes ``z``.

        The top-down path takes every lower layer at the mean of
        p(z_i | z_{i+1}) (no sampling), then decodes z_1.
        """
        for i in range(len(self.top_down) - 1, -1, -1):
            z = self._prior_conditional(i, z)[0]
        return self.decoder(z)

    def terms(self, x, noise, likelihood, prior):
        """Per-sample -log p(x | z_1) and the total KL term, shapes ``(batch,)``.

        The KL term is ``prior.kl`` for the top layer plus, for each lower
        layer, the analytic KL(q(z_i | .) || p(z_i | z_{i+1})) at the drawn
        z_{i+1}.
        """
        layers = self.posterior(encoder_view(likelihood, x), noise)
        nll = negative_log_likelihood(likelihood, x, self.decoder(layers[0]["z"]))
        top = layers[-1]
        kl = prior.kl(top["mean"], top["log_var"], top["z"])
        for layer in layers[:-1]:
            kl = kl + gaussian_kl(
                layer["mean"], layer["log_var"], layer["prior_mean"], layer["prior_log_var"]
            ).sum(-1)
        return nll, kl

    def log_weights(self, x, noise, likelihood, prior):
        """log p(x | z_1) + log p(z_L) + sum log p(z_i | z_{i+1}) - sum log q(z_i | .).

        One importance weight per sample (IWAE bound), shape ``(batch,)``.
        """
        layers = self.posterior(encoder_view(likelihood, x), noise)
        top = layers[-1]
        log_w = likelihood.log_prob(x, self.decoder(layers[0]["z"])) + prior.log_prob(top["z"])
        for layer in layers:
            log_w = log_w - gaussian_log_prob(layer["z"], layer["mean"], layer["log_var"]).sum(-1)
            if "prior_mean" in layer:
                log_w = log_w + gaussian_log_prob(
                    layer["z"], layer["prior_mean"], layer["prior_log_var"]
                ).sum(-1)
        return log_w




class Ladder(Architecture):
    """Ladder VAE (Sonderby et al. 2016): a hierarchy of Gaussian latent layers.

    The stochastic layers are ``latent_sizes`` (bottom to top, below the top)
    plus a top layer of size ``n_components``: ``latent_sizes=(32,)`` gives
    two layers, z_1 of size 32 and z_2 of size ``n_components``.

    - Bottom-up: deterministic blocks d_1..d_L (``hidden_sizes`` each), d_1
      on x and d_i on d_{i-1}, each with a Gaussian head N(m_BU, s_BU^2).
    - Top-down: p(z_L) is the estimator's prior (any prior plugin); for
      i < L, p(z_i | z_{i+1}) = N(m_TD, s_TD^2) from an MLP on z_{i+1}.
      p(x | z_1) comes from an MLP with ``hidden_sizes`` reversed.
    - Posterior: q(z_L | x) is the top bottom-up head; for i < L,
      q(z_i | .) merges both terms by precision weighting,
      var = 1 / (s_BU^-2 + s_TD^-2), mean = (m_BU s_BU^-2 + m_TD s_TD^-2) var,
      and draws use its standard deviation sqrt(var).
    - Objective: -log p(x | z_1) + beta * KL, the KL being ``prior.kl`` for
      the top layer plus the analytic KL(q(z_i | .) || p(z_i | z_{i+1}))
      of each lower layer (z_{i+1} drawn from the posterior).

    ``transform`` returns the top layer's posterior mean;
    :func:`transform_layers` returns every layer's. ``inverse_transform`` and
    ``sample`` decode a top-layer code through the top-down path with each
    lower layer at the mean of p(z_i | z_{i+1}).

    Parameters
    ----------
    latent_sizes : tuple of int, default=(32,)
        Sizes of the stochastic layers below the top, bottom first.
    hidden_sizes : tuple of int, default=(128,)
        Widths of the hidden layers of every deterministic block (bottom-up
        blocks, top-down networks; reversed for the decoder).
    activation : {"relu", "leaky_relu", "elu", "gelu", "silu", "tanh", \
"sigmoid"}, default="relu"
        Activation after each hidden layer.
    batch_norm : bool, default=False
        Batch normalisation after each hidden linear layer (the paper used
        it; it makes a sample's training loss depend on its batch).

    See Also
    --------
    skvae_plugins.mlp.MLP : One stochastic layer.

    References
    ----------
    C. K. Sonderby, T. Raiko, L. Maaloe, S. K. Sonderby, O. Winther, "Ladder
    Variational Autoencoders", NeurIPS 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae_plugins.ladder import Ladder, transform_layers
    >>> X = load_digits().data[:200] / 16
    >>> vae = VAETransformer(n_components=2, architecture=Ladder(latent_sizes=(8,),
    ...                      hidden_sizes=(32,)), max_iter=2, random_state=0).fit(X)
    >>> vae.transform(X[:3]).shape
    (3, 2)
    >>> [Z.shape for Z in transform_layers(vae, X[:3])]
    [(3, 8), (3, 2)]
    """

    name = "ladder"

    def __init__(self, latent_sizes=(32,), hidden_sizes=(128,), activation="relu",
                 batch_norm=False):
        self.latent_sizes = latent_sizes
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.batch_norm = batch_norm

    def build(self, n_features, n_components, n_outputs):
        latent = check_layer_sizes(self.latent_sizes, "Ladder latent_sizes", allow_empty=False)
        hidden = check_layer_sizes(self.hidden_sizes, "Ladder hidden_sizes", allow_empty=False)
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(
                f"Ladder activation must be one of {sorted(ACTIVATIONS)}; "
                f"got {self.activation!r}."
            )
        if not isinstance(self.batch_norm, (bool, np.bool_)):
            raise ValueError(f"Ladder batch_norm must be True or False; got {self.batch_norm!r}.")
        return LadderNet(
            n_features,
            latent + (n_components,),
            hidden,
            n_outputs,
            activation=self.activation,
            batch_norm=bool(self.batch_norm),
        )


def transform_layers(vae, X):
    """Posterior means of every stochastic layer of a fitted ladder VAE.

    Deterministic, like ``transform``: each lower layer is computed with the
    layer above at its posterior mean.

    Parameters
    ----------
    vae : VAETransformer
        Fitted with ``architecture="ladder"`` (or a :class:`Ladder` instance).
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    layers : list of ndarray
        Bottom (z_1) to top; the last equals ``vae.transform(X)``. Each of
        shape (n_samples, layer size), in the dtype of X (float32 or float64).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``vae`` is not fitted.
    ValueError
        When the fitted architecture is not a ladder.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAETransformer
    >>> from skvae_plugins.ladder import Ladder, transform_layers
    >>> X = np.random.RandomState(0).rand(50, 6)
    >>> vae = VAETransformer(n_components=2, architecture=Ladder(), max_iter=1,
    ...                      random_state=0).fit(X)
    >>> [Z.shape for Z in transform_layers(vae, X)]
    [(50, 32), (50, 2)]
    """
    check_is_fitted(vae)
    net = getattr(getattr(vae, "module_", None), "net", None)
    if not isinstance(net, LadderNet):
        raise ValueError(
            "transform_layers needs a VAE fitted with architecture='ladder'; this one "
            f"was fitted with {getattr(vae, 'architecture_', vae.architecture)!r}."
        )
    sizes = list(net.latent_sizes)

    likelihood = vae.module_.likelihood

    def all_means(xb):
        layers = net.encode_layers(encoder_view(likelihood, xb))
        return torch.cat([mean for mean, _ in layers], dim=1)

    # The estimator's batched, padded inference (validation included): bounded
    # memory, and each row's result independent of the other rows.
    means = map_batches(vae, all_means, X, sum(sizes))
    return np.split(means, np.cumsum(sizes)[:-1], axis=1)


@hookimpl
def skvae_register_architectures():
    return [Ladder]
