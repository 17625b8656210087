"""Docstrings: every public name documents itself with a runnable example."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import skvae
import skvae.base
import skvae_plugins

MODULES = sorted(
    name
    for package in (skvae, skvae_plugins)
    for _, name, _ in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_doctests_pass(module_name):
    if module_name == "skvae.onnx":  # the onnx extra
        for dependency in ("onnx", "onnxscript", "skl2onnx", "onnxruntime"):
            pytest.importorskip(dependency)
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def _public_api():
    for name in skvae.__all__:
        yield f"skvae.{name}", getattr(skvae, name)
    for name in skvae.base.__all__:
        obj = getattr(skvae.base, name)
        if callable(obj):  # constants such as ACTIVATIONS are documented in place
            yield f"skvae.base.{name}", obj
    for module_name in MODULES:
        if module_name.startswith("skvae_plugins."):
            module = importlib.import_module(module_name)
            for name, obj in vars(module).items():
                if inspect.isclass(obj) and obj.__module__ == module_name and getattr(obj, "name", None):
                    yield f"{module_name}.{name}", obj


@pytest.mark.parametrize("qualname, obj", list(_public_api()), ids=lambda x: x if isinstance(x, str) else "")
def test_public_names_have_examples(qualname, obj):
    if qualname == "skvae.hookimpl":
        obj = importlib.import_module("skvae.hookspecs")
    doc = inspect.getdoc(obj) or ""
    assert "Examples\n--------" in doc, f"{qualname} has no Examples section"
