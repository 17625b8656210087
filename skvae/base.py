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

import inspect
import math
from numbers import Integral
from typing import NamedTuple, Optional

import torch
from sklearn.base import BaseEstimator
from torch import nn

__all__ = [
    "Plugin",
    "Architecture",
    "Likelihood",
    "Column",
    "Prior",
    "EncoderDecoder",
    "LikelihoodModule",
    "negative_log_likelihood",
    "PriorModule",
    "gaussian_log_prob",
    "ACTIVATIONS",
    "check_activation",
    "check_layer_sizes",
    "dense_stack",
    "map_batches",
    "LOG_VAR_MIN",
    "LOG_VAR_MAX",
]

#: The range to which posterior log-variances are clamped, so that ``exp()``
#: can neither overflow nor give a zero standard deviation: the model clamps
#: what ``encode`` returns, and an architecture with stochastic layers of its
#: own (such as ``ladder``) clamps its layers' log-variances to the same
#: range, e.g. ``torch.nn.functional.hardtanh(log_var, LOG_VAR_MIN,
#: LOG_VAR_MAX)`` (a clamp whose backward is one kernel).
LOG_VAR_MIN, LOG_VAR_MAX = -30.0, 20.0


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
    #: Parameters added after model files were first written, with the value
    #: that gives the older behaviour: a saved plugin whose record lacks one of
    #: them loads with this value rather than the constructor's default, so an
    #: older ``.skvae`` file keeps computing what it computed.
    _defaults_of_older_files = {}


