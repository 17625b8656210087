"""Safe model files: a fitted estimator as JSON and safetensors, loaded without running code.

A ``.skvae`` file is a zip archive with three members:

``model.json``
    Everything but tensors, as JSON: the format name and version, the skvae
    and torch versions that wrote it, the estimator's class name, its
    parameters (``get_params(deep=False)``), its fitted attributes
    (``n_features_in_``, ``feature_names_in_``, ``n_iter_``, ``history_``,
    ``classes_``, the fitted plugins ``architecture_``, ``likelihood_``,
    ``prior_``, ...), the structure of the torch module (class, latent size,
    ``config``, and the name, dtype and shape of every tensor), the
    optimizer's settings, and the size and SHA-256 digest of each
    ``.safetensors`` member.
``weights.safetensors``
    The module's ``state_dict`` (parameters and buffers), on the CPU, under
    the module's own keys; any safetensors reader can open it.
``training.safetensors`` (optional)
    The optimizer's state tensors (``optimizer.<param index>.<name>``) and the
    state of the training random number generator (``generator``), so that
    ``partial_fit`` and ``warm_start`` continue exactly where the saved
    estimator was.

A **checkpoint** (written after every epoch when an estimator's
``checkpoint_path`` is set; see :func:`save_checkpoint`) is a ``.skvae``
file of the estimator at the end of an epoch, with the optimizer's and the
generator's state, format version 1.1, and two more entries that readers of
1.0 ignore:

``"checkpoint"`` (in ``model.json``)
    The state of the fit in progress: ``epoch`` (epochs completed, equal to
    ``n_iter_``), ``stop_epoch`` (where this fit ends), ``finished``,
    ``lr_scale`` and ``halvings`` (learning-rate halvings after
    divergences), the early-stopping state ``stopper_best``,
    ``stopper_bad_epochs`` and ``stopper_best_state`` (whether the best
    weights are stored), and ``data_sha256``, a digest of the training data.
``checkpoint.safetensors`` (optional)
    The best weights kept by early stopping, under ``best.<key>``.

:func:`skvae.load` reads a checkpoint as the model of its last completed
epoch.

Values in ``model.json`` are plain JSON, except these tagged objects:

- ``{"type": "tuple", "items": [...]}``, ``{"type": "dict", "items": {...}}``
  (a dict value; string keys), ``{"type": "float", "value": "nan"}`` (also
  ``"inf"``, ``"-inf"``), ``{"type": "device", "value": "cuda:0"}``,
  ``{"type": "numpy", "dtype": "int64", "value": 3}`` (a numpy scalar) and
  ``{"type": "ndarray", "dtype": "<U3", "shape": [2], "data": [...]}`` (a
  numpy array of numbers, booleans or strings, flattened in C order);
  a path (:class:`os.PathLike`) is written as its string;
- ``{"plugin": name, "kind": kind, "params": {...}, "class": ...,
  "distribution": ..., "version": ..., "entry_point": ...}``: a plugin
  instance, rebuilt at load as ``registered_class(**params)`` where
  ``registered_class`` is looked up **by registered name** in the skvae
  plugin registry. ``"params": null`` stands for the plugin class itself.
  ``class``, ``distribution``, ``version`` and ``entry_point`` say where the
  plugin came from when the file was written; they are never imported.

Loading reads JSON and safetensors only: it runs no pickle and no
``torch.load``, imports nothing named in the file, and instantiates only
skvae's own estimator classes and registered plugins.
"""

import hashlib
import importlib.metadata
import json
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from . import _engine
from ._conditional import AuxiliaryClassifierVAE, ConditionalVAETransformer
from ._estimator import VAETransformer, _resolve_device
from ._registry import DISABLE_ENV, PluginError, get_registry
from .base import Plugin

FORMAT_NAME = "skvae-model"
#: (major, minor). A reader loads files of its own major version, whatever the
#: minor one (a minor version only adds keys that older readers may ignore).
FORMAT_VERSION = (1, 0)
#: The version of checkpoint files: 1.0 plus the "checkpoint" entries.
CHECKPOINT_FORMAT_VERSION = (1, 1)
MODEL_JSON = "model.json"
WEIGHTS = "weights.safetensors"
TRAINING = "training.safetensors"
CHECKPOINT = "checkpoint.safetensors"

# The estimator classes a file may name: a whitelist, never getattr.
_ESTIMATORS = {
    cls.__name__: cls
    for cls in (VAETransformer, ConditionalVAETransformer, AuxiliaryClassifierVAE)
}
# Fitted state stored apart from the JSON attributes (tensors, or rebuilt).
_RUNTIME_ATTRIBUTES = ("module_", "optimizer_", "_generator", "_device")
_PLUGIN_KINDS = ("architecture", "likelihood", "prior")
_ARRAY_KINDS = "biufU"  # bool, int, uint, float, str; plus object arrays of scalars
_JSON_SCALARS = (str, bool, int, float, type(None))
_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member dates: the same model gives the same bytes
# model.json holds no tensors; a larger one is a decompression bomb, not a model.
_MAX_JSON_BYTES = 256 * 2**20


