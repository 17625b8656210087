"""The plugin system: a pluggy manager that finds plugins by name.

Plugins come from the ``skvae`` entry-point group (the built-in ones too) and
from :func:`register_plugin` at run time. The manager is built lazily, once per
process, the first time a plugin is looked up, so that joblib worker processes
build their own from the same installed entry points.

Build order (as tox does it): add the hook specifications, block what the
``SKVAE_DISABLE_PLUGINS`` environment variable names, load the entry points
one by one (a plugin that fails to import is skipped with a warning), then
collect the classes each hook returns into name -> class tables.

Two distributions may use the same entry-point name (a third-party package
with an entry point ``mlp``): both are loaded, the second registered as
``<distribution>:<entry point>``, and ``SKVAE_DISABLE_PLUGINS`` accepts that
qualified form to block exactly one of them. A plugin *name* claimed twice
(two classes named ``mlp``) cannot be used until one is uninstalled or
blocked; :class:`PluginConflictError` says which and how.
"""

import importlib.metadata
import os
import re
import threading
import warnings

import pluggy
from sklearn.base import clone

from . import hookspecs
from .base import Architecture, Likelihood, Prior

#: Environment variable with a comma-separated list of plugin names to disable
#: (entry-point names, such as ``mlp``, or plugin class names, such as
#: ``gaussian``).
DISABLE_ENV = "SKVAE_DISABLE_PLUGINS"
ENTRY_POINT_GROUP = "skvae"

_KINDS = {
    "architecture": (Architecture, "skvae_register_architectures"),
    "likelihood": (Likelihood, "skvae_register_likelihoods"),
    "prior": (Prior, "skvae_register_priors"),
}


class PluginWarning(UserWarning):
    """Warning about a plugin that was skipped (failed import, bad hook result)."""


class PluginError(ValueError):
    """A plugin name that cannot be resolved (unknown or registered twice)."""


class PluginConflictError(PluginError):
    """A plugin name claimed by more than one plugin (two distributions, say).

    The message names every claimant with its distribution and entry point,
    and how to keep one: uninstall the other, or block its entry point with
    ``SKVAE_DISABLE_PLUGINS``.
    """


