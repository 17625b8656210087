"""A dry run of a freshly built VAE module: plugins that build the wrong shapes.

A third-party architecture, likelihood or prior that builds modules of the
wrong shape would otherwise fail deep inside torch during the first training
step (``mat1 and mat2 shapes cannot be multiplied``, ``'Linear' object has no
attribute 'encode'``, ``optimizer got an empty parameter list``). Once per
build, :func:`check_vae_module` runs the module on two rows of zeros, on the
CPU, without gradients and in eval mode, and raises a :class:`PluginModuleError`
naming the plugin, the distribution that provides it, the shape it should
have produced and the one it did.

The dry run leaves no trace: the global random state is restored, every
submodule gets back its train/eval mode, and in eval mode batch norm neither
reads nor updates batch statistics.
"""

import torch
from torch import nn

from .base import EncoderDecoder, negative_log_likelihood

__all__ = ["PluginModuleError", "check_vae_module"]

#: Rows of the dry run: two, so that batch norm in training mode would work too.
DRY_RUN_ROWS = 2


class PluginModuleError(ValueError):
    """A plugin built a module of the wrong shape or interface.

    Examples
    --------
    >>> from skvae._plugin_check import PluginModuleError
    >>> issubclass(PluginModuleError, ValueError)
    True
    """


def check_vae_module(module, architecture, likelihood, prior, n_features):
    """Check a built VAE module with a dry run on two rows of zeros.

    Checks that the network has ``encode`` and ``decode``; that ``encode``
    returns ``(mean, log_var)``, each of shape ``(rows, n_components)``;
    that ``decode`` returns ``(rows, n_outputs)`` with ``n_outputs =
    likelihood.n_params(n_features)``; that the likelihood's
    negative log-likelihood and the prior's KL term (what training computes)
    give one value per row; and that the module has a trainable parameter.
    A network with its own objective (``terms``, as the ladder's) is checked
    through it. Modules on the meta device (shape-only builds) are not run.

    Parameters
    ----------
    module : skvae._model.VAEModule
        The module as built, on the CPU; it is left as it was (train/eval
        mode, parameters, buffers, the global random state).
    architecture, likelihood, prior : skvae.base.Plugin
        The plugins that built it, for the error messages.
    n_features : int

    Raises
    ------
    PluginModuleError
        A ValueError naming the plugin, its distribution, the expected shape
        and the one produced.

    Examples
    --------
    >>> from torch import nn
    >>> from skvae._model import VAEModule
    >>> from skvae.base import Architecture, EncoderDecoder
    >>> from skvae_plugins.bernoulli import Bernoulli
    >>> from skvae_plugins.normal import Normal
    >>> class Narrow(Architecture):
    ...     name = "narrow"
    ...     def build(self, n_features, n_components, n_outputs):
    ...         return EncoderDecoder(nn.Linear(n_features, 2 * n_components),
    ...                               nn.Linear(n_components, n_outputs - 1))
    >>> net = Narrow().build(n_features=3, n_components=2, n_outputs=3)
    >>> module = VAEModule(net, Bernoulli().build(3), Normal().build(2, 3), 2)
    >>> check_vae_module(module, Narrow(), Bernoulli(), Normal(), 3)
    Traceback (most recent call last):
    ...
    skvae._plugin_check.PluginModuleError: architecture 'narrow' (class ...Narrow, \
not registered): the decoder returned params of shape (2, 2); expected (2, 3) = \
(rows, n_outputs), n_outputs = 1 parameter per feature of likelihood 'bernoulli' x 3 features.
    """
    check = _Check(module, architecture, likelihood, prior, n_features)
    check.interfaces()
    if any(t.is_meta for t in _tensors(module)):
        return
    modes = [(m, m.training) for m in module.modules()]
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            module.eval()
            check.dry_run()
    finally:
        for m, training in modes:
            m.training = training
    check.trainable()


def _tensors(module):
    yield from module.parameters()
    yield from module.buffers()


