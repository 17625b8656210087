"""skvae: variational autoencoders as scikit-learn transformers, on PyTorch.

The package is laid out by job:

- :mod:`skvae._estimator`: :class:`VAETransformer`, the scikit-learn estimator;
- :mod:`skvae._conditional`: :class:`ConditionalVAETransformer` and
  :class:`AuxiliaryClassifierVAE`, the models that learn from labels;
- :mod:`skvae._registry` and :mod:`skvae.hookspecs`: the pluggy plugin system;
- :mod:`skvae._engine` and :mod:`skvae._model`: the training engine and the
  objective;
- :mod:`skvae.base`: the base classes plugin authors subclass;
- :mod:`skvae.cli`: the ``skvae`` command.
"""

from importlib.metadata import PackageNotFoundError, version

from ._conditional import AuxiliaryClassifierVAE, ConditionalVAETransformer
from ._estimator import VAETransformer
from ._registry import list_plugins, register_plugin, reset_registry
from .hookspecs import hookimpl

try:
    __version__ = version("skvae")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "AuxiliaryClassifierVAE",
    "ConditionalVAETransformer",
    "VAETransformer",
    "hookimpl",
    "list_plugins",
    "register_plugin",
    "reset_registry",
]