def _disabled_names():
    raw = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _normalized(distribution):
    """A distribution name as pip compares them (PEP 503): ``Skvae_X`` -> ``skvae-x``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def qualified_entry_point(distribution, entry_point):
    """The ``<distribution>:<entry point>`` form that blocks one entry point.

    Examples
    --------
    >>> from skvae._registry import qualified_entry_point
    >>> qualified_entry_point("Skvae_TinyNet", "tinynet")
    'skvae-tinynet:tinynet'
    """
    return f"{_normalized(distribution)}:{entry_point}"


class PluginRegistry:
    """Registered skvae plugins, by kind and name.

    Parameters
    ----------
    load_entry_points : bool, default=True
        Whether to load the plugins of the ``skvae`` entry-point group.

    Examples
    --------
    >>> from skvae._registry import PluginRegistry
    >>> registry = PluginRegistry()
    >>> registry.get("architecture", "mlp").__name__
    'MLP'
    """

    def __init__(self, load_entry_points=True):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._disabled = _disabled_names()
        for name in self._disabled:
            self._pm.set_blocked(name)
        self._providers = {}
        # Registration name -> where it came from (entry point, distribution,
        # version), as data: model files record it (see skvae.save).
        self._origins = {}
        self._tables = None
        self._lock = threading.Lock()
        if load_entry_points:
            self._load_entry_points()

    def _blocked(self, ep, dist):
        """Whether SKVAE_DISABLE_PLUGINS names the entry point, plainly or qualified."""
        if self._pm.is_blocked(ep.name):
            return True
        return dist is not None and any(
            ":" in token
            and qualified_entry_point(*token.split(":", 1)) == qualified_entry_point(
                dist.name, ep.name
            )
            for token in self._disabled
        )

    def _load_entry_points(self):
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            if self._blocked(ep, dist):
                continue
            registration = ep.name
            if self._pm.has_plugin(ep.name):
                # Another distribution uses the same entry-point name (say a
                # third-party `mlp`): load it too, under a qualified name,
                # rather than drop one of them silently.
                registration = (
                    qualified_entry_point(dist.name, ep.name) if dist else f"{ep.value}:{ep.name}"
                )
                if self._pm.has_plugin(registration):
                    continue
            where = f"distribution {dist.name} {dist.version}" if dist else ep.value
            provider = f"entry point {ep.name!r} ({where})"
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not break skvae
                warnings.warn(
                    f"skvae plugin {provider} failed to import and is skipped: "
                    f"{type(exc).__name__}: {exc}",
                    PluginWarning,
                    stacklevel=2,
                )
                continue
            origin = {
                "registration": registration,
                "entry_point": ep.name,
                "distribution": dist.name if dist else None,
                "version": dist.version if dist else None,
            }
            self._register(module, registration, provider, origin)

    def _register(self, plugin, name, provider, origin=None):
        try:
            self._pm.register(plugin, name=name)
            self._pm.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self._pm.is_registered(plugin):
                self._pm.unregister(plugin)
            warnings.warn(
                f"skvae plugin {provider} is invalid and is skipped: {exc}",
                PluginWarning,
                stacklevel=3,
            )
            return
        self._providers[name] = provider
        self._origins[name] = origin or {
            "registration": name,
            "entry_point": None,
            "distribution": None,
            "version": None,
        }
        self._tables = None

    def register(self, plugin, name=None):
        """Register a plugin object (a module or object with hook functions).

        Run-time registration is seen only by the current process; joblib
        worker processes see entry-point plugins only.
        """
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        self._register(plugin, name, f"plugin {name!r} registered at run time")

    def _collect(self):
        tables = {kind: {} for kind in _KINDS}
        duplicates = {kind: {} for kind in _KINDS}
        owners = {kind: {} for kind in _KINDS}  # plugin name -> registration name
        for kind, (base, hook_name) in _KINDS.items():
            hook = getattr(self._pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):
                provider = self._providers.get(impl.plugin_name, impl.plugin_name)
                try:
                    classes = list(impl.function() or [])
                except Exception as exc:
                    warnings.warn(
                        f"skvae plugin {provider} raised in {hook_name} and is "
                        f"skipped: {type(exc).__name__}: {exc}",
                        PluginWarning,
                        stacklevel=3,
                    )
                    continue
                for cls in classes:
                    if not (isinstance(cls, type) and issubclass(cls, base)):
                        warnings.warn(
                            f"skvae plugin {provider} returned {cls!r} from "
                            f"{hook_name}, which is not a subclass of "
                            f"skvae.base.{base.__name__}; it is skipped.",
                            PluginWarning,
                            stacklevel=3,
                        )
                        continue
                    if not isinstance(cls.name, str) or not cls.name:
                        warnings.warn(
                            f"skvae plugin {provider} returned {cls.__name__} "
                            "with no string `name` attribute; it is skipped.",
                            PluginWarning,
                            stacklevel=3,
                        )
                        continue
                    if cls.name in self._disabled:
                        continue
                    claim = (cls, provider, self._origin_of(impl.plugin_name))
                    if cls.name in tables[kind]:
                        first = tables[kind].pop(cls.name)
                        owner = owners[kind].pop(cls.name)
                        duplicates[kind][cls.name] = [(*first, self._origin_of(owner)), claim]
                    elif cls.name in duplicates[kind]:
                        duplicates[kind][cls.name].append(claim)
                    else:
                        tables[kind][cls.name] = (cls, provider)
                        owners[kind][cls.name] = impl.plugin_name
        for kind, dups in duplicates.items():
            for name, entries in dups.items():
                warnings.warn(
                    _duplicate_message(kind, name, entries), PluginWarning, stacklevel=3
                )
        return tables, duplicates, owners

    def _ensure_collected(self):
        with self._lock:
            if self._tables is None:
                self._tables, self._duplicates, self._owners = self._collect()
            return self._tables

    def names(self, kind):
        """Return the sorted registered names of one kind of plugin."""
        _check_kind(kind)
        return sorted(self._ensure_collected()[kind])

    def get(self, kind, name):
        """Return the plugin class registered under ``name``.

        Raises
        ------
        PluginError
            If no plugin of that kind has this name; its subclass
            :class:`PluginConflictError` if two plugins claim it.
        """
        _check_kind(kind)
        tables = self._ensure_collected()
        if name in self._duplicates[kind]:
            raise PluginConflictError(
                _duplicate_message(kind, name, self._duplicates[kind][name])
            )
        if name not in tables[kind]:
            registered = ", ".join(repr(n) for n in sorted(tables[kind])) or "none"
            hint = ""
            if name in self._disabled:
                hint = f" It is disabled by {DISABLE_ENV}={os.environ.get(DISABLE_ENV)!r}."
            elif not any(tables.values()):
                hint = (
                    " No plugins at all are registered: install skvae "
                    "(`pip install -e .` in a checkout) so that its entry points exist."
                )
            raise PluginError(
                f"Unknown {kind} {name!r}. Registered {kind} plugins: {registered}.{hint}"
            )
        return tables[kind][name][0]

    def origin(self, kind, name):
        """Return where the plugin ``name`` of ``kind`` comes from, as a dict.

        Keys: ``registration`` (the pluggy registration name), ``entry_point``,
        ``distribution`` and ``version`` (None for a plugin registered at run
        time). Raises :class:`PluginError` as :meth:`get` does.
        """
        self.get(kind, name)
        return self._origin_of(self._owners[kind][name])

    def _origin_of(self, registration):
        return dict(
            self._origins.get(
                registration,
                {
                    "registration": registration,
                    "entry_point": None,
                    "distribution": None,
                    "version": None,
                },
            )
        )

    def describe(self):
        """Return a list of ``(kind, name, class, provider)`` for every plugin."""
        tables = self._ensure_collected()
        return [
            (kind, name, cls, provider)
            for kind in _KINDS
            for name, (cls, provider) in sorted(tables[kind].items())
        ]


def _duplicate_message(kind, name, entries):
    """Who claims the name ``name`` (entries of ``(class, provider, origin)``) and how to keep one."""
    providers = " and ".join(
        f"{cls.__module__}.{cls.__qualname__} from {provider}" for cls, provider, _ in entries
    )
    distributions = sorted(
        {o["distribution"] for _, _, o in entries if o["distribution"]}, key=str.lower
    )
    count = {2: "two", 3: "three"}.get(len(distributions), str(len(distributions)))
    claimed = f"claimed by {count} distributions" if len(distributions) > 1 else (
        "registered more than once"
    )
    blocks = []
    for i, (_, _, origin) in enumerate(entries):
        if not (origin["distribution"] and origin["entry_point"]):
            continue  # registered at run time: nothing to block
        kept = " and ".join(
            f"the one from {o['distribution']}" if o["distribution"] else "the run-time one"
            for j, (_, _, o) in enumerate(entries)
            if j != i
        )
        blocks.append(f"{DISABLE_ENV}={_blocking_token(origin, entries, name)} keeps {kept}")
    if distributions:
        uninstall = " or ".join(f"pip uninstall {d}" for d in distributions)
        resolution = f"Keep one: uninstall the other ({uninstall})"
    else:
        resolution = "Keep one: register the other under another name"
    if blocks:
        resolution += f", or block its entry point ({'; '.join(blocks)})"
    return f"The {kind} name {name!r} is {claimed}: {providers}. {resolution}."


def _blocking_token(origin, entries, name):
    """The SKVAE_DISABLE_PLUGINS value that blocks this entry point and no other.

    The plain entry-point name when no other claimant shares it and it is
    not the plugin name itself (which would block every claimant), else the
    qualified ``<distribution>:<entry point>``.
    """
    entry_point = origin["entry_point"]
    shared = sum(o["entry_point"] == entry_point for _, _, o in entries) > 1
    if shared or entry_point == name:
        return qualified_entry_point(origin["distribution"], entry_point)
    return entry_point


def _check_kind(kind):
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}.")


_registry = None
_registry_lock = threading.Lock()


def get_registry():
    """Return the process-wide :class:`PluginRegistry`, building it on first use."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = PluginRegistry()
        return _registry