class _Check:
    """The steps of :func:`check_vae_module`, sharing the sizes and the messages."""

    def __init__(self, module, architecture, likelihood, prior, n_features):
        self.module = module
        self.plugins = {"architecture": architecture, "likelihood": likelihood, "prior": prior}
        self.rows = DRY_RUN_ROWS
        self.n_features = n_features
        self.n_components = module.n_components
        self.per_feature = likelihood.n_params_per_feature
        self.n_outputs = likelihood.n_params(n_features)
        # A model with missing values may give its encoder the mask too.
        mask_width = n_features if getattr(module, "encoder_mask", False) else 0
        self.widths = (
            (getattr(module, "encoder_conditions", 0) or 0) + mask_width,
            getattr(module, "decoder_conditions", 0) or 0,
        )

    # -------------------------------------------------------------- messages
    def declared_width(self):
        """How the likelihood declares the decoder's width, for the messages."""
        if self.n_outputs == self.per_feature * self.n_features:
            return f"n_params_per_feature={self.per_feature} for {self.n_features} features"
        return f"n_params({self.n_features})={self.n_outputs}"

    def fail(self, kind, problem):
        raise PluginModuleError(f"{describe_plugin(self.plugins[kind])}: {problem}")

    def fail_call(self, kind, call, exc, expected):
        """Turn an exception of the plugin's code into a PluginModuleError."""
        raise PluginModuleError(
            f"{describe_plugin(self.plugins[kind])} failed a dry run on {self.rows} rows: "
            f"{call} raised {type(exc).__name__}: {exc}. Expected: {expected}."
        ) from exc

    def expect_shape(self, kind, what, value, shape, meaning):
        if not torch.is_tensor(value):
            self.fail(kind, f"{what} is a {type(value).__name__}, not a tensor; expected "
                            f"shape {_shape(shape)} = {meaning}.")
        if tuple(value.shape) != shape:
            self.fail(kind, f"{what} of shape {_shape(value.shape)}; expected "
                            f"{_shape(shape)} = {meaning}.")

    # ----------------------------------------------------------------- steps
    def interfaces(self):
        """The built modules are torch modules with the methods training calls."""
        module = self.module
        net, likelihood, prior = module.net, module.likelihood, module.prior
        expect = ("a torch.nn.Module with encode(x) -> (mean, log_var) and decode(z) -> "
                  "params, such as skvae.base.EncoderDecoder")
        if not isinstance(net, nn.Module):
            self.fail("architecture", f"build() returned {_kind_of(net)}; expected {expect}.")
        for method in ("encode", "decode"):
            if not callable(getattr(net, method, None)):
                self.fail(
                    "architecture",
                    f"build() returned a {type(net).__name__}, which has no {method}() "
                    f"method; expected {expect}.",
                )
        if not isinstance(likelihood, nn.Module) or not (
            callable(getattr(likelihood, "nll", None))
            or callable(getattr(likelihood, "log_prob", None))
        ):
            self.fail(
                "likelihood",
                f"build() returned {_kind_of(likelihood)}; expected a torch.nn.Module "
                "with log_prob(x, params), such as a skvae.base.LikelihoodModule.",
            )
        if not isinstance(prior, nn.Module) or not callable(getattr(prior, "kl", None)):
            self.fail(
                "prior",
                f"build() returned {_kind_of(prior)}; expected a torch.nn.Module with "
                "kl(mean, log_var, z), such as a skvae.base.PriorModule.",
            )

    def dry_run(self):
        dtype = next(
            (t.dtype for t in _tensors(self.module) if t.is_floating_point()),
            torch.get_default_dtype(),
        )
        x = torch.zeros(self.rows, self.n_features, dtype=dtype)
        c_enc, c_dec = (
            torch.zeros(self.rows, w, dtype=dtype) if w else None for w in self.widths
        )
        features = getattr(self.module, "_features", None)  # the encoder's view of x
        mean, log_var = self.encode(x if features is None else features(x), c_enc)
        params = self.decode(mean, c_dec)
        likelihood, prior = self.module.likelihood, self.module.prior
        if hasattr(self.module.net, "terms"):  # a network with its own objective
            self.own_terms(x)
            return
        nll = self.call(
            "likelihood",
            lambda: negative_log_likelihood(likelihood, x, params),
            f"its negative log-likelihood of x of shape {_shape(x.shape)} given the "
            f"decoder's params of shape {_shape(params.shape)}",
            f"one value per row, the likelihood declaring {self.declared_width()}",
        )
        self.expect_shape("likelihood", "the negative log-likelihood", nll, (self.rows,),
                          "(rows,), summed over features")
        if getattr(self.module, "missing_values", False):
            log_p = self.call(
                "likelihood",
                lambda: likelihood.log_prob_features(x, params),
                f"log_prob_features(x, params) with x of shape {_shape(x.shape)} and params "
                f"of shape {_shape(params.shape)}",
                "log p(x_j | params) of each feature (missing values need it)",
            )
            self.expect_shape("likelihood", "log_prob_features", log_p,
                              (self.rows, self.n_features), "(rows, n_features), one per feature")
        kl = self.call(
            "prior",
            lambda: prior.kl(mean, log_var, mean),
            f"kl(mean, log_var, z) with each of shape {_shape(mean.shape)}",
            f"one value per row for {self.n_components} latent dimensions",
        )
        self.expect_shape("prior", "the KL term", kl, (self.rows,),
                          "(rows,), summed over latent dimensions")

    def call(self, kind, function, call, expected):
        try:
            return function()
        except Exception as exc:  # the plugin's own code: say whose it is
            self.fail_call(kind, call, exc, expected)

    def encode(self, x, c):
        net = self.module.net
        shape = (self.rows, self.n_components)
        meaning = "(rows, n_components)"
        call = f"encode(x) with x of shape {_shape(x.shape)}" + _condition_text(c)
        out = self.call(
            "architecture",
            lambda: net.encode(x) if c is None else net.encode(x, c),
            call,
            f"an encoder taking {self.n_features} features"
            + (f" and {c.shape[1]} condition columns" if c is not None else "")
            + f", returning (mean, log_var), each of shape {_shape(shape)} = {meaning}",
        )
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            self.fail(
                "architecture",
                f"the encoder returned {_kind_of(out)}; expected a pair (mean, log_var), "
                f"each of shape {_shape(shape)} = {meaning}.",
            )
        if isinstance(net, EncoderDecoder):  # it halves the encoder's output
            meaning += (
                f"; an EncoderDecoder splits its encoder's output in two halves, so "
                f"the encoder must output 2 * n_components = {2 * self.n_components} values"
            )
        for what, value in zip(("mean", "log_var"), out):
            self.expect_shape("architecture", f"the encoder returned {what}", value,
                              shape, meaning)
        return out

    def decode(self, z, c):
        net = self.module.net
        shape = (self.rows, self.n_outputs)
        plural = "s" if self.per_feature != 1 else ""
        meaning = (
            f"(rows, n_outputs), n_outputs = {self.per_feature} parameter{plural} per "
            f"feature of likelihood {self.plugins['likelihood'].name!r} x "
            f"{self.n_features} features"
        )
        out = self.call(
            "architecture",
            lambda: net.decode(z) if c is None else net.decode(z, c),
            f"decode(z) with z of shape {_shape(z.shape)}" + _condition_text(c),
            f"a decoder taking {self.n_components} latent dimensions"
            + (f" and {c.shape[1]} condition columns" if c is not None else "")
            + f", returning params of shape {_shape(shape)} = {meaning}",
        )
        self.expect_shape("architecture", "the decoder returned params", out, shape, meaning)
        return out

    def own_terms(self, x):
        module = self.module
        terms = self.call(
            "architecture",
            lambda: module.net.terms(
                x, lambda shape: torch.zeros(tuple(shape), dtype=x.dtype),
                module.likelihood, module.prior,
            ),
            f"terms(x, noise, likelihood, prior) with x of shape {_shape(x.shape)}",
            "(nll, kl), each of shape (rows,)",
        )
        if not (isinstance(terms, (tuple, list)) and len(terms) == 2):
            self.fail("architecture", f"terms() returned {_kind_of(terms)}; expected a pair "
                                      "(nll, kl), each of shape (rows,).")
        for what, value in zip(("nll", "kl"), terms):
            self.expect_shape("architecture", f"terms() returned {what}", value,
                              (self.rows,), "(rows,)")

    def trainable(self):
        if any(p.requires_grad for p in self.module.parameters()):
            return
        self.fail(
            "architecture",
            "the VAE module has no trainable parameter (neither has the network nor "
            f"{describe_plugin(self.plugins['likelihood'])} nor "
            f"{describe_plugin(self.plugins['prior'])}), so an optimizer has nothing "
            "to train. build() must return modules whose layers are attributes "
            "(torch.nn.Module, torch.nn.Parameter, nn.ModuleList), not plain lists "
            "or tensors.",
        )