class ModelFileError(ValueError):
    """A ``.skvae`` file that cannot be loaded.

    Raised by :func:`skvae.load` for a file that is truncated or is not a
    model file, that was modified after it was written (a weights digest
    that does not match, a ``model.json`` that does not describe the
    weights), that was written by a newer, incompatible format version, that
    names an estimator class skvae does not have, or that needs a plugin
    that is not installed (the message names the plugin and the
    distribution and version that provided it).

    Examples
    --------
    >>> import os, tempfile
    >>> import skvae
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "empty.skvae")
    ...     with open(path, "wb") as f:
    ...         _ = f.write(b"not a zip file")
    ...     try:
    ...         skvae.load(path)
    ...     except skvae.ModelFileError as exc:
    ...         print("refused:", str(exc).split(":")[0])
    refused: ...empty.skvae is not a .skvae model file (not a zip archive, or truncated)
    """


# ----------------------------------------------------------------------- save
def save(estimator, path, *, include_optimizer=True):
    """Save a fitted skvae estimator to a ``.skvae`` file that loads without running code.

    The file is a zip archive holding ``model.json`` (parameters, fitted
    attributes, plugin names and the module's structure, with the SHA-256 of
    each tensor file) and ``weights.safetensors`` (the module's weights),
    plus ``training.safetensors`` (optimizer and training RNG state) unless
    ``include_optimizer=False``. See :mod:`skvae._io` for the layout.

    ``pickle`` and ``joblib.dump`` keep working for files you make and load
    yourself; but unpickling runs code from the file. Only the ``.skvae``
    format is safe for files from others: :func:`load` reads JSON and
    safetensors only, and plugins are looked up by their registered name.

    Parameters
    ----------
    estimator : VAETransformer, ConditionalVAETransformer or AuxiliaryClassifierVAE
        A fitted estimator (exactly one of these classes, not a subclass).
    path : str or os.PathLike
        Where to write; ``.skvae`` is the customary suffix. The file is
        written next to its destination and then moved into place, so that
        a failure leaves no partial file.
    include_optimizer : bool, default=True
        Also store the optimizer's state and the training generator's state,
        so that ``partial_fit`` and ``warm_start`` continue exactly. Without
        it, the loaded estimator predicts the same but continues training
        with a fresh optimizer.

    Returns
    -------
    path : pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If a parameter or fitted attribute cannot be written as JSON (such
        as ``random_state=np.random.RandomState(0)``: use an int or None)
        or is a plugin that is not registered by name (register it through
        an entry point in the ``skvae`` group); the message names it.
    TypeError
        If ``estimator`` is not one of skvae's estimator classes.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skvae
    >>> X = load_digits().data[:200] / 16
    >>> vae = skvae.VAETransformer(max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = skvae.save(vae, os.path.join(tmp, "digits.skvae"))
    ...     loaded = skvae.load(path)
    >>> bool((loaded.transform(X) == vae.transform(X)).all())
    True
    """
    return _save(estimator, path, include_optimizer=include_optimizer)


def _save(estimator, path, *, include_optimizer, checkpoint=None, checkpoint_tensors=None):
    st = _safetensors()
    cls = type(estimator)
    _check_class(cls)
    check_is_fitted(estimator)

    encoded_params = encode_params(estimator)
    params = estimator.get_params(deep=False)
    fitted = {}
    for name, value in vars(estimator).items():
        if name in params or name in _RUNTIME_ATTRIBUTES:
            continue
        fitted[name] = _encode(value, f"fitted attribute {name}")

    module = estimator.module_
    state = {
        key: tensor.detach().to("cpu", copy=True).contiguous()
        for key, tensor in module.state_dict().items()
    }
    weights = st.save(state, metadata={"format": "pt"})
    version = FORMAT_VERSION if checkpoint is None else CHECKPOINT_FORMAT_VERSION
    model = {
        "format": FORMAT_NAME,
        "format_version": f"{version[0]}.{version[1]}",
        "skvae_version": _skvae_version(),
        "torch_version": torch.__version__,
        "estimator": cls.__name__,
        "params": encoded_params,
        "fitted": fitted,
        "device": str(estimator._device),
        "module": {
            "class": type(module).__name__,
            "n_components": int(module.n_components),
            "config": _encode(dict(getattr(module, "config", {})), "module config"),
            "tensors": {
                key: {"dtype": _dtype_name(t.dtype), "shape": list(t.shape)}
                for key, t in state.items()
            },
        },
        "optimizer": None,
        "files": {WEIGHTS: _file_record(weights)},
    }
    members = {WEIGHTS: weights}
    if include_optimizer:
        model["optimizer"], training = _encode_training_state(estimator)
        members[TRAINING] = st.save(training, metadata={"format": "pt"})
        model["files"][TRAINING] = _file_record(members[TRAINING])
    if checkpoint is not None:
        model["checkpoint"] = {k: _encode(v, f"checkpoint {k}") for k, v in checkpoint.items()}
        if checkpoint_tensors:
            tensors = {
                k: t.detach().to("cpu", copy=True).contiguous()
                for k, t in checkpoint_tensors.items()
            }
            members[CHECKPOINT] = st.save(tensors, metadata={"format": "pt"})
            model["files"][CHECKPOINT] = _file_record(members[CHECKPOINT])

    text = json.dumps(model, indent=1, allow_nan=False, ensure_ascii=False)
    path = Path(os.fspath(path))
    _write_zip(path, {MODEL_JSON: text.encode("utf-8"), **members})
    return path