def reset_registry():
    """Forget the process-wide registry; the next lookup rebuilds it.

    Call this after installing a plugin package in a running interpreter.

    Examples
    --------
    >>> import skvae
    >>> skvae.reset_registry()
    >>> "mlp" in [p["name"] for p in skvae.list_plugins("architecture")]
    True
    """
    global _registry
    with _registry_lock:
        _registry = None


def list_plugins(kind=None):
    """List the registered plugins.

    Parameters
    ----------
    kind : {"architecture", "likelihood", "prior"} or None, default=None
        Restrict the list to one kind.

    Returns
    -------
    plugins : list of dict
        One dict per plugin with keys ``kind``, ``name``, ``class`` and
        ``provider`` (the entry point and distribution that registered it).

    Examples
    --------
    >>> import skvae
    >>> {"bernoulli", "gaussian"} <= {p["name"] for p in skvae.list_plugins("likelihood")}
    True
    """
    if kind is not None:
        _check_kind(kind)
    return [
        {"kind": k, "name": name, "class": cls, "provider": provider}
        for k, name, cls, provider in get_registry().describe()
        if kind is None or k == kind
    ]


def register_plugin(plugin, name=None):
    """Register a plugin module or object in the current process.

    Prefer an entry point (see the README): plugins registered at run time
    are invisible to joblib worker processes, so ``GridSearchCV(n_jobs=2)``
    cannot find them by name. Passing the plugin class itself to
    :class:`~skvae.VAETransformer` works everywhere.

    Parameters
    ----------
    plugin : module or object
        Holds functions marked with :data:`skvae.hookspecs.hookimpl`.
    name : str, default=None
        Name of the registration; defaults to the module name.

    Examples
    --------
    >>> import types
    >>> import skvae
    >>> from skvae.hookspecs import hookimpl
    >>> from skvae.base import Prior
    >>> class Flat(Prior):
    ...     name = "flat_example"
    >>> module = types.SimpleNamespace(
    ...     skvae_register_priors=hookimpl(lambda: [Flat]))
    >>> skvae.register_plugin(module, name="flat-example")
    >>> "flat_example" in [p["name"] for p in skvae.list_plugins("prior")]
    True
    """
    get_registry().register(plugin, name=name)


