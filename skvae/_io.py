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
- ``{"type": "table", "value": {"columns": [...]}}``: the table schema of a
  model fitted on a DataFrame (``table_schema_``, see :mod:`skvae._table`):
  per column its name, dtype (one of an allowlist of names, never parsed
  otherwise), kind, categories (str, int, float or bool values), likelihood
  and standardisation; checked field by field on load, and against
  ``n_features_in_``, ``feature_names_in_`` and ``likelihood_``;
- ``{"plugin": name, "kind": kind, "params": {...}, "class": ...,
  "distribution": ..., "version": ..., "entry_point": ...}``: a plugin
  instance, rebuilt at load as ``registered_class(**params)`` where
  ``registered_class`` is looked up **by registered name** in the skvae
  plugin registry. ``"params": null`` stands for the plugin class itself.
  ``class``, ``distribution``, ``version`` and ``entry_point`` say where the
  plugin came from when the file was written; they are never imported.

Loading reads JSON and safetensors only: it runs no pickle and no
``torch.load``, imports nothing named in the file, and instantiates only
skvae's own estimator classes and registered plugins. It is bounded in
memory: each member's declared size, each safetensors header (against the
tensors ``model.json`` lists, which are compared with the network its
parameters build on the meta device) and the decoded size of ``model.json``
are checked before anything is read or allocated; see :func:`load`. The
parameters that name a place to write (``checkpoint_path``) are never taken
from a file.
"""

import contextlib
import hashlib
import importlib.metadata
import json
import math
import os
import re
import stat
import tempfile
import time
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from . import _device, _optimizers, _state, _table
from ._registry import DISABLE_ENV, PluginConflictError, PluginError, get_registry
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

# The estimator classes a file may name: a whitelist, never getattr. Each
# estimator module registers its classes (register_estimator) when imported;
# skvae/__init__.py imports them before handing out load and save.
_ESTIMATORS = {}
# Fitted attributes that only some registered classes have (name -> classes).
_EXTRA_FITTED = {}


def register_estimator(cls, extra_fitted=()):
    """Let model files name ``cls``: :func:`save` writes it and :func:`load` builds it.

    Parameters
    ----------
    cls : type
        An skvae estimator class, looked up by its ``__name__`` when a file
        is read (a whitelist: a file never names code to import).
    extra_fitted : tuple of str, default=()
        Fitted attributes that this class has beyond those of
        :class:`~skvae.VAETransformer` (such as ``classes_``): a file of
        this class must set them, and a file of another class must not.

    Examples
    --------
    >>> import skvae
    >>> _ESTIMATORS["VAETransformer"] is skvae.VAETransformer
    True
    """
    _ESTIMATORS[cls.__name__] = cls
    for name in extra_fitted:
        _EXTRA_FITTED.setdefault(name, set()).add(cls)
# Fitted state stored apart from the JSON attributes (tensors, or rebuilt).
_RUNTIME_ATTRIBUTES = ("module_", "optimizer_", "_generator", "_device")
_PLUGIN_KINDS = ("architecture", "likelihood", "prior")
_ARRAY_KINDS = "biufU"  # bool, int, uint, float, str; plus object arrays of scalars
_JSON_SCALARS = (str, bool, int, float, type(None))
_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member dates: the same model gives the same bytes
# model.json holds no tensors; a larger one is a decompression bomb, not a model.
_MAX_JSON_BYTES = 64 * 2**20
# ... and its decoded size is bounded too: an estimate of the Python objects
# json.loads builds (bytes per object, list, and element or key), counted on
# the raw bytes before parsing. 64 MiB of "[]," would otherwise take 2 GB.
_JSON_OBJECT_COST, _JSON_LIST_COST, _JSON_ITEM_COST = 200, 64, 32
_MAX_JSON_COST = 256 * 2**20
# A numpy array in model.json (feature names, classes, class counts).
_MAX_ARRAY_BYTES = 32 * 2**20
_MAX_ARRAY_NDIM = 32
# The safetensors header: JSON of about 100 bytes per tensor.
_MAX_HEADER_BASE, _MAX_HEADER_PER_TENSOR = 64 * 2**10, 1024
# A compressed tensor member may inflate this much (skvae stores them
# uncompressed; float weights hardly compress): a zip bomb does not load.
_MAX_INFLATION = 8
# training.safetensors: the optimizer keeps at most this many tensors the
# size of the weights (Adam: 2, RMSprop centered with momentum: 3), plus
# small ones (step counts, the generator's state).
_OPTIMIZER_COPIES, _TRAINING_SLACK = 4, 2**20
_MAX_GENERATOR_BYTES = 2**20
# safetensors dtype codes and the torch dtypes they hold.
_ST_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
    "BOOL": "bool", "U64": "uint64", "U32": "uint32", "U16": "uint16", "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}  # fmt: skip
_TORCH_DTYPES = {name: getattr(torch, name) for name in _ST_DTYPES.values() if hasattr(torch, name)}
# Parameters that name a place to write: never taken from a file.
_PATH_PARAMS = ("checkpoint_path",)
# The fitted attributes fit sets, and the private ones a file may hold.
_PRIVATE_FITTED = ("_seed", "_sklearn_output_config")
_OUTPUT_CONFIG_VALUES = ("default", "pandas", "polars")


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
    """Write the file of :func:`save` (and, with ``checkpoint``, of :func:`save_checkpoint`)."""
    st = _safetensors()
    _check_class(type(estimator))
    check_is_fitted(estimator)
    weights = _cpu_tensors(estimator.module_.state_dict())
    model = _model_record(estimator, weights, checkpoint is not None)
    members = {WEIGHTS: st.save(weights, metadata={"format": "pt"})}
    if include_optimizer:
        model["optimizer"], training = _encode_training_state(estimator)
        members[TRAINING] = st.save(training, metadata={"format": "pt"})
    if checkpoint is not None:
        model["checkpoint"] = {k: _encode(v, f"checkpoint {k}") for k, v in checkpoint.items()}
        if checkpoint_tensors:
            tensors = _cpu_tensors(checkpoint_tensors)
            members[CHECKPOINT] = st.save(tensors, metadata={"format": "pt"})
    model["files"].update((name, _file_record(data)) for name, data in members.items())

    text = json.dumps(model, indent=1, allow_nan=False, ensure_ascii=False)
    path = Path(os.fspath(path))
    _write_zip(path, {MODEL_JSON: text.encode("utf-8"), **members})
    return path


def _model_record(estimator, weights, is_checkpoint):
    """The content of ``model.json`` but the tensor members' digests (``files``)."""
    params = encode_params(estimator)
    fitted = {
        name: _encode(value, f"fitted attribute {name}")
        for name, value in vars(estimator).items()
        if name not in params and name not in _RUNTIME_ATTRIBUTES
    }
    module = estimator.module_
    version = CHECKPOINT_FORMAT_VERSION if is_checkpoint else FORMAT_VERSION
    return {
        "format": FORMAT_NAME,
        "format_version": f"{version[0]}.{version[1]}",
        "skvae_version": _skvae_version(),
        "torch_version": torch.__version__,
        "estimator": type(estimator).__name__,
        "params": params,
        "fitted": fitted,
        "device": str(estimator._device),
        "module": {
            "class": type(module).__name__,
            "n_components": int(module.n_components),
            "config": _encode(dict(getattr(module, "config", {})), "module config"),
            "tensors": {
                key: {"dtype": _dtype_name(t.dtype), "shape": list(t.shape)}
                for key, t in weights.items()
            },
        },
        "optimizer": None,
        "files": {},
    }