class EncoderDecoder(nn.Module):
    """Torch module pairing an encoder network with a decoder network.

    The encoder maps a batch ``x`` of shape ``(batch, n_features)`` to
    ``2 * n_components`` outputs, read as the posterior mean and log-variance
    of a diagonal Gaussian; the decoder maps ``z`` of shape
    ``(batch, n_components)`` to the likelihood's parameters.

    A conditional model (see :class:`skvae.ConditionalVAETransformer`) gives
    ``encode`` and ``decode`` a condition ``c`` of shape ``(batch, width)``,
    which is concatenated to the input of the network: the encoder then takes
    ``n_features + width`` inputs and the decoder ``n_components + width``.

    Parameters
    ----------
    encoder : torch.nn.Module
        Network from ``x`` (or ``[x, c]``) to ``2 * n_components`` values.
    decoder : torch.nn.Module
        Network from ``z`` (or ``[z, c]``) to ``n_likelihood_params`` values.

    Examples
    --------
    >>> from torch import nn
    >>> from skvae.base import EncoderDecoder
    >>> net = EncoderDecoder(nn.Linear(4, 2 * 2), nn.Linear(2, 4))
    >>> import torch
    >>> mean, log_var = net.encode(torch.zeros(3, 4))
    >>> mean.shape, net.decode(mean).shape
    (torch.Size([3, 2]), torch.Size([3, 4]))

    Conditioned on a one-hot label of width 3:

    >>> net = EncoderDecoder(nn.Linear(4 + 3, 2 * 2), nn.Linear(2 + 3, 4))
    >>> c = torch.eye(3)
    >>> mean, log_var = net.encode(torch.zeros(3, 4), c)
    >>> net.decode(mean, c).shape
    torch.Size([3, 4])
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x, c=None):
        """Return the posterior mean and log-variance for ``x`` (given ``c``)."""
        if c is not None:
            x = torch.cat([x, c], dim=-1)
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        return mean, log_var

    def decode(self, z, c=None):
        """Return the likelihood parameters for latent codes ``z`` (given ``c``)."""
        if c is not None:
            z = torch.cat([z, c], dim=-1)
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

        Architectures that can condition on a label (``mlp``) accept two
        optional keyword-only arguments, ``encoder_conditions=0`` and
        ``decoder_conditions=0``: the widths of a condition ``c``
        concatenated to the encoder's input and to the decoder's input; the
        network's ``encode(x, c=None)`` and ``decode(z, c=None)`` then take
        it (as :class:`EncoderDecoder` does). Architectures without them keep
        the three-argument form; the conditional estimators refuse them with
        a ValueError.

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

    def supports_conditions(self, encoder_conditions=0, decoder_conditions=0):
        """Whether :meth:`build` accepts the condition widths asked for.

        True when every non-zero width is a keyword of ``build`` (or
        ``build`` takes ``**kwargs``).

        Parameters
        ----------
        encoder_conditions, decoder_conditions : int, default=0
            Widths of the conditions of the encoder and the decoder.

        Returns
        -------
        supported : bool

        Examples
        --------
        >>> from skvae_plugins.mlp import MLP
        >>> MLP().supports_conditions(encoder_conditions=3, decoder_conditions=3)
        True
        """
        wanted = [
            name
            for name, width in (
                ("encoder_conditions", encoder_conditions),
                ("decoder_conditions", decoder_conditions),
            )
            if width
        ]
        parameters = inspect.signature(self.build).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return True
        return all(name in parameters for name in wanted)

    def build_conditional(
        self, n_features, n_components, n_outputs, *, encoder_conditions=0, decoder_conditions=0
    ):
        """Build the network with conditions, or explain why it cannot be.

        Calls :meth:`build` with the non-zero condition widths only, so
        that an unconditional build is the plain three-argument call.

        Parameters
        ----------
        n_features, n_components, n_outputs : int
            As in :meth:`build`.
        encoder_conditions, decoder_conditions : int, default=0
            Widths of the condition concatenated to the encoder's input and
            to the decoder's input.

        Returns
        -------
        module : torch.nn.Module

        Raises
        ------
        ValueError
            If the architecture cannot condition (its ``build`` lacks the
            keyword arguments).

        Examples
        --------
        >>> from skvae_plugins.mlp import MLP
        >>> net = MLP(hidden_sizes=(8,)).build_conditional(
        ...     n_features=4, n_components=2, n_outputs=4, decoder_conditions=3)
        >>> net.decoder[0]
        Linear(in_features=5, out_features=8, bias=True)
        """
        kwargs = {}
        if encoder_conditions:
            kwargs["encoder_conditions"] = encoder_conditions
        if decoder_conditions:
            kwargs["decoder_conditions"] = decoder_conditions
        if kwargs and not self.supports_conditions(**kwargs):
            raise ValueError(
                f"The architecture {self.name!r} ({type(self).__name__}) cannot condition "
                f"on a label: its build() takes no {' / '.join(map(repr, kwargs))} "
                "keyword argument. Use an architecture that can, such as 'mlp'."
            )
        return self.build(
            n_features=n_features, n_components=n_components, n_outputs=n_outputs, **kwargs
        )


class Column(NamedTuple):
    """What a likelihood is told about one column of the training data.

    :meth:`Likelihood.configure` receives one per column it models, so that
    a likelihood whose settings depend on the data (the number of categories
    of a categorical column) can take them from the data it is fitted on.

    Parameters
    ----------
    name : str
        The column's name (a DataFrame's column; ``"x0"``, ``"x1"``... for
        an array).
    kind : {"numeric", "binary", "categorical"}
        What the column holds: real or integer numbers, two values (coded 0
        and 1), or categories (coded 0, 1, ..., ``len(categories) - 1``).
    categories : tuple or None
        The categories of a categorical or binary column of a DataFrame, in
        the order of their codes; None for numbers, and for arrays.
    low, high : float
        The smallest and largest observed value of the column as the model
        sees it (codes for categories; NaN when no value is observed).

    Examples
    --------
    >>> from skvae.base import Column
    >>> Column("island", "categorical", ("Biscoe", "Dream", "Torgersen"), 0.0, 2.0)
    Column(name='island', kind='categorical', categories=('Biscoe', 'Dream', 'Torgersen'), \
low=0.0, high=2.0)
    """

    name: str
    kind: str
    categories: Optional[tuple]
    low: float
    high: float


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
    ...     def log_prob_features(self, x, params):
    ...         return -((x - params) ** 2)
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
    #: Whether the likelihood models real values on any scale (a location-scale
    #: family). In a table (a fit on a DataFrame) skvae standardises the numeric
    #: columns it models before the model sees them, and undoes it on output.
    standardize = False
    #: Whether the likelihood models category codes 0, 1, ..., K-1 (a softmax
    #: over categories). In a table, a numeric column it models is read as
    #: categorical over the values observed in ``fit``, as
    #: :class:`sklearn.preprocessing.OneHotEncoder` reads a numeric column.
    models_categories = False
    #: Whether the likelihood models two values coded 0 and 1 (a Bernoulli). In
    #: a table, a numeric column of exactly two values in ``fit`` that it
    #: models (1 and 2, say) is read as binary over them; a column of other
    #: numbers stays numbers.
    models_binary = False

    def n_params(self, n_features):
        """Return the number of decoder outputs per sample for ``n_features`` features.

        Defaults to ``n_params_per_feature * n_features``; a likelihood whose
        width is not a multiple of the features (a categorical column has
        one output per category) overrides it.

        Parameters
        ----------
        n_features : int

        Returns
        -------
        n_params : int
        """
        return self.n_params_per_feature * n_features

    def n_inputs(self, n_features):
        """Return the width of the encoder's view of ``n_features`` features.

        Defaults to ``n_features``: the encoder sees the data as they are. A
        likelihood whose module overrides :meth:`LikelihoodModule.features`
        (categories coded 0, 1, ... seen one-hot) returns that width.

        Parameters
        ----------
        n_features : int

        Returns
        -------
        n_inputs : int
        """
        return n_features

    def configure(self, columns):
        """Return the likelihood set up for the columns it will model.

        Called by ``fit`` on a new model, with one :class:`Column` per
        feature, before :meth:`build`. A likelihood whose settings depend on
        the data (the number of categories) returns a new instance with them
        set; it never changes ``self`` (a parameter of the estimator). The
        default returns ``self``.

        Parameters
        ----------
        columns : list of Column

        Returns
        -------
        likelihood : Likelihood
        """
        return self

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

        Called on the data of ``fit`` and of every method that takes data
        (``transform``, ``score_samples``...), with the same message.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated data.
        """

    def check_training_data(self, X):
        """Warn when training data in the domain will nonetheless train poorly.

        Called by ``fit`` on the training data of a new model (a sample of
        its rows when it is streamed from a memory map), after
        :meth:`check_data`. The default does nothing; the location-scale
        likelihoods warn about features on a large scale.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated training data.
        """