def resolve_plugin(kind, spec, param_name=None):
    """Turn a plugin specification into a fresh, configured plugin instance.

    Parameters
    ----------
    kind : {"architecture", "likelihood", "prior"}
    spec : str, type or Plugin
        A registered name, a plugin class, or a configured plugin instance
        (which is cloned, never modified).
    param_name : str, default=None
        Estimator parameter name used in error messages.

    Returns
    -------
    plugin : Plugin

    Raises
    ------
    skvae._registry.PluginError (a ValueError)
        For an unknown name or an object that is no plugin of ``kind``.

    Notes
    -----
    A plugin made of other plugins (``ColumnLikelihood``, whose parts are
    names or instances) resolves its parts with it, as the estimator does.

    Examples
    --------
    >>> import skvae
    >>> skvae.resolve_plugin("likelihood", "gaussian")
    Gaussian()
    >>> from skvae_plugins.gaussian import Gaussian
    >>> skvae.resolve_plugin("likelihood", Gaussian(scale=0.5))
    Gaussian(scale=0.5)
    """
    base = _KINDS[kind][0]
    param_name = param_name or kind
    if isinstance(spec, str):
        return get_registry().get(kind, spec)()
    if isinstance(spec, type) and issubclass(spec, base):
        return spec()
    if isinstance(spec, base):
        return clone(spec)
    raise PluginError(
        f"The '{param_name}' parameter must be a registered {kind} name (one of "
        f"{get_registry().names(kind)}), a subclass of skvae.base.{base.__name__} "
        f"or an instance of one; got {spec!r}."
    )
