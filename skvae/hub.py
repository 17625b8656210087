"""Hugging Face Hub-style model folders: ``save_pretrained`` and ``from_pretrained``.

A model folder has the Hub's conventional layout:

``config.json``
    The model's description: exactly the ``model.json`` of a ``.skvae``
    file (parameters, fitted attributes, plugins by registered name with
    the distribution and version that provided them, the module's tensor
    shapes and the SHA-256 digest of each tensor file).
``model.safetensors``
    The weights (the module's ``state_dict``), as in ``weights.safetensors``.
``training.safetensors`` (only with ``include_optimizer=True``)
    The optimizer's and the training generator's state.
``README.md``
    The model card: metrics, data shape, plugins, intended use, and how to
    load the model. Never read by :func:`from_pretrained`.

:func:`from_pretrained` loads such a folder, or a Hub repository by its id
(``"owner/name"``, through :func:`huggingface_hub.snapshot_download`, the
``hub`` extra), by the same code path as :func:`skvae.load`: the folder's
files are checked (regular files, no symbolic links but those of the Hub's
own cache, sizes bounded by what ``config.json`` describes), put together as
a ``.skvae`` archive in a temporary folder, and read by :func:`skvae.load`,
with all its checks. Nothing in the folder is imported, unpickled or run.

To share a folder on the Hub: ``huggingface_hub.upload_folder(repo_id=...,
folder_path=folder)``.
"""

import json
import math
import os
import re
import stat
import tempfile
import zipfile
from numbers import Real
from pathlib import Path

__all__ = ["save_pretrained", "from_pretrained", "PretrainedMixin", "HUB_EXTRA_MESSAGE"]

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TRAINING = "training.safetensors"
MODEL_CARD = "README.md"
#: What to install to load a model by its Hub repo id.
HUB_EXTRA_MESSAGE = (
    'Loading a model by its Hugging Face Hub repo id needs the "hub" extra: '
    'pip install "skvae[hub]" (huggingface_hub).'
)
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
_COPY_CHUNK = 2**20

_DEFAULT_USE = (
    "Encoding rows like the training data into latent codes (`transform`), "
    "decoding codes (`inverse_transform`), generating new rows (`sample`) and "
    "scoring how well the model explains a row (`score_samples`, the ELBO in nats). "
    "The model knows only its training data: rows unlike them get low scores and "
    "poor codes. Check its metrics on your own held-out data before relying on it."
)