def _cpu_tensors(tensors):
    """Contiguous CPU copies of a dict's tensors, as safetensors writes them."""
    return {key: _cpu_tensor(t) for key, t in tensors.items()}


def _cpu_tensor(tensor):
    return tensor.detach().to("cpu", copy=True).contiguous()


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
    """Write the model archive of ``members`` (name -> bytes) at ``path``, atomically."""
    def write(f):
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

    write_atomically(path, write)


def write_atomically(path, write):
    """Write a file at ``path`` by ``write(f)`` on a binary file object, atomically.

    Written next to the destination, then renamed: no half-written file.
    The data reach the disk (fsync) before the rename, and the rename
    before we return (fsync of the folder): after a crash or a power cut
    the path holds the old file or the new one, whole. Temporary files
    that killed writers of the same path left behind are removed.
    """
    fd, tmp, lock = _locked_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            _give_new_file_mode(f.fileno(), path)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        if lock is not None:
            os.close(lock)
    _fsync_folder(path.parent)
    _remove_stale_temp_files(path)


def _give_new_file_mode(fd, path):
    """Give the temporary file the mode that ``open(path, "w")`` would.

    ``mkstemp`` creates it readable by its owner only; the file we replace
    keeps its mode, and a new one gets ``0o666`` less the umask, so that a
    saved model or Hub folder can be shared like any other file.
    """
    if not hasattr(os, "fchmod"):  # Windows: no POSIX modes
        return
    try:
        old = os.lstat(path)
    except OSError:
        old = None
    if old is not None and stat.S_ISREG(old.st_mode):
        mode = stat.S_IMODE(old.st_mode)
    else:
        mode = 0o666 & ~_current_umask()
    os.fchmod(fd, mode)


def _current_umask():
    """The process's umask, read without changing it where the system allows.

    Linux (4.7 and newer) shows it in /proc/self/status. Elsewhere it is set
    and set back, which another thread creating a file in between would see.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)  # the strictest while it is out: nothing is created open
    os.umask(umask)
    return umask


# A temporary file of _write_zip: "." + the target's name + mkstemp's 8
# random characters + ".tmp".
_TEMP_NAME = r"\.{name}\.[a-z0-9_]{{8}}\.tmp"
# Without advisory locks (Windows), only temporary files this old are taken
# for leftovers of a killed writer.
_STALE_UNLOCKED_SECONDS = 3600
# A temporary file this young may have been created by another writer that
# has not locked it yet.
_STALE_MIN_SECONDS = 2


def _locked_temp_file(path):
    """Create the temporary file of a write of ``path``, locked; return (fd, name, lock fd).

    The lock (an exclusive advisory ``flock``, held until the file is
    renamed) tells another writer's clean-up (:func:`_remove_stale_temp_files`)
    that the file is in use. A clean-up can take the file between its
    creation and its locking: then it is gone (no link left) once the lock
    is ours, and another one is made. Without ``fcntl`` (Windows), no lock.
    """
    try:
        import fcntl
    except ImportError:
        fcntl = None
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or "."
        )
        if fcntl is None:
            return fd, tmp, None
        lock = os.dup(fd)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # waits while a clean-up looks at it
            if os.fstat(fd).st_nlink > 0:
                return fd, tmp, lock
        except BaseException:
            os.close(lock)
            os.close(fd)
            raise
        os.close(lock)
        os.close(fd)
    raise OSError(f"cannot create a temporary file next to {path} that stays in place")


def _remove_stale_temp_files(path):
    """Remove the temporary files that killed writers of ``path`` left in its folder.

    Only regular files named as :func:`_write_zip` names the temporary
    files of this very target, that no live writer holds (advisory lock;
    without locks, older than an hour), are removed. Failures are ignored:
    this is housekeeping after a successful write.
    """
    folder = path.parent or Path(".")
    pattern = re.compile(_TEMP_NAME.format(name=re.escape(path.name)))
    try:
        names = [n for n in os.listdir(folder) if pattern.fullmatch(n)]
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            _remove_if_stale(folder / name)


def _remove_if_stale(candidate):
    try:
        import fcntl
    except ImportError:
        fcntl = None
    info = os.lstat(candidate)
    age = time.time() - info.st_mtime
    if not stat.S_ISREG(info.st_mode) or age < _STALE_MIN_SECONDS:
        return
    if fcntl is None:
        if age >= _STALE_UNLOCKED_SECONDS:
            os.unlink(candidate)
        return
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(candidate, flags)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: a live writer holds it
        same = os.fstat(fd)
        now = os.lstat(candidate)
        if stat.S_ISREG(same.st_mode) and (same.st_dev, same.st_ino) == (now.st_dev, now.st_ino):
            os.unlink(candidate)
    finally:
        os.close(fd)


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
    name = _optimizers.optimizer_name(optimizer)
    if name is None:
        raise ValueError(
            f"optimizer_ is a {type(optimizer).__name__}, not one of skvae's optimizers "
            f"({sorted(_optimizers.OPTIMIZERS)}); save with include_optimizer=False."
        )
    sd = optimizer.state_dict()
    tensors, state = {}, {}
    for index, entry in sd["state"].items():
        encoded = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensor_key = f"optimizer.{index}.{key}"
                tensors[tensor_key] = _cpu_tensor(value)
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
    if isinstance(value, _table.TableSchema):
        return {"type": "table", "value": value.to_dict()}
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
        The ``"checkpoint"`` entry: str keys, JSON-representable values,
        with at least ``epoch`` (int, the estimator's ``n_iter_``),
        ``stop_epoch`` (int), ``finished`` (bool), ``lr_scale`` (float > 0)
        and ``halvings`` (int); see :data:`_CHECKPOINT_STATE` for the
        optional keys and their types.
    tensors : dict of str to Tensor, default=None
        Extra tensors of the fit's state (such as early stopping's best
        weights).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ValueError
        If ``state`` lacks a key a resumed fit reads, or holds one of the
        wrong type.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skvae
    >>> X = load_digits().data[:100] / 16
    >>> vae = skvae.VAETransformer(max_iter=1, random_state=0).fit(X)
    >>> state = {"epoch": 1, "stop_epoch": 1, "finished": True, "lr_scale": 1.0, "halvings": 0}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(vae, os.path.join(tmp, "ckpt.skvae"), state)
    ...     checkpoint = read_checkpoint(path, "cpu")
    >>> checkpoint.state["epoch"], checkpoint.estimator.n_iter_
    (1, 1)
    """
    problem = _checkpoint_state_problem(state, estimator.n_iter_, tensors or {}, estimator)
    if problem is not None:
        raise ValueError(f"Cannot write the checkpoint {path}: its state {problem}.")
    return _save(
        estimator, path, include_optimizer=True, checkpoint=state, checkpoint_tensors=tensors
    )