def describe_plugin(plugin):
    """Name a plugin and where it comes from, for error messages.

    Parameters
    ----------
    plugin : skvae.base.Plugin or type

    Returns
    -------
    text : str
        Such as ``"architecture 'mlp' (from distribution 'skvae 0.1.0')"``.

    Examples
    --------
    >>> from skvae._plugin_check import describe_plugin
    >>> from skvae_plugins.mlp import MLP
    >>> describe_plugin(MLP())  # doctest: +ELLIPSIS
    "architecture 'mlp' (from distribution 'skvae ...', entry point 'mlp')"
    """
    from ._registry import PluginError, get_registry

    cls = plugin if isinstance(plugin, type) else type(plugin)
    kind, name = cls.kind, cls.name
    where = f"class {cls.__module__}.{cls.__qualname__}, not registered"
    try:
        registry = get_registry()
        if registry.get(kind, name) is cls:
            origin = registry.origin(kind, name)
            if origin["distribution"]:
                version = f" {origin['version']}" if origin["version"] else ""
                where = f"from distribution '{origin['distribution']}{version}'"
                if origin["entry_point"]:
                    where += f", entry point {origin['entry_point']!r}"
            else:
                where = f"class {cls.__module__}.{cls.__qualname__}, registered at run time"
    except (PluginError, ValueError):
        pass
    return f"{kind} {name!r} ({where})"


def _shape(shape):
    dims = tuple(int(d) for d in shape)
    return f"({dims[0]},)" if len(dims) == 1 else str(dims)


def _kind_of(value):
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return "None" if value is None else f"a {type(value).__name__}"


def _condition_text(c):
    return "" if c is None else f" and c of shape {_shape(c.shape)}"