class LikelihoodModule(nn.Module):
    """Torch side of a likelihood: log-probability, mean and draws.

    ``params`` is the decoder output, of shape
    ``(batch, n_params_per_feature * n_features)``. The likelihood factorises
    over features: :meth:`log_prob_features` gives log p(x_j | params) of
    each feature, and :meth:`log_prob` (their sum) defaults to it. A module
    may override :meth:`log_prob` (and :meth:`nll`) with a faster form of the
    sum; one that overrides only :meth:`log_prob` still trains and scores,
    but missing values (``VAETransformer(missing_values=np.nan)``) and
    per-feature scores need :meth:`log_prob_features`.

    Examples
    --------
    >>> import torch
    >>> from skvae.base import LikelihoodModule
    >>> class Poissonish(LikelihoodModule):
    ...     def log_prob_features(self, x, params):
    ...         return x * params - params.exp() - torch.lgamma(x + 1)
    ...     def mean(self, params):
    ...         return params.exp()
    >>> module = Poissonish()
    >>> module.log_prob(torch.zeros(1, 3), torch.zeros(1, 3))
    tensor([-3.])
    >>> module.log_prob_features(torch.zeros(1, 3), torch.zeros(1, 3))
    tensor([[-1., -1., -1.]])
    """

    def features(self, x):
        """Return the encoder's view of the rows ``x``, shape ``(batch, n_inputs)``.

        Defaults to ``x`` itself. A module for coded data overrides it (a
        categorical column's codes become one-hot columns), together with
        :meth:`Likelihood.n_inputs`. ``x`` holds NaN at missing entries when
        the model has missing values; the view must hold NaN or 0 there
        (the model sets NaN to 0 before the encoder sees it).

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)

        Returns
        -------
        features : Tensor of shape (batch, n_inputs)
        """
        return x

    def log_prob_features(self, x, params):
        """Return log p(x_j | params) of each feature, shape ``(batch, n_features)``.

        Summed over features it is :meth:`log_prob`. Missing values (the
        reconstruction term over the observed entries only) and per-feature
        scores (which features make a row unlikely) use it.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
        params : Tensor of shape (batch, n_params_per_feature * n_features)
            The decoder's output.

        Returns
        -------
        log_prob : Tensor of shape (batch, n_features)
        """
        if type(self).log_prob is not LikelihoodModule.log_prob:
            raise NotImplementedError(
                f"{type(self).__name__} implements log_prob (the sum over features) but "
                "not log_prob_features(x, params), the log-probability of each feature "
                "of shape (batch, n_features): missing values (missing_values=np.nan) "
                "and per-feature scores need it. Implement log_prob_features in the "
                "likelihood module (log_prob then defaults to its sum)."
            )
        raise NotImplementedError(
            f"{type(self).__name__} must implement log_prob_features(x, params), "
            "returning log p(x_j | params) of shape (batch, n_features)."
        )

    def log_prob(self, x, params):
        """Return log p(x | params) summed over features, shape ``(batch,)``.

        Defaults to ``log_prob_features(x, params).sum(-1)``.
        """
        return self.log_prob_features(x, params).sum(-1)

    def nll(self, x, params):
        """Return -log p(x | params) summed over features, shape ``(batch,)``.

        The reconstruction term of the training objective. Defaults to
        ``-log_prob(x, params)``; a likelihood whose negative log-likelihood
        is the natural form (a cross-entropy) overrides it to save the
        negation in every training step.
        """
        return -self.log_prob(x, params)

    def mean(self, params):
        """Return the mean of p(x | params), shape ``(batch, n_features)``."""
        raise NotImplementedError

    def sample(self, params, generator=None):
        """Return one draw of x ~ p(x | params), shape ``(batch, n_features)``."""
        raise NotImplementedError