# ------------------------------------------------------------------- save
def save_pretrained(estimator, folder, *, metrics=None, intended_use=None,
                    model_name=None, include_optimizer=False):
    """Save a fitted skvae estimator as a Hub-style model folder.

    Writes ``config.json``, ``model.safetensors`` (and, with
    ``include_optimizer``, ``training.safetensors``) and a ``README.md``
    model card into ``folder`` (created if needed; those files are
    replaced, nothing else in it is touched).

    Parameters
    ----------
    estimator : skvae estimator
        A fitted estimator of one of skvae's classes (as :func:`skvae.save`).
    folder : str or os.PathLike
        The folder to write.
    metrics : dict of str to float, default=None
        Metrics for the model card, such as ``{"test ELBO (nats)":
        vae.score(X_test)}``; the card also lists the training history's
        last epoch.
    intended_use : str, default=None
        The card's "Intended use" section; None writes a generic one.
    model_name : str, default=None
        The card's title; None uses the folder's name.
    include_optimizer : bool, default=False
        Also write the optimizer's state, so that ``partial_fit`` continues
        exactly (a larger folder; not needed to use the model).

    Returns
    -------
    folder : pathlib.Path

    Raises
    ------
    ValueError
        When ``metrics`` is not a dict of names to finite numbers, or the
        estimator cannot be saved (see :func:`skvae.save`).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.hub import from_pretrained, save_pretrained
    >>> X = load_digits().data[:200] / 16
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = save_pretrained(vae, os.path.join(tmp, "digits-vae"),
    ...                              metrics={"ELBO (nats)": vae.score(X)})
    ...     print(sorted(os.listdir(folder)))
    ...     loaded = from_pretrained(folder)
    ['README.md', 'config.json', 'model.safetensors']
    >>> bool(np.array_equal(loaded.transform(X), vae.transform(X)))
    True
    """
    from . import _io

    metrics = _check_metrics(metrics)
    if intended_use is not None and not isinstance(intended_use, str):
        raise ValueError(f"intended_use must be a str or None; got {type(intended_use).__name__}.")
    folder = Path(os.fspath(folder))
    with tempfile.TemporaryDirectory() as tmp:
        archive_path = _io.save(estimator, Path(tmp) / "model.skvae",
                                include_optimizer=include_optimizer)
        with zipfile.ZipFile(archive_path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members[_io.MODEL_JSON].decode("utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    files = {CONFIG: members[_io.MODEL_JSON], WEIGHTS: members[_io.WEIGHTS]}
    if _io.TRAINING in members:
        files[TRAINING] = members[_io.TRAINING]
    name = model_name if model_name is not None else (folder.resolve().name or "skvae-model")
    files[MODEL_CARD] = model_card(config, estimator, name=name, metrics=metrics,
                                   intended_use=intended_use).encode("utf-8")
    for file_name, data in files.items():
        _io.write_atomically(folder / file_name, lambda f, data=data: f.write(data))
    if TRAINING not in files and (folder / TRAINING).is_file():
        (folder / TRAINING).unlink()  # an earlier save's state: not this model's
    return folder


def _check_metrics(metrics):
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics must be a dict of names to numbers; got {type(metrics).__name__}.")
    checked = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"metrics names must be non-empty str; got {name!r}.")
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"metric {name!r} must be a finite number; got {value!r}.")
        checked[name] = float(value)
    return checked