def _check_class(cls):
    if _ESTIMATORS.get(cls.__name__) is not cls:
        raise TypeError(
            f"skvae.save writes skvae's own estimators ({', '.join(sorted(_ESTIMATORS))}); "
            f"got {cls.__module__}.{cls.__qualname__}. Use pickle or joblib for other "
            "objects (for files you load yourself only)."
        )


def encode_params(estimator):
    """Return the estimator's parameters (``get_params(deep=False)``) as JSON data.

    As written to ``model.json``; raises ValueError naming a parameter that
    a model file cannot hold.

    Examples
    --------
    >>> from skvae import VAETransformer
    >>> encode_params(VAETransformer(max_iter=3))["max_iter"]
    3
    """
    params = estimator.get_params(deep=False)
    return {name: _encode(value, name) for name, value in params.items()}


def _safetensors():
    # Imported on use: `import skvae` works without it, save/load say what is missing.
    try:
        import safetensors.torch
    except ImportError as exc:
        raise ImportError(
            "skvae.save and skvae.load need the safetensors package: pip install safetensors"
        ) from exc
    return safetensors.torch


def _skvae_version():
    from . import __version__

    return __version__


def _file_record(data):
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def _write_zip(path, members):
    # Written next to the destination, then renamed: no half-written model.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    # The data reach the disk (fsync) before the rename, and the rename
    # before we return (fsync of the folder): after a crash or a power cut
    # the path holds the old file or the new one, whole.
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w") as archive:
                for name, data in members.items():
                    info = zipfile.ZipInfo(name, date_time=_DATE)
                    info.external_attr = 0o644 << 16
                    # JSON compresses well; tensors hardly, and stored members
                    # can be read without inflating.
                    info.compress_type = (
                        zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
                    )
                    archive.writestr(info, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder):
    if os.name != "posix":
        return  # Windows cannot open a folder; its rename is durable enough
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _encode_training_state(estimator):
    optimizer = estimator.optimizer_
    name = _engine.optimizer_name(optimizer)
    if name is None:
        raise ValueError(
            f"optimizer_ is a {type(optimizer).__name__}, not one of skvae's optimizers "
            f"({sorted(_engine.OPTIMIZERS)}); save with include_optimizer=False."
        )
    sd = optimizer.state_dict()
    tensors, state = {}, {}
    for index, entry in sd["state"].items():
        encoded = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensor_key = f"optimizer.{index}.{key}"
                tensors[tensor_key] = value.detach().to("cpu", copy=True).contiguous()
                encoded[key] = {"type": "tensor", "key": tensor_key}
            else:
                encoded[key] = _encode(value, f"optimizer state {index}.{key}")
        state[str(index)] = encoded
    generator = estimator._generator
    tensors["generator"] = generator.get_state().to("cpu", copy=True).contiguous()
    record = {
        "name": name,
        "param_groups": _encode(sd["param_groups"], "optimizer param_groups"),
        "state": state,
        "generator": {"device_type": generator.device.type, "key": "generator"},
    }
    return record, tensors


def _encode(value, where):
    """Turn a value into JSON data (see the module docstring), or explain why not."""
    # numpy before Python types: np.float64 is a float, np.bool_ is not a bool.
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biuf":
            raise _unrepresentable(value, where)
        return {"type": "numpy", "dtype": value.dtype.name, "value": _encode(value.item(), where)}
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"type": "float", "value": "nan" if math.isnan(value) else repr(value)}
    if isinstance(value, (str, bool, int, type(None))):
        return value
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        items = [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return {"type": "tuple", "items": items}
    if isinstance(value, dict):
        items = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"Cannot save {where}: the dict key {key!r} is not a string, and "
                    "model files hold JSON only."
                )
            items[key] = _encode(v, f"{where}[{key!r}]")
        return {"type": "dict", "items": items}
    if isinstance(value, torch.device):
        return {"type": "device", "value": str(value)}
    if isinstance(value, os.PathLike):
        return _encode(os.fspath(value), where)
    if isinstance(value, np.ndarray):
        return _encode_array(value, where)
    if isinstance(value, Plugin) or (isinstance(value, type) and issubclass(value, Plugin)):
        return _encode_plugin(value, where)
    raise _unrepresentable(value, where)