def _is_real(value):
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


# The "checkpoint" entry: key -> (required, check, what it must be). A
# resumed fit reads each of these (_estimator._Resumed).
_CHECKPOINT_STATE = {
    "epoch": (True, lambda v: _is_int(v, 0), "an int >= 0"),
    "stop_epoch": (True, lambda v: _is_int(v, 0), "an int >= 0"),
    "finished": (True, lambda v: isinstance(v, bool), "a bool"),
    "lr_scale": (True, lambda v: _is_real(v) and 0 < v < math.inf, "a finite float > 0"),
    "halvings": (True, lambda v: _is_int(v, 0), "an int >= 0"),
    "stopper_best": (False, lambda v: v is None or (_is_real(v) and v == v), "a float or None"),
    "stopper_bad_epochs": (False, lambda v: v is None or _is_int(v, 0), "an int >= 0 or None"),
    "stopper_best_state": (False, lambda v: isinstance(v, bool), "a bool"),
    "data_sha256": (False, lambda v: v is None or isinstance(v, str), "a str or None"),
    "generator_device_type": (False, lambda v: v is None or isinstance(v, str), "a str or None"),
}


def _checkpoint_state_problem(state, n_iter, tensors, estimator):
    """What is wrong with a checkpoint's state (a phrase), or None."""
    if not isinstance(state, dict):
        return f"is a {type(state).__name__}, not a dict"
    for key, (required, check, expected) in _CHECKPOINT_STATE.items():
        if key not in state:
            if required:
                return f"lacks {key!r} ({expected})"
            continue
        if not check(state[key]):
            return f"has {key}={_short_repr(state[key])}, which is not {expected}"
    if state["epoch"] != n_iter or state["epoch"] > state["stop_epoch"]:
        return (
            f"has epoch={state['epoch']} and stop_epoch={state['stop_epoch']}, for an "
            f"estimator with n_iter_={n_iter}"
        )
    if state.get("stopper_best") is not None and state.get("stopper_bad_epochs") is None:
        return "has stopper_best without stopper_bad_epochs"
    if state.get("stopper_best_state"):
        weights = {f"best.{k}" for k in estimator.module_.state_dict()}
        if set(tensors) != weights:
            return "says it keeps the best epoch's weights, but not all of them are stored"
    return None


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
        If the file is not a model file (or is damaged), is a model file
        without a checkpoint entry (saved by :func:`save`), or its
        checkpoint entry lacks a key a resumed fit reads (``stop_epoch``,
        ``finished``, ...) or holds one of the wrong type.

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
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: the checkpoint entry is malformed ({exc}).") from None
    generator = model["optimizer"].get("generator", {})
    state.setdefault("generator_device_type", generator.get("device_type"))
    problem = _checkpoint_state_problem(state, estimator.n_iter_, tensors, estimator)
    if problem is not None:
        raise ModelFileError(
            f"{path}: the checkpoint entry of model.json {problem}: the file was modified "
            "or was not written by a fit."
        )
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

    Loading is bounded in memory whatever the file holds: sizes are checked
    before anything is read or allocated (``model.json`` at most 64 MiB and
    about 256 MiB once decoded; each safetensors header against the tensors
    ``model.json`` lists, and each member's size against its header), and
    every fitted attribute is checked for its type. A file does not choose
    where this process writes: a path-valued parameter in it
    (``checkpoint_path``) is set to None, with a UserWarning.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save` (a regular file: a folder, a FIFO or
        a device is refused).
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
        provided it); if it is not a regular file, repeats a member name,
        declares more data than the network it describes can have (or more
        than the file holds, or a compressed tensor member: a decompression
        bomb), holds a fitted attribute of the wrong type or a value out of
        its dtype's range, or weights or optimizer state that are not
        finite. A subclass of ValueError.

    Warns
    -----
    UserWarning
        When the file sets ``checkpoint_path``, which is dropped (set to
        None): set it yourself to write checkpoints.

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
    """Return the estimator, model.json and (with ``checkpoint``) the checkpoint tensors.

    What a member's size depends on is checked before the member is read:
    the path is a regular file; ``model.json`` is bounded in bytes and in
    decoded size; the parameters and fitted attributes are decoded and
    checked; each safetensors header is compared with the tensors that
    ``model.json`` lists, and those with the network its parameters build
    (on the meta device); only then are the tensors read, each bounded by
    the size so found.
    """
    _safetensors()
    device = _device.resolve(device)
    path = Path(os.fspath(path))
    with _open_archive(path) as (archive, size):
        model = _read_model_json(archive, path)
        files = model.get("files")
        if not isinstance(files, dict):
            raise ModelFileError(f"{path}: model.json lists no file digests.")
        with _malformed(path, model):
            estimator = _decode_estimator(
                _ESTIMATORS[model["estimator"]], model, path, warn_paths=not checkpoint
            )
            listing = _tensor_listing(model)
        wanted = _check_tensor_members(archive, path, model, listing, size, checkpoint)
        with _malformed(path, model):
            _check_meta_module(estimator, model, listing)
        members = _read_tensor_members(archive, path, files, wanted)
    with _malformed(path, model):
        tensors = _parse_tensor_members(members)
        estimator = _attach_module(
            estimator, model, tensors[WEIGHTS], tensors.get(TRAINING), device
        )
        return estimator, model, tensors.get(CHECKPOINT, {})


def _parse_tensor_members(members):
    """Parse the tensor members read (name -> bytes); refuse NaN or infinite values."""
    tensors = {name: _parse_safetensors(data, name) for name, data in members.items()}
    for name, parsed in tensors.items():
        _check_finite(parsed, name)
    return tensors


@contextlib.contextmanager
def _malformed(path, model):
    """Turn what a malformed ``model.json`` raises into a ModelFileError naming the file."""
    try:
        yield
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        AttributeError,
        RuntimeError,  # RecursionError too
        OverflowError,
    ) as exc:
        raise ModelFileError(
            f"{path} could not be loaded: model.json is malformed or does not fit this "
            f"skvae ({type(exc).__name__}: {exc}). It was written by skvae "
            f"{model.get('skvae_version')!r}."
        ) from None


@contextlib.contextmanager
def _open_archive(path):
    """Yield the zip archive of a model file and the file's size.

    Only a regular file is opened (a folder, a device such as /dev/zero, a
    FIFO or a socket is refused before anything is read: none can be a model
    file, and reading some never ends), and an archive whose member names
    repeat is refused (zip readers disagree on which copy they read).
    """
    _check_regular(path, os.stat(path).st_mode)
    # O_NONBLOCK: should the path become a FIFO after the check, opening it
    # does not wait for a writer (and fstat refuses it).
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        _check_regular(path, info.st_mode)
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with file:
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise ModelFileError(
                f"{path} is not a .skvae model file (not a zip archive, or truncated): {exc}"
            ) from None
        with archive:
            names = archive.namelist()
            if len(set(names)) < len(names):
                repeated = sorted(n for n, count in Counter(names).items() if count > 1)
                raise ModelFileError(
                    f"{path} holds several members named {', '.join(map(repr, repeated))}: "
                    "skvae writes each member once, and which copy a zip reader takes "
                    "differs between readers. The file was modified; refused."
                )
            yield archive, info.st_size


def _check_regular(path, mode):
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        kind = "a folder"
    elif stat.S_ISFIFO(mode):
        kind = "a FIFO (named pipe)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "not a regular file"
    raise ModelFileError(
        f"{path} is {kind}, not a .skvae model file: skvae.load reads regular files only "
        "(such as those skvae.save writes)."
    )


def _member_info(archive, path, name):
    """The zip record of member ``name``, or a ModelFileError when there is none."""
    try:
        return archive.getinfo(name)
    except KeyError:
        raise ModelFileError(
            f"{path} is missing {name}: it is not a complete .skvae model file "
            f"(members: {sorted(archive.namelist())})."
        ) from None


def _read_member(archive, path, name, limit, chunk=None):
    """Read a member, refusing one that claims or holds more than ``limit`` bytes.

    With ``chunk``, read it that many bytes at a time into a bytearray: a
    compressed member then takes its size in memory, not twice it.
    """
    info = _member_info(archive, path, name)
    if info.file_size > limit:
        raise ModelFileError(
            f"{path}: {name} claims {info.file_size} bytes, more than the {limit} it can "
            "hold; refused."
        )
    try:
        with archive.open(info) as member:
            # Never trust file_size: read with a cap.
            if chunk is None:
                data = member.read(limit + 1)
            else:
                data = bytearray()
                while len(data) <= limit and (part := member.read(chunk)):
                    data += part
    except Exception as exc:  # BadZipFile (bad CRC), EOFError, zlib.error, ...
        raise ModelFileError(
            f"{path}: {name} cannot be read; the file is truncated or damaged "
            f"({type(exc).__name__}: {exc})."
        ) from None
    if len(data) > limit:
        raise ModelFileError(
            f"{path}: {name} holds more than the {limit} bytes it can hold; refused."
        )
    return data


def _read_model_json(archive, path):
    data = _read_member(archive, path, MODEL_JSON, _MAX_JSON_BYTES, chunk=2**20)
    # What json.loads would build, estimated before it builds it (brackets
    # and separators inside strings count too: an overestimate).
    cost = (
        len(data)
        + _JSON_OBJECT_COST * data.count(b"{")
        + _JSON_LIST_COST * data.count(b"[")
        + _JSON_ITEM_COST * (data.count(b",") + data.count(b":"))
    )
    if cost > _MAX_JSON_COST:
        raise ModelFileError(
            f"{path}: model.json holds {data.count(b'{') + data.count(b'[')} JSON objects and "
            f"lists and {data.count(b',')} elements, which would take about "
            f"{cost // 2**20} MiB to decode, more than the {_MAX_JSON_COST // 2**20} MiB a "
            "model description can need; refused."
        )
    return _parse_model_json(path, data)


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


# -------------------------------------------------------- tensor members
def _tensor_listing(model):
    """The module's tensors as ``model.json`` lists them: ``{key: (dtype, shape)}``."""
    listed = _expect(model["module"].get("tensors", {}), dict, "module tensors")
    listing = {}
    for key, record in listed.items():
        record = _expect(record, dict, f"module tensor {key!r}")
        dtype = record["dtype"]
        if not isinstance(dtype, str) or dtype not in _TORCH_DTYPES:
            raise ValueError(f"module tensor {key!r}: dtype {dtype!r} is not one a model holds")
        listing[key] = (dtype, _check_shape(record["shape"], f"module tensor {key!r}"))
    return listing


def _check_shape(shape, where):
    shape = _expect(shape, list, where)
    if len(shape) > _MAX_ARRAY_NDIM or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63 for s in shape
    ):
        raise ValueError(f"{where}: bad shape {_short_repr(shape)}")
    return shape


def _nbytes(dtype, shape):
    return math.prod(shape) * _TORCH_DTYPES[dtype].itemsize


def _check_tensor_members(archive, path, model, listing, size, checkpoint):
    """Check the tensor members' zip records and safetensors headers before reading them.

    Returns the names of the members to read. Each header must describe
    what ``model.json`` lists (the weights exactly; the optimizer's state
    and the early-stopping weights bounded by the weights' size), and each
    member must be as long as its header says, stored whole in the file.
    """
    weights_bytes = sum(_nbytes(*spec) for spec in listing.values())
    n_tensors = len(listing)
    header = _tensor_header(archive, path, WEIGHTS, size, weights_bytes, n_tensors)
    if header != listing:
        difference = _first_difference(listing, header, "model.json", "the weights")
        raise ModelFileError(
            f"{path}: the tensors listed in model.json differ from those in "
            f"weights.safetensors ({difference}): the file was modified."
        )
    wanted = [WEIGHTS]
    record = model.get("optimizer")
    if record is not None:
        budget = _OPTIMIZER_COPIES * weights_bytes + _TRAINING_SLACK
        max_tensors = (_OPTIMIZER_COPIES + 1) * n_tensors + 1
        header = _tensor_header(archive, path, TRAINING, size, budget, max_tensors)
        _check_training_header(header, record, path)
        wanted.append(TRAINING)
    if checkpoint and CHECKPOINT in model["files"]:
        header = _tensor_header(archive, path, CHECKPOINT, size, weights_bytes, n_tensors)
        _check_checkpoint_header(header, listing, path)
        wanted.append(CHECKPOINT)
    return wanted


def _check_training_header(header, record, path):
    """training.safetensors holds the optimizer's state tensors and the generator's bytes."""
    generator = record.get("generator") if isinstance(record, dict) else None
    generator_key = generator.get("key") if isinstance(generator, dict) else None
    for key, (dtype, shape) in header.items():
        if key == generator_key:
            if dtype != "uint8" or len(shape) != 1 or shape[0] > _MAX_GENERATOR_BYTES:
                raise ModelFileError(
                    f"{path}: training.safetensors holds a generator state of {dtype} "
                    f"{tuple(shape)}, not a byte string: the file was modified."
                )
        elif not re.fullmatch(r"optimizer\.\d{1,9}\.[A-Za-z_]\w{0,63}", key):
            raise ModelFileError(
                f"{path}: training.safetensors holds a tensor {key!r} that is neither the "
                "optimizer's state nor the generator's: the file was modified."
            )


def _check_checkpoint_header(header, listing, path):
    """checkpoint.safetensors holds copies of listed weights, under ``best.<key>``."""
    for key, spec in header.items():
        if not key.startswith("best.") or listing.get(key[len("best."):]) != spec:
            raise ModelFileError(
                f"{path}: checkpoint.safetensors holds a tensor {key!r} of {spec[0]} "
                f"{tuple(spec[1])} that is not the best epoch's copy of a weight listed in "
                "model.json: the file was modified."
            )


def _tensor_header(archive, path, name, size, budget, n_tensors):
    """Return ``{key: (dtype, shape)}`` from a safetensors member's header, reading nothing else.

    Refuses a member that is compressed more than a model's tensors can
    be, that claims bytes beyond the end of the file, whose header is larger
    than ``n_tensors`` entries need, whose tensors hold more than ``budget``
    bytes, or whose length differs from what its header describes.
    """
    info = _member_info(archive, path, name)
    _check_member_extent(info, path, name, size)
    raw = _read_header_bytes(archive, info, path, name, n_tensors)
    try:
        entries = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        tensors, data_bytes = _header_tensors(entries)
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise _invalid_safetensors(path, name, f"bad header ({exc})") from None
    if data_bytes > budget:
        raise ModelFileError(
            f"{path}: {name} declares {data_bytes} bytes of tensors, more than the "
            f"{budget} that the network described in model.json can have; refused."
        )
    if info.file_size != 8 + len(raw) + data_bytes:
        raise _invalid_safetensors(
            path,
            name,
            f"the member has {info.file_size} bytes but its header describes "
            f"{8 + len(raw) + data_bytes}",
        )
    return tensors


def _check_member_extent(info, path, name, size):
    """A tensor member is stored whole (hardly compressed) within the file's ``size`` bytes."""
    if info.compress_type == zipfile.ZIP_STORED:
        inflated = info.compress_size != info.file_size
    else:
        inflated = info.file_size > _MAX_INFLATION * info.compress_size + 2**16
    if inflated:
        raise ModelFileError(
            f"{path}: {name} is {info.compress_size} bytes in the file but inflates to "
            f"{info.file_size}: tensors hardly compress (skvae stores them uncompressed), "
            "so this is a decompression bomb or a modified file; refused."
        )
    if info.header_offset + info.compress_size > size:
        raise ModelFileError(
            f"{path}: {name} claims {info.compress_size} bytes from offset "
            f"{info.header_offset}, beyond the end of the {size}-byte file: the file is "
            "truncated or was modified; refused."
        )


def _read_header_bytes(archive, info, path, name, n_tensors):
    """The JSON header of a safetensors member: its 8-byte length, then that many bytes.

    A length beyond what ``n_tensors`` entries need (or beyond the member)
    is refused before anything more is read.
    """
    max_header = _MAX_HEADER_BASE + _MAX_HEADER_PER_TENSOR * n_tensors
    try:
        with archive.open(info) as member:
            head = member.read(8)
            if len(head) < 8:
                raise _invalid_safetensors(path, name, "shorter than its 8-byte header length")
            length = int.from_bytes(head, "little")
            if length > min(max_header, info.file_size - 8):
                raise _invalid_safetensors(
                    path,
                    name,
                    f"its header claims {length} bytes (the member has {info.file_size}; "
                    f"{n_tensors} tensors need at most {max_header})",
                )
            raw = member.read(length)
    except ModelFileError:
        raise
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, ...
        raise ModelFileError(
            f"{path}: {name} cannot be read; the file is truncated or damaged "
            f"({type(exc).__name__}: {exc})."
        ) from None
    if len(raw) != length:
        raise _invalid_safetensors(path, name, f"its {length}-byte header is cut short")
    return raw


def _invalid_safetensors(path, name, problem):
    return ModelFileError(
        f"{path}: {name} is not a valid safetensors file (truncated or damaged): {problem}"
    )


def _header_tensors(entries):
    """Validate the JSON of a safetensors header; return its tensors and their total bytes."""
    _expect(entries, dict, "header")
    metadata = entries.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise ValueError("__metadata__ is not a map of strings")
    tensors, spans = {}, []
    for key, entry in entries.items():
        where = f"tensor {key!r}"
        entry = _expect(entry, dict, where)
        code = entry["dtype"]
        if code not in _ST_DTYPES or _ST_DTYPES[code] not in _TORCH_DTYPES:
            raise ValueError(f"{where}: unknown dtype {code!r}")
        dtype = _ST_DTYPES[code]
        shape = _check_shape(entry["shape"], where)
        offsets = _expect(entry["data_offsets"], list, where)
        if len(offsets) != 2 or not all(
            isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets
        ):
            raise ValueError(f"{where}: bad data_offsets {_short_repr(offsets)}")
        if offsets[1] - offsets[0] != _nbytes(dtype, shape):
            raise ValueError(f"{where}: data_offsets {offsets} do not fit {dtype} {tuple(shape)}")
        tensors[key] = (dtype, shape)
        spans.append(tuple(offsets))
    end = 0
    for begin, stop in sorted(spans):
        if begin != end:
            raise ValueError("the tensors' data do not follow each other")
        end = stop
    return tensors, end


def _read_tensor_members(archive, path, files, wanted):
    """Read the checked tensor members (each at most as long as checked) and their digests."""
    members = {}
    for name in wanted:
        data = _read_member(archive, path, name, archive.getinfo(name).file_size)
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


def _parse_safetensors(data, name):
    try:
        return _safetensors().load(data)
    except Exception as exc:  # SafetensorError and friends: a bad header or body
        raise ModelFileError(
            f"{name} is not a valid safetensors file (truncated or damaged): "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _check_finite(tensors, name):
    """Refuse NaN or infinite values: a fit never returns (or saves) such a model."""
    for key, tensor in tensors.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(
            torch.isfinite(tensor).all()
        ):
            raise ModelFileError(
                f"{name} holds NaN or infinite values (tensor {key!r}); a fit never saves "
                "such a model, so the file is damaged or was modified. Refused."
            )


# ------------------------------------------------------------- estimator
def _decode_estimator(cls, model, path, *, warn_paths):
    """Build the estimator with its parameters and checked fitted attributes (no module yet)."""
    params = _expect(model["params"], dict, "params")
    decoded = {name: _decode(value, f"parameter {name}") for name, value in params.items()}
    known = set(cls().get_params(deep=False))
    unknown = sorted(set(decoded) - known)
    if unknown:
        raise ModelFileError(
            f"The file sets parameters {unknown} that {cls.__name__} of this skvae "
            f"({_skvae_version()}) does not have; it was written by skvae "
            f"{model.get('skvae_version')!r}. Upgrade skvae to load it."
        )
    _drop_path_params(decoded, path, warn=warn_paths)
    estimator = cls(**decoded)
    try:
        estimator._validate_params()
    except ValueError as exc:
        raise ModelFileError(f"model.json holds an invalid parameter: {exc}") from None

    fitted = _expect(model["fitted"], dict, "fitted")
    for name, value in fitted.items():
        _check_attribute_name(cls, name, known)
        value = _decode(value, f"fitted attribute {name}")
        _check_fitted_value(cls, name, value)
        setattr(estimator, name, value)
    for name in ("architecture_", "likelihood_", "prior_"):
        kind = name[:-1]
        plugin = getattr(estimator, name, None)
        if not isinstance(plugin, Plugin) or plugin.kind != kind:
            raise ModelFileError(f"model.json has no fitted {kind} plugin ({name}).")
    required = ["n_features_in_", "n_iter_", "history_", "_seed"]
    required += [name for name, owners in _EXTRA_FITTED.items() if cls in owners]
    missing = [name for name in required if name not in fitted]
    if missing:
        raise ModelFileError(
            f"model.json lacks the fitted attributes {missing} that every fitted "
            f"{cls.__name__} has: the file was modified or is not an skvae model."
        )
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and len(names) != estimator.n_features_in_:
        raise ModelFileError(
            f"model.json: feature_names_in_ has {len(names)} names but n_features_in_ is "
            f"{estimator.n_features_in_}: the file was modified."
        )
    _check_feature_indices(estimator)
    _check_table_schema(estimator)
    return estimator


def _check_table_schema(estimator):
    """Refuse a table schema that does not describe the model's features and likelihood."""
    schema = getattr(estimator, "table_schema_", None)
    if schema is None:
        return
    n = estimator.n_features_in_
    if len(schema) != n:
        raise ModelFileError(
            f"model.json: table_schema_ has {len(schema)} columns but n_features_in_ is "
            f"{n}: the file was modified."
        )
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and [str(name) for name in schema.names] != list(names):
        raise ModelFileError(
            "model.json: the columns of table_schema_ are not those of feature_names_in_: "
            "the file was modified."
        )
    try:
        schema.check_likelihood(estimator.likelihood_)
    except ValueError as exc:
        raise ModelFileError(f"model.json: {exc}: the file was modified.") from None


def _check_feature_indices(estimator):
    """Refuse per-feature attributes that do not fit ``n_features_in_`` (an imputer's)."""
    n = estimator.n_features_in_
    empty = getattr(estimator, "empty_features_", None)
    if empty is not None and len(empty) != n:
        raise ModelFileError(
            f"model.json: empty_features_ has {len(empty)} entries but n_features_in_ is "
            f"{n}: the file was modified."
        )
    indices = getattr(estimator, "missing_features_", None)
    if indices is not None and len(indices) and int(indices.max()) >= n:
        raise ModelFileError(
            f"model.json: missing_features_ names feature {int(indices.max())} but "
            f"n_features_in_ is {n}: the file was modified."
        )


def _drop_path_params(params, path, *, warn):
    """Set the parameters that name a place to write to None: a file does not choose them.

    A model file from elsewhere must not decide where this process writes
    (``checkpoint_path`` with ``warm_start=True`` would make the next
    ``fit`` write there). ``warn`` is off when reading a checkpoint to
    resume from, whose path is the user's own ``checkpoint_path``.
    """
    for name in _PATH_PARAMS:
        value = params.get(name)
        if value is None:
            continue
        params[name] = None
        if warn:
            warnings.warn(
                f"{path} sets {name}={value!r}; a model file does not choose where this "
                f"process writes, so the loaded estimator has {name}=None. Set it yourself "
                f"(estimator.set_params({name}=...)) to write checkpoints.",
                UserWarning,
                stacklevel=5,
            )


def _check_attribute_name(cls, name, params):
    """Fitted attribute names: `x_` or `_x`, never a parameter, dunder or class attribute."""
    ok = (
        isinstance(name, str)
        and name.isidentifier()
        and (name in _PRIVATE_FITTED or (name.endswith("_") and not name.startswith("_")))
        and name not in params
        and name not in _RUNTIME_ATTRIBUTES
        and not hasattr(cls, name)
    )
    if not ok:
        private = isinstance(name, str) and name.startswith("_") and not name.startswith("__")
        allowed = f" (the private ones a file may set: {', '.join(_PRIVATE_FITTED)})"
        raise ModelFileError(
            f"model.json sets the fitted attribute {name!r}, which a {cls.__name__} "
            f"cannot have{allowed if private else ''}: the file was modified or is not "
            "an skvae model."
        )


def _is_int(value, low, high=None):
    return (
        isinstance(value, Integral)
        and not isinstance(value, (bool, np.bool_))
        and value >= low
        and (high is None or value < high)
    )


def _is_history(value):
    def field(v):
        if isinstance(v, (list, tuple)):
            return all(isinstance(i, (str, Real)) for i in v)
        return v is None or isinstance(v, (str, Real, np.bool_))

    return isinstance(value, list) and all(
        isinstance(record, dict)
        and all(isinstance(k, str) and field(v) for k, v in record.items())
        for record in value
    )


def _is_1d(value, kinds):
    return isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in kinds


def _is_names(value):
    return _is_1d(value, "OU") and all(isinstance(v, str) for v in value.tolist())


def _is_counts(value):
    return _is_1d(value, "f") and bool(np.isfinite(value).all() and (value >= 0).all())


def _is_output_config(value):
    return isinstance(value, dict) and all(
        k == "transform" and v in _OUTPUT_CONFIG_VALUES for k, v in value.items()
    )


# name: (check, what it must be)
_FITTED_CHECKS = {
    "n_features_in_": (lambda v: _is_int(v, 1, 2**31), "a positive int below 2**31"),
    "n_iter_": (lambda v: _is_int(v, 0), "an int >= 0"),
    "history_": (_is_history, "a list of dicts of numbers and strings (one per epoch)"),
    "feature_names_in_": (_is_names, "a 1-D array of strings"),
    "classes_": (lambda v: _is_1d(v, "biufUO") and len(v) > 0, "a non-empty 1-D array"),
    "class_count_": (_is_counts, "a 1-D float array of finite counts >= 0"),
    "class_prior_": (_is_counts, "a 1-D float array of finite values >= 0"),
    "_seed": (lambda v: _is_int(v, 0, 2**63), "an int in [0, 2**63)"),
    # VAEOutlierDetector
    "offset_": (lambda v: _is_real(v) and math.isfinite(v), "a finite number"),
    # VAEImputer
    "empty_features_": (lambda v: _is_1d(v, "b"), "a 1-D bool array"),
    "missing_features_": (
        lambda v: _is_1d(v, "iu") and bool((v >= 0).all()),
        "a 1-D array of feature indices >= 0",
    ),
    "n_completions_": (
        lambda v: _is_1d(v, "iu") and v.shape == (1,) and int(v[0]) >= 0,
        "an int array of shape (1,), >= 0",
    ),
    # A model fitted on a DataFrame
    "table_schema_": (
        lambda v: isinstance(v, _table.TableSchema),
        "a table schema ({'type': 'table', ...})",
    ),
    "_sklearn_output_config": (
        _is_output_config,
        f"a dict {{'transform': one of {list(_OUTPUT_CONFIG_VALUES)}}} (set_output)",
    ),
    **{
        f"{kind}_": (
            lambda v, kind=kind: isinstance(v, Plugin) and v.kind == kind,
            f"a {kind} plugin",
        )
        for kind in _PLUGIN_KINDS
    },
}


def _check_fitted_value(cls, name, value):
    """Refuse a fitted attribute of the wrong type: it would fail later, deep inside."""
    if name in _EXTRA_FITTED and cls not in _EXTRA_FITTED[name]:
        raise ModelFileError(
            f"model.json sets {name}, which a {cls.__name__} (a model without labels) "
            "does not have: the file was modified."
        )
    check = _FITTED_CHECKS.get(name)
    if check is None:
        return  # a public attribute of a newer skvae: plain data, kept
    ok, expected = check
    if not ok(value):
        raise ModelFileError(
            f"model.json: the fitted attribute {name} is {_short_repr(value)} (of type "
            f"{type(value).__name__}), but must be {expected}: the file was modified or "
            "is not an skvae model."
        )


def _check_meta_module(estimator, model, listing):
    """Build the network model.json describes on the meta device and compare it with the listing.

    Nothing is allocated: a ``model.json`` edited to describe a huge network
    is refused before a tensor is read. Plugins whose build cannot run on
    meta skip this check; the real build is checked again with the weights.
    """
    args, config = _module_args(estimator, model)
    try:
        with torch.device("meta"):
            meta = estimator._make_module(*args, **config)
    except Exception:
        return
    _check_shapes(meta, listing, model)


def _module_args(estimator, model):
    info = model["module"]
    n_components = info["n_components"]
    if not _is_int(n_components, 1):
        raise ModelFileError(f"model.json: module n_components={n_components!r} is invalid.")
    config = _decode(info["config"], "module config")
    if not isinstance(config, dict):
        raise TypeError("module config is not an object")
    args = (
        estimator.architecture_,
        estimator.likelihood_,
        estimator.prior_,
        int(estimator.n_features_in_),
        int(n_components),
        int(estimator._seed),
    )
    return args, config


def _attach_module(estimator, model, weights, training, device):
    """Give the decoded estimator its module (the weights), optimizer and generator.

    The optimizer and generator are rebuilt as unpickling rebuilds them
    (:func:`skvae._state.rebuild`), from the saved state when the file holds
    it, else fresh (a new optimizer, the generator seeded with ``_seed``).
    """
    module = _build_module(estimator, model, weights)
    _check_label_widths(estimator, module)
    record = model.get("optimizer")
    name = record["name"] if record is not None else estimator.optimizer
    if name not in _optimizers.OPTIMIZERS:
        raise ModelFileError(f"model.json names an unknown optimizer {name!r}.")
    saved = {} if record is None else _saved_training_state(record, training, device)
    fitted = _state.rebuild(
        module,
        device,
        optimizer_name=name,
        learning_rate=estimator.learning_rate,
        seed=estimator._seed,
        **saved,
    )
    estimator.module_ = fitted.module
    estimator.optimizer_ = fitted.optimizer
    estimator._generator = fitted.generator
    estimator._device = fitted.device
    return estimator


def _check_label_widths(estimator, module):
    """A model fitted with labels: as many classes as its module and class counts have."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return
    width = getattr(module, "decoder_conditions", None)
    counts = [getattr(estimator, a, None) for a in ("class_count_", "class_prior_")]
    lengths = {len(classes), width} | {len(c) for c in counts if c is not None}
    if len(lengths) != 1:
        raise ModelFileError(
            f"model.json: classes_ has {len(classes)} labels but the model and the class "
            f"counts are for {sorted(lengths - {len(classes)}, key=repr)}: the file was "
            "modified."
        )


def _saved_training_state(record, training, device):
    """The keyword arguments of :func:`skvae._state.rebuild` that restore the saved state.

    The generator's state is read only when it was saved on a device of the
    type loaded to (a CUDA generator's state means nothing to a CPU one);
    then it must be there, as bytes.
    """
    optimizer_state = _decode_optimizer_state(record, training)
    generator = record["generator"]
    device_type = generator["device_type"]
    generator_state = None
    if device_type == device.type:
        generator_state = training.get(generator["key"])
        if generator_state is None or generator_state.dtype != torch.uint8:
            raise ModelFileError("training.safetensors holds no generator state.")
    return {
        "optimizer_state": optimizer_state,
        "generator_state": generator_state,
        "generator_device_type": device_type,
    }


def _build_module(estimator, model, weights):
    info = model["module"]
    file_shapes = {k: (_dtype_name(t.dtype), list(t.shape)) for k, t in weights.items()}
    json_shapes = _tensor_listing(model)
    if json_shapes != file_shapes:
        raise ModelFileError(
            "The tensors listed in model.json differ from those in weights.safetensors "
            f"({_first_difference(json_shapes, file_shapes, 'model.json', 'the weights')}): "
            "the file was modified."
        )
    args, config = _module_args(estimator, model)
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
        return _numpy_scalar(dtype, _decode(value["value"], where), where)
    if tag == "ndarray":
        return _decode_array(value, where)
    if tag == "table":
        try:
            return _table.TableSchema.from_dict(value["value"])
        except ValueError as exc:
            raise ModelFileError(f"model.json: {where}: {exc}: the file was modified.") from None
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


def _fits_dtype(dtype, item):
    """Whether a decoded JSON scalar is a value of ``dtype`` (and in its range)."""
    kind = dtype.kind
    if kind == "b":
        return isinstance(item, bool)
    if kind in "iu":
        if not isinstance(item, int) or isinstance(item, bool):
            return False
        info = np.iinfo(dtype)
        return info.min <= item <= info.max
    if kind == "f":
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            return False
        if isinstance(item, float) and not math.isfinite(item):
            return True
        finite = float(np.finfo(dtype).max)
        return -finite <= item <= finite  # exact for ints of any size
    if kind == "U":
        return isinstance(item, str)
    return isinstance(item, _JSON_SCALARS)  # "O"


def _numpy_scalar(dtype, item, where):
    if not _fits_dtype(dtype, item):
        raise ValueError(
            f"{where}: {_short_repr(item)} is not a {dtype.name} value (wrong type, or "
            "out of its range)"
        )
    return dtype.type(item)


def _decode_array(value, where):
    dtype = _safe_dtype(value["dtype"], where, kinds=_ARRAY_KINDS + "O")
    shape = tuple(_check_shape(value["shape"], where))
    size = math.prod(shape)
    # Checked before anything is allocated: "<U268435456" is 1 GiB a string.
    if size * dtype.itemsize > _MAX_ARRAY_BYTES:
        raise ValueError(
            f"{where}: an array of {size} {dtype} values ({size * dtype.itemsize} bytes) is "
            f"larger than the {_MAX_ARRAY_BYTES} bytes a fitted attribute can need"
        )
    data = _expect(value["data"], list, where)
    if size != len(data):
        raise ValueError(f"{where}: {len(data)} values for shape {list(shape)}")
    data = [_decode(v, where) for v in data]
    for item in data:
        if not _fits_dtype(dtype, item):
            raise ValueError(
                f"{where}: the array holds {_short_repr(item)}, which is not a {dtype} value "
                "(wrong type, or out of its range)"
            )
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
    except PluginConflictError as exc:
        raise ModelFileError(
            f"The model needs the {kind} plugin {name!r} (class {value.get('class')!r}, from "
            f"the distribution {value.get('distribution')!r}), which cannot be used here: {exc}"
        ) from None
    except PluginError as exc:
        raise ModelFileError(_missing_plugin_message(value, kind, name, exc)) from None
    params = value.get("params")
    if params is None:
        return cls
    params = {k: _decode(v, f"{where}__{k}") for k, v in _expect(params, dict, where).items()}
    params = {**getattr(cls, "_defaults_of_older_files", {}), **params}
    try:
        return cls(**params)
    except TypeError as exc:
        raise ModelFileError(
            f"The {kind} plugin {name!r} installed here ({cls.__module__}.{cls.__qualname__}) "
            f"does not take the parameters saved in the file ({exc}); the file was written "
            f"with {value.get('distribution')} {value.get('version')}."
        ) from None