# ------------------------------------------------------------- model card
def _cell(value):
    """A value as the text of one Markdown table cell."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split())


def _plugin_line(record):
    """``name (params) from distribution version`` of an encoded plugin in config.json."""
    if not isinstance(record, dict) or "plugin" not in record:
        return _cell(record)
    params = record.get("params") or {}
    shown = ", ".join(f"{k}={_plain(v)}" for k, v in params.items())
    origin = record.get("distribution")
    version = record.get("version")
    text = f"`{record['plugin']}`" + (f" ({shown})" if shown else "")
    if origin:
        text += f", from {origin}" + (f" {version}" if version else "")
    return _cell(text)


def _plain(value):
    """A config.json value (with its tagged objects) as short text."""
    if isinstance(value, dict) and value.get("type") == "tuple":
        return "(" + ", ".join(_plain(v) for v in value.get("items", [])) + ")"
    if isinstance(value, dict) and "plugin" in value:
        return value["plugin"]
    if isinstance(value, dict) and value.get("type") in ("float", "numpy"):
        return str(value.get("value"))
    return repr(value) if isinstance(value, str) else str(value)


def model_card(config, estimator, *, name, metrics=None, intended_use=None):
    """The ``README.md`` of a model folder: the Hub's model card.

    Parameters
    ----------
    config : dict
        The folder's ``config.json`` (the ``.skvae`` file's ``model.json``).
    estimator : skvae estimator
        The fitted estimator it describes.
    name : str
        The card's title.
    metrics : dict of str to float, default=None
    intended_use : str, default=None

    Returns
    -------
    card : str
        Markdown with YAML front matter (``library_name: skvae``, tags).
    """
    kind = config["estimator"]
    fitted = config["fitted"]
    lines = [
        "---",
        "library_name: skvae",
        "tags:",
        "- skvae",
        "- variational-autoencoder",
        "- scikit-learn",
        "- pytorch",
        "---",
        "",
        f"# {name}",
        "",
        f"A `{kind}` (a variational autoencoder, scikit-learn API) saved by skvae "
        f"{config.get('skvae_version')} with torch {config.get('torch_version')}.",
        "",
        "## Model",
        "",
        "| | |",
        "| --- | --- |",
        f"| estimator | `{kind}` |",
        f"| latent dimensions (`n_components`) | {config['params'].get('n_components')} |",
    ]
    for plugin in ("architecture", "likelihood", "prior"):
        lines.append(f"| {plugin} | {_plugin_line(fitted.get(plugin + '_'))} |")
    lines += ["", "## Data", "", "| | |", "| --- | --- |",
              f"| features (`n_features_in_`) | {getattr(estimator, 'n_features_in_', '?')} |"]
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        shown = ", ".join(map(str, list(names)[:20])) + (", ..." if len(names) > 20 else "")
        lines.append(f"| feature names | {_cell(shown)} |")
    schema = getattr(estimator, "table_schema_", None)
    if schema is not None:
        counts = {}
        for kind_name in schema.kinds.values():
            counts[kind_name] = counts.get(kind_name, 0) + 1
        lines.append("| input | a pandas DataFrame: "
                     + _cell(", ".join(f"{v} {k}" for k, v in counts.items())) + " columns |")
    else:
        lines.append("| input | a 2-D array of floats, one row per sample |")
    if hasattr(estimator, "classes_"):
        lines.append(f"| classes | {_cell(list(estimator.classes_))} |")
    lines += _metric_lines(estimator, metrics or {})
    lines += ["", "## Intended use", "", intended_use or _DEFAULT_USE, ""]
    lines += _usage_lines(name)
    return "\n".join(lines) + "\n"


def _metric_lines(estimator, metrics):
    lines = ["", "## Metrics", "", "| metric | value |", "| --- | --- |"]
    for key, value in metrics.items():
        lines.append(f"| {_cell(key)} | {value:.6g} |")
    history = getattr(estimator, "history_", None) or []
    lines.append(f"| epochs trained (`n_iter_`) | {getattr(estimator, 'n_iter_', '?')} |")
    if history:
        last = history[-1]
        for key, label in (("loss", "training loss, last epoch (nats per sample)"),
                           ("val_loss", "validation loss, last epoch (nats per sample)")):
            value = last.get(key)
            if isinstance(value, Real) and math.isfinite(value):
                lines.append(f"| {label} | {value:.6g} |")
    if hasattr(estimator, "offset_"):
        lines.append(f"| outlier threshold (`offset_`) | {estimator.offset_:.6g} |")
    return lines


def _usage_lines(name):
    return [
        "## How to use",
        "",
        "```python",
        "from skvae.hub import from_pretrained",
        f'model = from_pretrained("{name}")  # a folder, or a Hub repo id "owner/name"',
        "Z = model.transform(X)",
        "```",
        "",
        "Loading reads `config.json` and `model.safetensors` only, by the code path of "
        "`skvae.load`: nothing in the folder is imported, unpickled or run, and the "
        "plugins are looked up by their registered names (install the distributions "
        "named above).",
        "",
    ]


# ------------------------------------------------------------------- load
def from_pretrained(folder_or_repo_id, *, revision=None, device="cpu", cache_dir=None):
    """Load a model folder written by :func:`save_pretrained`, or a Hub repository.

    Parameters
    ----------
    folder_or_repo_id : str or os.PathLike
        A local folder, or, when no such folder exists, a Hugging Face Hub
        repo id ``"owner/name"`` (downloaded with
        :func:`huggingface_hub.snapshot_download`: the ``hub`` extra).
    revision : str, default=None
        With a repo id: the branch, tag or commit (None: the default branch).
    device : str or torch.device, default="cpu"
        As in :func:`skvae.load`.
    cache_dir : str or os.PathLike, default=None
        With a repo id: huggingface_hub's cache folder (None: its default).

    Returns
    -------
    estimator : skvae estimator
        The fitted estimator.

    Raises
    ------
    skvae.ModelFileError
        When the folder is not a model folder or is hostile: a missing
        file, a symbolic link (other than a Hub cache's link into its own
        ``blobs`` folder) or other non-regular file, a file larger than
        what ``config.json`` describes, or anything :func:`skvae.load`
        refuses.
    FileNotFoundError
        When the argument is neither a folder nor a repo id.
    ImportError
        For a repo id without huggingface_hub installed.

    Examples
    --------
    See :func:`save_pretrained`.
    """
    path = os.fspath(folder_or_repo_id)
    if os.path.lexists(path):
        return _load_folder(Path(path), device, hub_cache=False)
    if not isinstance(path, str) or not _REPO_ID.fullmatch(path):
        raise FileNotFoundError(
            f"{path!r} is neither a model folder nor a Hugging Face Hub repo id "
            "('owner/name')."
        )
    folder = _download(path, revision, cache_dir)
    return _load_folder(Path(folder), device, hub_cache=True)


def _download(repo_id, revision, cache_dir):
    try:
        import huggingface_hub
    except ImportError as exc:
        raise ImportError(f"{HUB_EXTRA_MESSAGE} ({exc})") from exc
    return huggingface_hub.snapshot_download(
        repo_id, revision=revision, cache_dir=cache_dir,
        allow_patterns=[CONFIG, WEIGHTS, TRAINING, MODEL_CARD],
    )


def _load_folder(folder, device, hub_cache):
    """Check the folder's files, assemble a ``.skvae`` archive, load it with skvae.load."""
    from . import _io

    _check_folder(folder, hub_cache)
    config_bytes = _read_checked(folder, CONFIG, _io._MAX_JSON_BYTES, hub_cache)
    model = _io._parse_model_json(folder / CONFIG, config_bytes)
    files = model.get("files")
    if not isinstance(files, dict) or _io.WEIGHTS not in files:
        raise _io.ModelFileError(f"{folder / CONFIG} lists no weights file digest.")
    try:
        listing = _io._tensor_listing(model)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _io.ModelFileError(f"{folder / CONFIG} is malformed ({exc}).") from None
    weights_bytes = sum(_io._nbytes(*spec) for spec in listing.values())
    n = len(listing)
    limits = {WEIGHTS: 8 + _io._MAX_HEADER_BASE + _io._MAX_HEADER_PER_TENSOR * n + weights_bytes}
    members = {_io.WEIGHTS: WEIGHTS}
    if _io.TRAINING in files:
        limits[TRAINING] = (
            8 + _io._MAX_HEADER_BASE
            + _io._MAX_HEADER_PER_TENSOR * ((_io._OPTIMIZER_COPIES + 1) * n + 1)
            + _io._OPTIMIZER_COPIES * weights_bytes + _io._TRAINING_SLACK
        )
        members[_io.TRAINING] = TRAINING
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "model.skvae"
        with zipfile.ZipFile(archive, "w") as out:
            info = zipfile.ZipInfo(_io.MODEL_JSON, date_time=_io._DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, config_bytes)
            for member, file_name in members.items():
                _copy_checked(folder, file_name, limits[file_name], hub_cache, out, member)
        try:
            return _io.load(archive, device=device)
        except _io.ModelFileError as exc:
            message = str(exc).replace(str(archive), str(folder))
            message = message.replace(_io.MODEL_JSON, CONFIG).replace(_io.WEIGHTS, WEIGHTS)
            raise _io.ModelFileError(message) from None