def _encode_array(array, where):
    kind = array.dtype.kind
    if kind == "O":
        flat = array.ravel().tolist()
        if not all(isinstance(v, _JSON_SCALARS) for v in flat):
            raise ValueError(
                f"Cannot save {where}: an object array must hold only strings, "
                "numbers, booleans or None to be written as JSON."
            )
    elif kind not in _ARRAY_KINDS or array.dtype.fields is not None:
        raise _unrepresentable(array, where)
    data = [_encode(v, where) for v in array.ravel().tolist()]
    return {"type": "ndarray", "dtype": array.dtype.str, "shape": list(array.shape), "data": data}


def _unrepresentable(value, where):
    hint = "Use strings, numbers, booleans, None, lists or tuples of them, or registered plugins."
    if "random_state" in where and isinstance(value, (np.random.RandomState, np.random.Generator)):
        hint = (
            "Set random_state to an int or None before saving "
            "(estimator.set_params(random_state=0)); a RandomState instance is "
            "Python state that a model file does not hold."
        )
    elif isinstance(value, torch.Generator):
        hint = "A torch.Generator is not written to model files; pass a seed instead."
    return ValueError(
        f"Cannot save {where}={_short_repr(value)} in a .skvae model file: a "
        f"{type(value).__module__}.{type(value).__qualname__} is not representable as "
        f"JSON. {hint} pickle/joblib can save it, for files you load yourself only."
    )


