"""skvae: variational autoencoders as scikit-learn transformers, on PyTorch.

The package is laid out by job:

- :mod:`skvae._estimator`: :class:`VAETransformer`, the scikit-learn estimator;
  ``fit`` validates the data into a :class:`skvae._data.TrainingData`, builds
  the fit (new, continued or resumed) and hands it to the training loop;
- :mod:`skvae._conditional`: :class:`ConditionalVAETransformer` and
  :class:`AuxiliaryClassifierVAE`, the models that learn from labels;
- :mod:`skvae._outlier`: :class:`VAEOutlierDetector`, scikit-learn's outlier
  detector contract on a VAE; :mod:`skvae._impute`: :class:`VAEImputer`,
  missing values filled in ``sklearn.impute``'s conventions;
- :mod:`skvae._data`: the training data (on the device, or read from a
  memmap batch by batch), with the labels that travel with the rows;
- :mod:`skvae._engine`: the training loop, ``run(trainer, data, schedule,
  strategy, callbacks)``; :mod:`skvae._step` the step's forward,
  :mod:`skvae._model` the objective, :mod:`skvae._schedule` the KL weight and
  learning rate per epoch, :mod:`skvae._state` copies of the fitted state;
- :mod:`skvae.distributed`: data-parallel training under torchrun (the DDP
  strategy, :func:`skvae.distributed.init`, :func:`skvae.distributed.data_parallel`);
- :mod:`skvae.callbacks`: callbacks and loggers on the loop's epochs, and
  scikit-learn's callback API (``set_callbacks``);
- :mod:`skvae._checkpoint`: checkpoints of a fit (a callback of the loop);
- :mod:`skvae._io`: :func:`save` and :func:`load`, the safe ``.skvae`` model
  files (JSON and safetensors); estimators register themselves with it;
- :mod:`skvae._registry` and :mod:`skvae.hookspecs`: the pluggy plugin system;
- :mod:`skvae.base`: the base classes plugin authors subclass;
- :mod:`skvae.plotting`: scikit-learn style displays of fitted models
  (matplotlib), imported on demand;
- :mod:`skvae.cli`: the ``skvae`` command (fit, sample, encode, score,
  impute, plugins), and :mod:`skvae._report` the report (figures and
  ``index.html``) of ``skvae fit``;
- :mod:`skvae.datasets`: data sets by name or file (digits, MNIST,
  Fashion-MNIST, CIFAR-10, texture patches, ``.npy``, ``.csv``).
- :mod:`skvae.onnx`: ONNX export and skl2onnx converters (the ``onnx``
  extra); :mod:`skvae.hub`: Hub-style model folders (``save_pretrained``,
  ``from_pretrained``).

The built-in plugins (architectures, likelihoods, priors) are not in this
package: the source folder ``plugins/`` installs as the package
``skvae_plugins`` and registers through the ``skvae`` entry-point group,
exactly as a third-party package would.

``import skvae`` itself is light: it imports neither torch nor scikit-learn
nor matplotlib. The public names below and the submodules are loaded on
first use (a module ``__getattr__``, PEP 562), so ``from skvae import
VAETransformer`` imports torch and scikit-learn then, and the ``skvae``
command answers ``--help`` and usage errors without them.
"""

import importlib.util

__all__ = [
    "AuxiliaryClassifierVAE",
    "ConditionalVAETransformer",
    "ModelFileError",
    "VAEImputer",
    "VAEOutlierDetector",
    "VAETransformer",
    "hookimpl",
    "list_plugins",
    "load",
    "register_plugin",
    "reset_registry",
    "resolve_plugin",
    "save",
]

# Public name -> the submodule that defines it, imported on first access.
_LAZY_NAMES = {
    "AuxiliaryClassifierVAE": "_conditional",
    "ConditionalVAETransformer": "_conditional",
    "ModelFileError": "_io",
    "VAEImputer": "_impute",
    "VAEOutlierDetector": "_outlier",
    "VAETransformer": "_estimator",
    "hookimpl": "hookspecs",
    "list_plugins": "_registry",
    "load": "_io",
    "register_plugin": "_registry",
    "reset_registry": "_registry",
    "resolve_plugin": "_registry",
    "save": "_io",
}

# The modules of the estimators that model files can hold.
_ESTIMATOR_MODULES = ("_conditional", "_impute", "_outlier")


def __getattr__(name):
    """Import a public name, or a submodule (``skvae.plotting``), on first access."""
    if name == "__version__":  # importlib.metadata alone takes longer than the rest
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("skvae")
        except PackageNotFoundError:  # running from a source tree that is not installed
            value = "0.0.0+unknown"
        globals()[name] = value
        return value
    if name in _LAZY_NAMES:
        if _LAZY_NAMES[name] == "_io":
            # Model files name estimators that register themselves when imported.
            for module in _ESTIMATOR_MODULES:
                importlib.import_module(f".{module}", __name__)
        value = getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # `import skvae; skvae.datasets.load_digits()` as with an eager import;
        # importing a submodule binds it as an attribute of the package.
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    import pkgutil

    submodules = {info.name for info in pkgutil.iter_modules(__path__)}
    return sorted(set(globals()) | set(__all__) | submodules | {"__version__"})