def _check_folder(folder, hub_cache):
    from . import _io

    try:
        mode = os.lstat(folder).st_mode
    except OSError as exc:
        raise _io.ModelFileError(f"{folder} cannot be read ({exc}).") from None
    if stat.S_ISLNK(mode) and not hub_cache:
        raise _io.ModelFileError(
            f"{folder} is a symbolic link: from_pretrained reads a real folder only "
            "(pass the folder it points to, if you trust it)."
        )
    if not os.path.isdir(folder):
        raise _io.ModelFileError(
            f"{folder} is not a folder: from_pretrained reads a folder written by "
            "save_pretrained (use skvae.load for a .skvae file)."
        )


def _resolve(folder, name, hub_cache):
    """The path to open for ``folder/name``, after refusing links and non-regular files.

    In a Hub cache snapshot (``.../snapshots/<revision>/``), files are links
    into the repository's ``blobs`` folder; such a link is followed, any
    other is refused.
    """
    from . import _io

    path = folder / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise _io.ModelFileError(
            f"{folder} has no {name}: it is not a complete model folder (save_pretrained "
            f"writes {CONFIG}, {WEIGHTS} and {MODEL_CARD})."
        ) from None
    if stat.S_ISLNK(mode):
        blobs = (folder / ".." / ".." / "blobs").resolve()
        target = path.resolve()
        if not (hub_cache and target.parent == blobs):
            raise _io.ModelFileError(
                f"{path} is a symbolic link: from_pretrained reads regular files only "
                "(a link could point anywhere on this machine); refused."
            )
        path, mode = target, os.stat(target).st_mode
    if not stat.S_ISREG(mode):
        _io._check_regular(path, mode)  # names what it is
    return path