def _short_repr(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _encode_plugin(plugin, where):
    cls = plugin if isinstance(plugin, type) else type(plugin)
    kind, name = cls.kind, cls.name
    registry = get_registry()
    registered = None
    if kind in _PLUGIN_KINDS and isinstance(name, str):
        try:
            registered = registry.get(kind, name)
        except PluginError:
            registered = None
    if registered is not cls:
        if registered is None:
            problem = f"no {kind} plugin is registered under its name {name!r}"
        else:
            problem = (
                f"the {kind} name {name!r} is registered to "
                f"{registered.__module__}.{registered.__qualname__}, a different class"
            )
        raise ValueError(
            f"Cannot save {where}={_short_repr(plugin)}: {problem}. A .skvae file names "
            "plugins by their registered name, so that loading imports nothing from the "
            "file. Register the plugin through an entry point in the 'skvae' group of "
            "its package (see the README: 'Writing a plugin'), or with "
            "skvae.register_plugin in both the saving and the loading process; or use "
            "pickle/joblib for files you load yourself only."
        )
    origin = registry.origin(kind, name)
    if isinstance(plugin, type):
        params = None
    else:
        params = {
            key: _encode(value, f"{where}__{key}")
            for key, value in plugin.get_params(deep=False).items()
        }
    return {
        "plugin": name,
        "kind": kind,
        "params": params,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "distribution": origin["distribution"],
        "version": origin["version"],
        "entry_point": origin["entry_point"],
    }


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(estimator, path, state, tensors=None):
    """Write a checkpoint of a fit in progress: a ``.skvae`` file with the fit's state.

    The file is that of :func:`save` (with the optimizer's and generator's
    state), at format version 1.1, plus the ``"checkpoint"`` entry of
    ``model.json`` and, for ``tensors``, a ``checkpoint.safetensors`` member
    (see the module docstring). Written atomically: a temporary file in the
    same folder, fsync, then :func:`os.replace`.

    Parameters
    ----------
    estimator : VAETransformer, ConditionalVAETransformer or AuxiliaryClassifierVAE
        The estimator as at the end of the epoch (fitted attributes set).
    path : str or os.PathLike
    state : dict
        The ``"checkpoint"`` entry: str keys, JSON-representable values.
    tensors : dict of str to Tensor, default=None
        Extra tensors of the fit's state (such as early stopping's best
        weights).

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skvae
    >>> X = load_digits().data[:100] / 16
    >>> vae = skvae.VAETransformer(max_iter=1, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(vae, os.path.join(tmp, "ckpt.skvae"), {"epoch": 1})
    ...     checkpoint = read_checkpoint(path, "cpu")
    >>> checkpoint.state["epoch"], checkpoint.estimator.n_iter_
    (1, 1)
    """
    return _save(
        estimator, path, include_optimizer=True, checkpoint=state, checkpoint_tensors=tensors
    )


@dataclass
class Checkpoint:
    """A checkpoint read back by :func:`read_checkpoint`.

    Attributes
    ----------
    estimator : VAETransformer
        The estimator at the end of the checkpoint's epoch, on the device.
    state : dict
        The decoded ``"checkpoint"`` entry of ``model.json``.
    params : dict
        The estimator's parameters as JSON data (as :func:`encode_params`).
    tensors : dict of str to Tensor
        The checkpoint's own tensors (CPU).
    """

    estimator: object
    state: dict
    params: dict
    tensors: dict


def read_checkpoint(path, device):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
    device : str or torch.device
        Where to put the model.

    Returns
    -------
    checkpoint : Checkpoint

    Raises
    ------
    ModelFileError
        If the file is not a model file (or is damaged), or is a model file
        without a checkpoint entry (saved by :func:`save`).

    Examples
    --------
    See :func:`save_checkpoint`.
    """
    estimator, model, tensors = _load(path, device, checkpoint=True)
    raw = model.get("checkpoint")
    if not isinstance(raw, dict) or model.get("optimizer") is None:
        raise ModelFileError(
            f"{path} is a model file saved by skvae.save, not a checkpoint of a fit."
        )
    try:
        state = {k: _decode(v, f"checkpoint {k}") for k, v in raw.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the checkpoint entry is malformed ({exc}).") from None
    generator = model["optimizer"].get("generator", {})
    state.setdefault("generator_device_type", generator.get("device_type"))
    return Checkpoint(estimator, state, model["params"], dict(tensors))


# ----------------------------------------------------------------------- load
def load(path, *, device="cpu"):
    """Load an estimator saved by :func:`save`, running no code from the file.

    Reads ``model.json`` with :mod:`json` and the tensors with safetensors;
    instantiates only skvae's estimator classes (by a fixed list of names)
    and plugins found by registered name in this environment. Nothing in
    the file is unpickled, evaluated or imported. This makes ``.skvae``
    files safe to accept from others, unlike pickle and joblib files, which
    remain fine for your own.

    The loaded estimator gives exactly the same ``transform``,
    ``score_samples`` and ``sample`` results as the saved one on the CPU,
    and continues training (``partial_fit``, ``warm_start``) where it was.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    device : str or torch.device, default="cpu"
        Where to put the model: "cpu", "auto" (CUDA when available, else the
        CPU) or any torch device. The estimator's ``device`` parameter keeps
        its saved value, used by a later fresh ``fit``.

    Returns
    -------
    estimator : VAETransformer, ConditionalVAETransformer or AuxiliaryClassifierVAE
        The fitted estimator.

    Raises
    ------
    ModelFileError
        If the file is not a model file or is truncated, was modified
        (weights digest, or a ``model.json`` that does not match the
        weights), comes from a newer major format version, names an unknown
        estimator class, or needs a plugin that is not installed (the
        message names the plugin, and the distribution and version that
        provided it). A subclass of ValueError.

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skvae
    >>> X, y = load_digits(return_X_y=True)
    >>> X, y = X[:200] / 16, y[:200]
    >>> cvae = skvae.ConditionalVAETransformer(max_iter=2, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = skvae.save(cvae, os.path.join(tmp, "cvae.skvae"))
    ...     loaded = skvae.load(path)
    >>> loaded.classes_
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> bool((loaded.sample(3, random_state=0, y=7)
    ...       == cvae.sample(3, random_state=0, y=7)).all())
    True
    >>> loaded = loaded.partial_fit(X, y)  # training continues
    """
    return _load(path, device)[0]


def _load(path, device, checkpoint=False):
    """Return the estimator, model.json and (with ``checkpoint``) the checkpoint tensors."""
    _safetensors()
    device = _resolve_device(device)
    path = Path(os.fspath(path))
    members = _read_members(path, checkpoint)  # format, class name and digests checked
    model = members["model"]
    try:
        weights = _parse_safetensors(members[WEIGHTS], WEIGHTS)
        training = None
        if model.get("optimizer") is not None:
            training = _parse_safetensors(members[TRAINING], TRAINING)
        extra = {}
        if CHECKPOINT in members:
            extra = _parse_safetensors(members[CHECKPOINT], CHECKPOINT)
        estimator = _build_estimator(
            _ESTIMATORS[model["estimator"]], model, weights, training, device
        )
        return estimator, model, extra
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        raise ModelFileError(
            f"{path} could not be loaded: model.json is malformed or does not fit this "
            f"skvae ({type(exc).__name__}: {exc}). It was written by skvae "
            f"{model.get('skvae_version')!r}."
        ) from None


def _read_members(path, checkpoint=False):
    """Open the archive, check format, class and digests; return the raw members.

    With ``checkpoint``, also the checkpoint's own tensors, when it has some.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelFileError(
            f"{path} is not a .skvae model file (not a zip archive, or truncated): {exc}"
        ) from None
    with archive:
        try:
            json_size = archive.getinfo(MODEL_JSON).file_size
        except KeyError:
            json_size = 0  # reported as missing below
        if json_size > _MAX_JSON_BYTES:
            raise ModelFileError(
                f"{path}: model.json claims {json_size} bytes, more than the "
                f"{_MAX_JSON_BYTES} a model description can need; refused."
            )
        model = _parse_model_json(path, _read_member(archive, path, MODEL_JSON))
        members = {"model": model}
        files = model.get("files")
        if not isinstance(files, dict):
            raise ModelFileError(f"{path}: model.json lists no file digests.")
        wanted = [WEIGHTS] + ([TRAINING] if model.get("optimizer") is not None else [])
        if checkpoint and CHECKPOINT in files:
            wanted.append(CHECKPOINT)
        for name in wanted:
            data = _read_member(archive, path, name)
            record = files.get(name)
            if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
                raise ModelFileError(f"{path}: model.json records no SHA-256 digest of {name}.")
            digest = hashlib.sha256(data).hexdigest()
            if digest != record["sha256"].lower():
                raise ModelFileError(
                    f"{path}: {name} does not match the SHA-256 digest recorded in "
                    f"model.json (recorded {record['sha256']}, found {digest}): the file "
                    "was damaged or modified after it was written. Ask for a fresh copy."
                )
            members[name] = data
    return members


def _read_member(archive, path, name):
    try:
        return archive.read(name)
    except KeyError:
        raise ModelFileError(
            f"{path} is missing {name}: it is not a complete .skvae model file "
            f"(members: {sorted(archive.namelist())})."
        ) from None
    except Exception as exc:  # BadZipFile (bad CRC), EOFError, zlib.error, ...
        raise ModelFileError(
            f"{path}: {name} cannot be read; the file is truncated or damaged "
            f"({type(exc).__name__}: {exc})."
        ) from None


def _parse_model_json(path, data):
    try:
        model = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: model.json is not valid JSON ({exc}).") from None
    if not isinstance(model, dict) or model.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{path}: model.json does not describe an skvae model (expected "
            f'"format": "{FORMAT_NAME}").'
        )
    version = model.get("format_version")
    match = re.fullmatch(r"(\d{1,6})\.(\d{1,6})", version) if isinstance(version, str) else None
    if match is None:
        raise ModelFileError(f"{path}: model.json has no valid format_version ({version!r}).")
    major = int(match.group(1))
    if major != FORMAT_VERSION[0]:
        newer = major > FORMAT_VERSION[0]
        raise ModelFileError(
            f"{path} uses model format {version}, written by skvae "
            f"{model.get('skvae_version')!r}; this skvae ({_skvae_version()}) reads format "
            f"{FORMAT_VERSION[0]}.x. "
            + (
                "Upgrade skvae to load it."
                if newer
                else "Load it with an older skvae and save it again."
            )
        )
    name = model.get("estimator")
    if not isinstance(name, str) or name not in _ESTIMATORS:
        raise ModelFileError(
            f"{path}: model.json names the estimator class {name!r}, which is not one "
            f"of skvae's estimators ({', '.join(sorted(_ESTIMATORS))}); only those can "
            "be loaded."
        )
    return model


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def _parse_safetensors(data, name):
    try:
        return _safetensors().load(data)
    except Exception as exc:  # SafetensorError and friends: a bad header or body
        raise ModelFileError(
            f"{name} is not a valid safetensors file (truncated or damaged): "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _build_estimator(cls, model, weights, training, device):
    params = model["params"]
    if not isinstance(params, dict):
        raise TypeError("params is not an object")
    decoded = {name: _decode(value, f"parameter {name}") for name, value in params.items()}
    known = set(cls().get_params(deep=False))
    unknown = sorted(set(decoded) - known)
    if unknown:
        raise ModelFileError(
            f"The file sets parameters {unknown} that {cls.__name__} of this skvae "
            f"({_skvae_version()}) does not have; it was written by skvae "
            f"{model.get('skvae_version')!r}. Upgrade skvae to load it."
        )
    estimator = cls(**decoded)
    try:
        estimator._validate_params()
    except ValueError as exc:
        raise ModelFileError(f"model.json holds an invalid parameter: {exc}") from None

    fitted = model["fitted"]
    if not isinstance(fitted, dict):
        raise TypeError("fitted is not an object")
    for name, value in fitted.items():
        _check_attribute_name(cls, name, known)
        setattr(estimator, name, _decode(value, f"fitted attribute {name}"))
    for name in ("architecture_", "likelihood_", "prior_"):
        kind = name[:-1]
        plugin = getattr(estimator, name, None)
        if not isinstance(plugin, Plugin) or plugin.kind != kind:
            raise ModelFileError(f"model.json has no fitted {kind} plugin ({name}).")
    n_features = estimator.n_features_in_
    if not isinstance(n_features, Integral) or isinstance(n_features, bool) or n_features < 1:
        raise ModelFileError(f"model.json: n_features_in_={n_features!r} is not a positive int.")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and len(names) != n_features:
        raise ModelFileError(
            f"model.json: feature_names_in_ has {len(names)} names but n_features_in_ is "
            f"{n_features}: the file was modified."
        )
    seed = getattr(estimator, "_seed", 0)
    if not isinstance(seed, Integral) or isinstance(seed, bool):
        raise ModelFileError(f"model.json: _seed={seed!r} is not an int.")

    module = _build_module(estimator, model, weights, n_features, int(seed))
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        width = getattr(module, "decoder_conditions", None)
        lengths = {len(classes), width} | {
            len(getattr(estimator, a))
            for a in ("class_count_", "class_prior_")
            if hasattr(estimator, a)
        }
        if len(lengths) != 1:
            raise ModelFileError(
                f"model.json: classes_ has {len(classes)} labels but the model and the class "
                f"counts are for {sorted(lengths - {len(classes)})}: the file was modified."
            )
    module.to(device).eval()

    record = model.get("optimizer")
    name = record["name"] if record is not None else estimator.optimizer
    if name not in _engine.OPTIMIZERS:
        raise ModelFileError(f"model.json names an unknown optimizer {name!r}.")
    optimizer = _engine.make_optimizer(
        name, module.parameters(), estimator.learning_rate, device
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    if record is not None:
        _engine.load_optimizer_state(optimizer, _decode_optimizer_state(record, training))
        saved = record["generator"]
        if saved["device_type"] == device.type:
            state = training.get(saved["key"])
            if state is None or state.dtype != torch.uint8:
                raise ModelFileError("training.safetensors holds no generator state.")
            generator.set_state(state)
    estimator.module_ = module
    estimator.optimizer_ = optimizer
    estimator._generator = generator
    estimator._device = device
    return estimator


def _check_attribute_name(cls, name, params):
    """Fitted attribute names: `x_` or `_x`, never a parameter, dunder or class attribute."""
    ok = (
        isinstance(name, str)
        and name.isidentifier()
        and not name.startswith("__")
        and (name.endswith("_") or name.startswith("_"))
        and name not in params
        and name not in _RUNTIME_ATTRIBUTES
        and not hasattr(cls, name)
    )
    if not ok:
        raise ModelFileError(
            f"model.json sets the fitted attribute {name!r}, which a {cls.__name__} "
            "cannot have: the file was modified or is not an skvae model."
        )


def _build_module(estimator, model, weights, n_features, seed):
    info = model["module"]
    n_components = info["n_components"]
    if not isinstance(n_components, Integral) or isinstance(n_components, bool) or n_components < 1:
        raise ModelFileError(f"model.json: module n_components={n_components!r} is invalid.")
    config = _decode(info["config"], "module config")
    if not isinstance(config, dict):
        raise TypeError("module config is not an object")
    listed = info.get("tensors", {})
    file_shapes = {k: (_dtype_name(t.dtype), list(t.shape)) for k, t in weights.items()}
    json_shapes = {k: (v["dtype"], list(v["shape"])) for k, v in listed.items()}
    if json_shapes != file_shapes:
        raise ModelFileError(
            "The tensors listed in model.json differ from those in weights.safetensors "
            f"({_first_difference(json_shapes, file_shapes, 'model.json', 'the weights')}): "
            "the file was modified."
        )
    args = (
        estimator.architecture_,
        estimator.likelihood_,
        estimator.prior_,
        n_features,
        int(n_components),
        seed,
    )
    # First on the meta device (no memory): a model.json edited to describe
    # a huge network is refused before anything is allocated. Plugins whose
    # build cannot run on meta skip this check; the real one follows.
    try:
        with torch.device("meta"):
            meta = estimator._make_module(*args, **config)
    except Exception:
        meta = None
    if meta is not None:
        _check_shapes(meta, file_shapes, model)
    module = estimator._make_module(*args, **config)
    _check_shapes(module, file_shapes, model)
    if type(module).__name__ != info.get("class"):
        raise ModelFileError(
            f"model.json describes a {info.get('class')} module, but this skvae builds a "
            f"{type(module).__name__} for a {type(estimator).__name__}."
        )
    module.load_state_dict(weights, strict=True)
    return module


def _check_shapes(module, file_shapes, model):
    expected = {k: (_dtype_name(t.dtype), list(t.shape)) for k, t in module.state_dict().items()}
    if expected != file_shapes:
        plugins = ", ".join(
            f"{kind} {p.get('plugin')!r} ({p.get('distribution')} {p.get('version')})"
            for kind in _PLUGIN_KINDS
            if isinstance(p := model["fitted"].get(f"{kind}_"), dict)
        )
        difference = _first_difference(
            expected, file_shapes, "the model built from model.json", "the weights"
        )
        raise ModelFileError(
            f"model.json does not describe the network in weights.safetensors: {difference}. "
            "Either the file was modified, or a plugin builds a different network "
            f"than when the file was written (the file used: {plugins}; "
            f"skvae {model.get('skvae_version')})."
        )


def _first_difference(a, b, a_name, b_name):
    for key in sorted(set(a) | set(b)):
        if key not in b:
            return f"{a_name} has a tensor {key!r} that {b_name} lack"
        if key not in a:
            return f"{b_name} have a tensor {key!r} that {a_name} lacks"
        if a[key] != b[key]:
            (da, sa), (db, sb) = a[key], b[key]
            return (
                f"tensor {key!r} is {da} {tuple(sa)} in {a_name} "
                f"but {db} {tuple(sb)} in {b_name}"
            )
    return "no difference"


def _decode_optimizer_state(record, training):
    state = {}
    raw_state = record["state"]
    if not isinstance(raw_state, dict):
        raise TypeError("optimizer state is not an object")
    for index, entry in raw_state.items():
        values = {}
        for key, value in entry.items():
            if isinstance(value, dict) and value.get("type") == "tensor":
                tensor = training.get(value["key"])
                if tensor is None:
                    raise ModelFileError(
                        f"training.safetensors lacks the optimizer tensor {value['key']!r}."
                    )
                values[key] = tensor
            else:
                values[key] = _decode(value, f"optimizer state {index}.{key}")
        state[int(index)] = values
    groups = _decode(record["param_groups"], "optimizer param_groups")
    return {"state": state, "param_groups": groups}


def _decode(value, where):
    """Inverse of :func:`_encode`; builds only plain values, arrays and registered plugins."""
    if isinstance(value, (str, bool, int, float, type(None))):
        return value
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    if not isinstance(value, dict):
        raise TypeError(f"{where}: unexpected JSON value {value!r}")
    if "plugin" in value:
        return _decode_plugin(value, where)
    tag = value.get("type")
    if tag == "tuple":
        return tuple(_decode(v, where) for v in _expect(value["items"], list, where))
    if tag == "dict":
        items = _expect(value["items"], dict, where)
        return {k: _decode(v, f"{where}[{k!r}]") for k, v in items.items()}
    if tag == "float":
        if value["value"] not in ("nan", "inf", "-inf"):
            raise ValueError(f"{where}: bad float {value['value']!r}")
        return float(value["value"])
    if tag == "device":
        return torch.device(_expect(value["value"], str, where))
    if tag == "numpy":
        dtype = _safe_dtype(value["dtype"], where, kinds="biuf")
        return dtype.type(_decode(value["value"], where))
    if tag == "ndarray":
        return _decode_array(value, where)
    raise ValueError(f"{where}: unknown value type {tag!r}")


def _expect(value, kind, where):
    if not isinstance(value, kind):
        raise TypeError(f"{where}: expected a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def _safe_dtype(name, where, kinds):
    dtype = np.dtype(_expect(name, str, where))
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"{where}: dtype {name!r} is not allowed in a model file")
    return dtype


def _decode_array(value, where):
    dtype = _safe_dtype(value["dtype"], where, kinds=_ARRAY_KINDS + "O")
    shape = tuple(_expect(value["shape"], list, where))
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ValueError(f"{where}: bad shape {list(shape)}")
    data = [_decode(v, where) for v in _expect(value["data"], list, where)]
    if not all(isinstance(v, _JSON_SCALARS) for v in data):
        raise ValueError(f"{where}: array elements must be scalars")
    if math.prod(shape) != len(data):
        raise ValueError(f"{where}: {len(data)} values for shape {list(shape)}")
    if dtype.kind == "O":
        array = np.empty(len(data), dtype=object)
        array[:] = data
    else:
        array = np.array(data, dtype=dtype)
    return array.reshape(shape)


def _missing_plugin_message(value, kind, name, exc):
    made_by, made_version = value.get("distribution"), value.get("version")
    if not made_by:
        return (
            f"The model needs the {kind} plugin {name!r} (class {value.get('class')!r}), "
            f"which was registered at run time when the file was written and is not "
            f"registered here: {exc} Register the same plugin (skvae.register_plugin) "
            "before loading, or better, publish it with an entry point."
        )
    try:
        installed = importlib.metadata.version(made_by)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        installed = None
    if installed is None:
        state = f"{made_by!r} is not installed here"
    elif installed == made_version:
        state = (
            f"{made_by} {installed} is installed here but does not register it "
            f"(is it disabled by {DISABLE_ENV}?)"
        )
    else:
        state = f"{made_by} {installed} is installed here and does not provide it"
    return (
        f"The model needs the {kind} plugin {name!r} (class {value.get('class')!r}, from "
        f"the distribution {made_by!r} version {made_version!r}); {state}. {exc} "
        f"Install it (pip install '{made_by}=={made_version}') and load again."
    )


def _decode_plugin(value, where):
    kind, name = value.get("kind"), value.get("plugin")
    if kind not in _PLUGIN_KINDS or not isinstance(name, str):
        raise ValueError(f"{where}: bad plugin record (kind {kind!r}, name {name!r})")
    try:
        cls = get_registry().get(kind, name)
    except PluginError as exc:
        raise ModelFileError(_missing_plugin_message(value, kind, name, exc)) from None
    params = value.get("params")
    if params is None:
        return cls
    params = {k: _decode(v, f"{where}__{k}") for k, v in _expect(params, dict, where).items()}
    try:
        return cls(**params)
    except TypeError as exc:
        raise ModelFileError(
            f"The {kind} plugin {name!r} installed here ({cls.__module__}.{cls.__qualname__}) "
            f"does not take the parameters saved in the file ({exc}); the file was written "
            f"with {value.get('distribution')} {value.get('version')}."
        ) from None
