"""Checkpoints of a fit: written after each epoch, resumed by the next fit.

With ``checkpoint_path``, :class:`CheckpointFile` checks before training that
the file can be written and whether it holds a fit to resume (same class,
parameters and training data), and :class:`Checkpointing`, a callback of
the training loop, writes it atomically after every epoch (rank 0 only under
data-parallel training) and, when the fit ends, the final model as
:func:`skvae.load` reads it. The file format is :mod:`skvae._io`'s.
"""

import os
import tempfile
import warnings

import torch

from . import _device, _io

# Parameters that do not change what a fit computes: a checkpoint written
# with other values of these resumes all the same.
# data_on_device changes where the batches come from, not what they hold.
NEUTRAL_PARAMS = ("verbose", "checkpoint_path", "warm_start", "data_on_device")


class Checkpointing:
    """The callback that writes a fit's checkpoint after each epoch and at its end.

    Parameters
    ----------
    file : CheckpointFile
    fit : object
        The fit in progress: ``fit.attributes(history)`` gives the fitted
        attributes after ``history`` (this call's records), ``fit.stop_epoch``
        the epoch at which it ends.
    stopper : skvae._engine.EarlyStopping or None
        Its state is written with each epoch, so that a resumed fit stops
        where the uninterrupted one would.
    """

    def __init__(self, file, fit, stopper=None):
        self.file = file
        self.fit = fit
        self.stopper = stopper

    def on_epoch_end(self, run, record):
        if run.is_writer:
            self._write(run, finished=run.will_stop, stopper=self.stopper)

    def on_train_end(self, run):
        # The final model (best weights restored), as skvae.load reads it.
        if run.is_writer and run.outcome in ("completed", "stopped") and run.history:
            self._write(run, finished=True, stopper=None)

    def _write(self, run, finished, stopper):
        self.file.write(
            self.fit.attributes(run.history),
            stop_epoch=self.fit.stop_epoch,
            finished=finished,
            result=run.result,
            stopper=stopper,
        )