def _open_checked(folder, name, limit, hub_cache):
    """Open a regular file of the folder, refusing one larger than ``limit`` bytes."""
    from . import _io

    path = _resolve(folder, name, hub_cache)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _io.ModelFileError(f"{path} cannot be opened ({exc}); refused.") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            _io._check_regular(path, info.st_mode)
        raise _io.ModelFileError(
            f"{folder / name} has {info.st_size} bytes, more than the {limit} that "
            f"{'a model description' if name == CONFIG else 'the tensors described in ' + CONFIG} "
            "can take; refused."
        )
    return os.fdopen(fd, "rb"), info.st_size


def _read_checked(folder, name, limit, hub_cache):
    file, size = _open_checked(folder, name, limit, hub_cache)
    with file:
        data = file.read(limit + 1)
    if len(data) != size:
        _changed(folder / name)
    return data


def _changed(path):
    from . import _io

    raise _io.ModelFileError(f"{path} changed while it was read; refused.")


def _copy_checked(folder, name, limit, hub_cache, archive, member):
    """Copy a checked file into ``archive`` as ``member`` (stored), a chunk at a time."""
    file, size = _open_checked(folder, name, limit, hub_cache)
    info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    with file, archive.open(info, "w", force_zip64=size > 2**31) as out:
        copied = 0
        while copied <= size and (chunk := file.read(min(_COPY_CHUNK, size + 1 - copied))):
            if copied + len(chunk) > size:
                _changed(folder / name)
            out.write(chunk)
            copied += len(chunk)
    if copied != size:
        _changed(folder / name)


# ------------------------------------------------------------------ mixin
class PretrainedMixin:
    """``save_pretrained`` and ``from_pretrained`` as methods of skvae's estimators.

    Examples
    --------
    >>> from skvae.hub import PretrainedMixin
    >>> sorted(n for n in vars(PretrainedMixin) if not n.startswith("_"))
    ['from_pretrained', 'save_pretrained']
    """

    def save_pretrained(self, folder, **kwargs):
        """Save this fitted model as a Hub-style folder: see :func:`skvae.hub.save_pretrained`."""
        return save_pretrained(self, folder, **kwargs)

    @classmethod
    def from_pretrained(cls, folder_or_repo_id, **kwargs):
        """Load a model folder or Hub repo id: see :func:`skvae.hub.from_pretrained`.

        Raises a TypeError when the folder holds a model of another class.
        """
        model = from_pretrained(folder_or_repo_id, **kwargs)
        if not isinstance(model, cls):
            raise TypeError(
                f"{folder_or_repo_id} holds a {type(model).__name__}, not a {cls.__name__}: "
                "load it with skvae.hub.from_pretrained."
            )
        return model