def negative_log_likelihood(likelihood, x, params):
    """Return -log p(x | params) per sample from a likelihood module.

    Uses the module's ``nll`` (see :meth:`LikelihoodModule.nll`); a module
    that is not a :class:`LikelihoodModule` and has only ``log_prob`` works
    too.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.bernoulli import BernoulliModule
    >>> negative_log_likelihood(BernoulliModule(), torch.ones(1, 2), torch.zeros(1, 2))
    tensor([1.3863])
    """
    nll = getattr(likelihood, "nll", None)
    return nll(x, params) if nll is not None else -likelihood.log_prob(x, params)


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
    diff = x - mean
    return -0.5 * (_LOG_2PI + log_var + diff * diff * torch.exp(-log_var))


#: Activation modules by name, for plugin parameters such as ``activation="relu"``.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def check_activation(activation, name):
    """Raise a ValueError naming ``name`` unless ``activation`` is in :data:`ACTIVATIONS`.

    Examples
    --------
    >>> from skvae.base import check_activation
    >>> check_activation("relu", "MLP activation")
    >>> check_activation("swish", "MLP activation")
    Traceback (most recent call last):
    ...
    ValueError: MLP activation must be one of ['elu', 'gelu', ...]; got 'swish'.
    """
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {sorted(ACTIVATIONS)}; got {activation!r}.")


def check_layer_sizes(sizes, name, allow_empty=True):
    """Return ``sizes`` as a tuple of positive ints, or raise a ValueError naming ``name``.

    Examples
    --------
    >>> from skvae.base import check_layer_sizes
    >>> check_layer_sizes([256, 128], "MLP hidden_sizes"), check_layer_sizes(64, "width")
    ((256, 128), (64,))
    """
    if isinstance(sizes, Integral) and not isinstance(sizes, bool):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    valid = sizes is not None and (allow_empty or len(sizes) > 0)
    if not valid or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
    ):
        what = "a tuple" if allow_empty else "a non-empty tuple"
        raise ValueError(
            f"{name} must be {what} of positive integers such as (256, 128); got {sizes!r}."
        )
    return tuple(int(s) for s in sizes)


def dense_stack(n_in, sizes, n_out, activation):
    """Linear + activation for each hidden size, then a linear layer to ``n_out``.

    Examples
    --------
    >>> from skvae.base import dense_stack
    >>> dense_stack(4, (8,), 2, "tanh")
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): Tanh()
      (2): Linear(in_features=8, out_features=2, bias=True)
    )
    """
    layers = []
    for size in sizes:
        layers += [nn.Linear(n_in, size), ACTIVATIONS[activation]()]
        n_in = size
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def map_batches(estimator, function, X, n_outputs):
    """Apply a torch function to X in a fitted estimator's inference batches.

    What ``transform`` and ``score_samples`` do, for a plugin's or a
    display's own computation: X is validated as those methods validate it
    (feature count, finite values, the likelihood's domain), then goes to
    the estimator's device in batches of 1024 rows padded to one shape
    (bounded memory; a row's result does not depend on the other rows),
    under ``torch.inference_mode`` with the module in eval mode (a fit of
    the same estimator running in another thread is never disturbed).

    Parameters
    ----------
    estimator : VAETransformer
        A fitted skvae estimator.
    function : callable
        Maps a float32 tensor of shape (batch rows, n_features) to a tensor
        of shape (batch rows, n_outputs); typically calls the fitted
        ``estimator.module_`` (``encode``, ``decode``, or the network's own
        methods).
    X : array-like of shape (n_samples, n_features)
    n_outputs : int
        Columns of the result.

    Returns
    -------
    out : ndarray of shape (n_samples, n_outputs)
        In the dtype of X (float32 or float64).

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAETransformer
    >>> from skvae.base import map_batches
    >>> X = np.random.RandomState(0).rand(30, 4)
    >>> vae = VAETransformer(n_components=2, max_iter=1, random_state=0).fit(X)
    >>> log_var = map_batches(vae, lambda xb: vae.module_.encode(xb)[1], X, 2)
    >>> log_var.shape
    (30, 2)
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    X, memmap = estimator._validate_inference_data(X)
    return estimator._map_batches(function, X, n_outputs, memmap=memmap)
