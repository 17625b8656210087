"""skvae: variational autoencoders as scikit-learn transformers, on PyTorch.

The package is laid out by job:

- :mod:`skvae._estimator`: :class:`VAETransformer`, the scikit-learn estimator;
- :mod:`skvae._conditional`: :class:`ConditionalVAETransformer` and
  :class:`AuxiliaryClassifierVAE`, the models that learn from labels;
- :mod:`skvae._io`: :func:`save` and :func:`load`, the safe ``.skvae`` model
  files (JSON and safetensors);
- :mod:`skvae._registry` and :mod:`skvae.hookspecs`: the pluggy plugin system;
- :mod:`skvae._engine` and :mod:`skvae._model`: the training engine and the
  objective;
- :mod:`skvae.base`: the base classes plugin authors subclass;
- :mod:`skvae.plotting`: scikit-learn style displays of fitted models
  (matplotlib), imported on demand;
- :mod:`skvae.cli`: the ``skvae`` command;
- :mod:`skvae.datasets`: scikit-learn style loaders (digits, MNIST,
  Fashion-MNIST, CIFAR-10, texture patches), scaled to ``[0, 1]``.
"""

from importlib.metadata import PackageNotFoundError, version

from ._conditional import AuxiliaryClassifierVAE, ConditionalVAETransformer
from ._estimator import VAETransformer
from ._io import ModelFileError, load, save
from ._registry import list_plugins, register_plugin, reset_registry
from .hookspecs import hookimpl

try:
    __version__ = version("skvae")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "AuxiliaryClassifierVAE",
    "ConditionalVAETransformer",
    "ModelFileError",
    "VAETransformer",
    "hookimpl",
    "list_plugins",
    "load",
    "register_plugin",
    "reset_registry",
    "save",
]