class CheckpointFile:
    """The checkpoint of one ``fit`` call: checks, resume and atomic writes."""

    def __init__(self, estimator, data):
        self.estimator = estimator
        self.path = check_path(estimator.checkpoint_path)
        self.write_error = None
        name = type(estimator).__name__
        if _io._ESTIMATORS.get(name) is not type(estimator):
            raise TypeError(
                f"checkpoint_path works for skvae's own estimators "
                f"({', '.join(sorted(_io._ESTIMATORS))}), not {type(estimator).__qualname__}."
            )
        try:
            self.params = _io.encode_params(estimator)
        except ValueError as exc:
            raise ValueError(
                f"checkpoint_path is set, but the parameters cannot be written to a "
                f"checkpoint: {exc}"
            ) from None
        self.data_sha256 = data.digest()

    def _read(self, device):
        try:
            return _io.read_checkpoint(self.path, device)
        except _io.ModelFileError as exc:
            raise ValueError(
                f"checkpoint_path={self.path!r} exists but is not a checkpoint that fit can "
                f"resume from, and it is not overwritten: {exc} Delete the file, or "
                "choose another checkpoint_path."
            ) from None

    def check_overwritable(self):
        """Refuse to overwrite a file that is not a checkpoint (warm starts)."""
        if os.path.exists(self.path):
            self._read(torch.device("cpu"))

    def resume(self):
        """Return the checkpoint to resume from, or None when there is none.

        Raises ValueError when it belongs to another fit (class, parameters
        or data).
        """
        if not os.path.exists(self.path):
            return None
        estimator = self.estimator
        checkpoint = self._read(_device.resolve(estimator.device))
        where = f"checkpoint_path={self.path!r}"
        fix = "Delete the file, or choose another checkpoint_path, to start a new fit."
        if type(checkpoint.estimator) is not type(estimator):
            raise ValueError(
                f"{where} holds a checkpoint of a {type(checkpoint.estimator).__name__}, "
                f"not of a {type(estimator).__name__}. {fix}"
            )
        differ = [
            f"{name}={_plain(checkpoint.params.get(name))!r} in the checkpoint, "
            f"{_plain(value)!r} now"
            for name, value in self.params.items()
            if name not in NEUTRAL_PARAMS
            and _plain(checkpoint.params.get(name)) != _plain(value)
        ]
        if differ:
            raise ValueError(
                f"{where} holds a checkpoint of a fit with other parameters "
                f"({'; '.join(differ)}); it cannot be resumed. {fix}"
            )
        if checkpoint.state.get("data_sha256") != self.data_sha256:
            raise ValueError(
                f"{where} holds a checkpoint of a fit on other training data (its SHA-256 "
                f"digest differs); it cannot be resumed. {fix}"
            )
        saved_type = checkpoint.state.get("generator_device_type")
        device = checkpoint.estimator._device
        if saved_type is not None and saved_type != device.type:
            warnings.warn(
                f"{where} was written on {saved_type}, and this fit runs on {device.type}: "
                "the random stream restarts from the seed, so the resumed fit will not "
                "equal an uninterrupted one.",
                UserWarning,
                stacklevel=5,
            )
        return Resumed(checkpoint)

    def write(self, fitted, *, stop_epoch, finished, result, stopper):
        """Write the estimator with the ``fitted`` attributes and the fit's state, atomically.

        A write that fails (a full disk) warns once; the fit goes on.
        """
        history = fitted["history_"]
        proxy = object.__new__(type(self.estimator))
        proxy.__dict__.update(self.estimator.__dict__)
        proxy.__dict__.update(fitted)
        state = {
            "epoch": len(history),
            "stop_epoch": int(stop_epoch),
            "finished": bool(finished),
            "lr_scale": float(result.lr_scale),
            "halvings": int(result.halvings),
            "stopper_best": None if stopper is None else float(stopper.best),
            "stopper_bad_epochs": None if stopper is None else int(stopper.bad_epochs),
            "stopper_best_state": stopper is not None and stopper.best_state is not None,
            "data_sha256": self.data_sha256,
        }
        tensors = {}
        if state["stopper_best_state"]:
            tensors = {f"best.{k}": v for k, v in stopper.best_state.items()}
        if self.write_error is not None:
            return  # warned once; the fit goes on without checkpoints
        try:
            _io.save_checkpoint(proxy, self.path, state, tensors)
        except OSError as exc:
            self.write_error = exc
            warnings.warn(
                f"checkpoint_path={self.path!r} could not be written after epoch "
                f"{len(history)} ({exc.strerror or exc}); the fit goes on without "
                "checkpoints and keeps the trained model. Free some space or choose "
                "another checkpoint_path to resume later fits.",
                UserWarning,
                stacklevel=2,
            )


def check_path(path):
    """Check, before training, that a checkpoint can be written at ``path``.

    Return the path as a str; raise ValueError naming ``checkpoint_path``
    when it is empty, a folder, in a folder that does not exist or that
    this process cannot write to.
    """
    path = os.fspath(path)
    where = f"checkpoint_path={path!r}"
    if not path:
        raise ValueError(f"{where} is empty: give a file path such as 'fit.skvae', or None.")
    if os.path.isdir(path):
        raise ValueError(f"{where} is a folder; give a file path inside it, e.g. 'fit.skvae'.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"{where}: the folder {folder!r} does not exist; create it first, or choose "
            "another checkpoint_path."
        )
    try:  # the way the checkpoint itself is written: a temporary file in the folder
        fd, probe = tempfile.mkstemp(prefix=".skvae-write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(
            f"{where}: cannot write in the folder {folder!r} ({exc.strerror or exc}); "
            "choose another checkpoint_path."
        ) from None
    return path


class Resumed:
    """A matching checkpoint, ready to continue from."""

    def __init__(self, checkpoint):
        self.estimator = checkpoint.estimator
        self.state = checkpoint.state
        self.tensors = checkpoint.tensors

    def restore_stopper(self, stopper, device):
        if self.state.get("stopper_best") is None:
            return
        stopper.best = float(self.state["stopper_best"])
        stopper.bad_epochs = int(self.state["stopper_bad_epochs"])
        if self.state.get("stopper_best_state"):
            stopper.best_state = {
                k.removeprefix("best."): v.to(device)
                for k, v in self.tensors.items()
                if k.startswith("best.")
            }


def _plain(value):
    """JSON parameter data without where a plugin came from (class, distribution...)."""
    if isinstance(value, dict):
        if "plugin" in value:
            value = {k: value.get(k) for k in ("plugin", "kind", "params")}
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
