"""Hook specifications of the skvae plugin system (pluggy project "skvae").

A plugin module implements any of these hooks with the :data:`hookimpl`
marker and is announced in its package's ``pyproject.toml``::

    [project.entry-points.skvae]
    my_plugin = "my_package.my_module"

Each hook returns a list of plugin *classes*, each with a unique ``name``.

Examples
--------
>>> from skvae.hookspecs import hookimpl
>>> from skvae.base import Prior
>>> class MyPrior(Prior):
...     name = "my_prior"
>>> @hookimpl
... def skvae_register_priors():
...     return [MyPrior]
"""

import pluggy

PROJECT_NAME = "skvae"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marker for hook implementations in plugin modules.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def skvae_register_architectures():
    """Return a list of :class:`skvae.base.Architecture` subclasses."""


@hookspec
def skvae_register_likelihoods():
    """Return a list of :class:`skvae.base.Likelihood` subclasses."""


@hookspec
def skvae_register_priors():
    """Return a list of :class:`skvae.base.Prior` subclasses."""
