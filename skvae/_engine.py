"""The training loop: epochs over device-resident data, a strategy, callbacks.

:func:`run` trains a :class:`Trainer` (module, optimizer, generator and the
step's options) on a :class:`~skvae._data.TrainingData` over the epochs of a
:class:`Schedule`. It knows nothing of how the run is spread over processes
or of what happens between epochs:

- a *strategy* places the data and runs the step and the epoch's one
  synchronisation: :class:`SingleProcess` here, or
  :class:`skvae.distributed.DataParallel` under torchrun;
- *callbacks* see each epoch's record and may stop the run: early stopping
  (:class:`EarlyStopping`), the progress bar, checkpoints
  (:class:`skvae._checkpoint.Checkpointing`), scikit-learn's callbacks and
  the users' own (:mod:`skvae.callbacks`). They cost nothing per step.

The whole training set is moved to the device once. Each epoch draws a
permutation from a seeded :class:`torch.Generator` and takes batches by index;
there is no DataLoader and no host synchronisation inside the step: the
losses of each step are added into a small device tensor that is read once per
epoch, together with flags saying whether the weights, and the model's loss
on a few training rows (in float32, as inference computes), are finite.

After every completed epoch, :func:`run` keeps device-side copies of the
weights, the optimizer's state and the generator's state (a
:class:`skvae._state.Snapshot`): a divergence (``on_divergence="restore"``)
or a KeyboardInterrupt goes back to it, so that the model is never left
half-way through an epoch.
"""

import math
import threading
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Callable

import torch

from ._model import RandomNoise, VAEModule
from .callbacks import CallbackError
from ._state import Snapshot
from ._warnings import user_stacklevel
from ._step import EpochSums, StepForward, autocast

#: How many times ``on_divergence="restore"`` may halve the learning rate in
#: one call of :func:`run` before it gives up with a FloatingPointError.
MAX_LR_HALVINGS = 5
DIVERGENCE_OPTIONS = ("raise", "restore")
#: Training rows on which each epoch checks that the weights give finite
#: outputs (a forward pass in float32), when there are no validation rows.
PROBE_ROWS = 32

_MODULE_LOCKS = weakref.WeakKeyDictionary()
_MODULE_LOCKS_GUARD = threading.Lock()


def module_lock(module):
    """The lock that training and inference of ``module`` take (one per module).

    :func:`run` holds it through each epoch, during which the module is in
    training mode and its weights and batch-norm statistics change;
    inference (which puts the module in eval mode) holds it through each
    call. So an inference call from another thread while a fit runs waits
    for the end of the current epoch, and never changes the training state.
    Re-entrant: the training thread may itself run inference between steps.

    Examples
    --------
    >>> import torch
    >>> module = torch.nn.Linear(2, 1)
    >>> with module_lock(module):
    ...     _ = module.eval()
    >>> module_lock(module) is module_lock(module)
    True
    """
    with _MODULE_LOCKS_GUARD:
        lock = _MODULE_LOCKS.get(module)
        if lock is None:
            lock = _MODULE_LOCKS[module] = threading.RLock()
        return lock


def _batch_bounds(n, batch_size):
    """Minibatch (start, stop) pairs; a last batch of one row joins the one before.

    A single-row batch breaks batch normalisation and gives a noisy step.

    Examples
    --------
    >>> _batch_bounds(9, 4)
    [(0, 4), (4, 9)]
    """
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(start, starts[i + 1] if i + 1 < len(starts) else n) for i, start in enumerate(starts)]


# ---------------------------------------------------------------- the plan
@dataclass
class Schedule:
    """The epochs of one call of :func:`run`, and what changes over them.

    Attributes
    ----------
    first_epoch, stop_epoch : int
        Global 0-based epoch range: epochs ``first_epoch`` to
        ``stop_epoch - 1`` are trained (fewer if a callback stops the run).
    beta, learning_rate : callable
        Map a global epoch index to the KL weight and the learning rate.
    warmup_epochs : int
        Global epochs during which beta still ramps (early stopping starts
        comparing losses after them).
    val_seed : int
        Seeds the fixed noise of the validation and probe losses.
    on_divergence : {"raise", "restore"}, default="raise"
        See :func:`run`.
    """

    first_epoch: int
    stop_epoch: int
    beta: Callable
    learning_rate: Callable
    warmup_epochs: int = 0
    val_seed: int = 0
    on_divergence: str = "raise"

    def __post_init__(self):
        if self.on_divergence not in DIVERGENCE_OPTIONS:
            raise ValueError(
                f"on_divergence must be one of {DIVERGENCE_OPTIONS}, got {self.on_divergence!r}."
            )


@dataclass
class RunResult:
    """What :func:`run` did.

    Attributes
    ----------
    history : list of dict
        One record per completed epoch.
    lr_scale : float
        Factor applied to the scheduled learning rate (halved at each
        divergence under ``on_divergence="restore"``); a resumed run starts
        from the saved one.
    halvings : int
        Number of such halvings so far.
    interrupted : bool
        Whether a KeyboardInterrupt ended the run (after at least one
        completed epoch; the model is that of the last completed epoch, or
        the best one with early stopping on validation data).
    stopped : bool
        Whether a callback (early stopping) ended the run.
    """

    history: list = field(default_factory=list)
    lr_scale: float = 1.0
    halvings: int = 0
    interrupted: bool = False
    stopped: bool = False


class TrainingRun:
    """What callbacks see of a run in progress.

    Attributes
    ----------
    estimator : estimator or None
        The estimator being fitted (its fitted attributes are set only when
        ``fit`` returns: a fit is all or nothing).
    trainer : Trainer
    schedule : Schedule
    result : RunResult
    epoch : int
        Global 0-based index of the current (or last completed) epoch.
    will_stop : bool
        During ``on_epoch_end``: whether the run ends after this epoch, as
        decided so far (the last epoch of the schedule, or a callback
        earlier in the list asked to stop).
    outcome : str or None
        In ``on_train_end``: "completed", "stopped", "interrupted" or
        "failed" (an exception, which the fit raises again).
    is_writer : bool
        Whether this process writes files (rank 0 of a data-parallel run).
    """

    def __init__(self, trainer, schedule, result, *, estimator=None, fitted=None, is_writer=True):
        self.trainer = trainer
        self.schedule = schedule
        self.result = result
        self.estimator = estimator
        self.epoch = schedule.first_epoch
        self.will_stop = False
        self.outcome = None
        self.is_writer = is_writer
        self._fitted = fitted

    @property
    def module(self):
        return self.trainer.module

    @property
    def first_epoch(self):
        return self.schedule.first_epoch

    @property
    def stop_epoch(self):
        return self.schedule.stop_epoch

    @property
    def history(self):
        """The records of this call's completed epochs."""
        return self.result.history

    def fitted_attributes(self):
        """Attributes that make a copy of the estimator usable for inference now."""
        return {} if self._fitted is None else self._fitted(self.history)


# ---------------------------------------------------------------- the step
class Trainer:
    """Runs epochs of minibatch training of a :class:`~skvae._model.VAEModule`.

    Parameters
    ----------
    module : VAEModule
        On its device already.
    optimizer : torch.optim.Optimizer
    generator : torch.Generator
        On the module's device; the only source of randomness of training.
    batch_size : int
    free_bits : float, default=0.0
    n_importance : int, default=1
        See :meth:`skvae._model.VAEModule.loss`.
    clip_grad_norm : float or None, default=None
        Clip the gradients' global 2-norm to this value before each step.
    condition_dropout : float, default=0.0
        With per-row conditions, each training row's condition is replaced
        by zeros (the "unknown" condition) with this probability, drawn from
        the generator at every step (label dropout).
    precision : {"float32", "bf16-mixed"}, default="float32"
        "bf16-mixed" runs the forward passes of training and validation
        under bfloat16 autocast (see :mod:`skvae._step`).
    compile : bool or str, default=False
        Compile the training step's forward and backward with
        :func:`torch.compile` (True: mode "default"; or a mode name such as
        "reduce-overhead", which replays them as CUDA graphs on a GPU). Not
        applied by strategies that wrap the module (data-parallel training).

    Attributes
    ----------
    epoch_extras : dict
        Mean per sample, over the last training epoch, of each extra term
        the module's ``loss`` returned (as a fourth element, a dict of
        per-sample tensors); empty when it returned none.
    weights_finite : bool
        Whether every floating-point tensor of the module's state was finite
        at the end of the last epoch.
    probe_loss : float or None
        The float32 loss on the probe rows at the end of the last epoch
        (summed over the ranks of a data-parallel run).
    """

    def __init__(
        self,
        module,
        optimizer,
        generator,
        batch_size,
        free_bits=0.0,
        n_importance=1,
        clip_grad_norm=None,
        condition_dropout=0.0,
        precision="float32",
        compile=False,
    ):
        self.module = module
        self.optimizer = optimizer
        self.generator = generator
        self.batch_size = batch_size
        self.free_bits = free_bits
        self.n_importance = n_importance
        self.clip_grad_norm = clip_grad_norm
        self.condition_dropout = condition_dropout
        self.precision = precision
        self.compile = compile
        self._forward = None  # a StepForward, made at the first epoch (on the data's device)
        self.epoch_extras = {}
        self.weights_finite = True
        self.probe_loss = None
        self._floating_state = None
        self._submodules = None

    def loss(self, x, noise, beta, c=None):
        """The module's loss tuple on minibatch ``x`` (conditions ``c``) with ``noise``."""
        kwargs = {} if c is None else {"c": c}
        return self.module.loss(
            x, noise, beta=beta, free_bits=self.free_bits, n_importance=self.n_importance, **kwargs
        )

    def step_forward(self, device, compile=True):
        """The :class:`~skvae._step.StepForward` of this trainer (made once)."""
        if self._forward is None:
            self._forward = StepForward(
                self.loss,
                self.generator,
                device,
                precision=self.precision,
                compile=self.compile if compile else False,
            )
        return self._forward

    def _drop_conditions(self, cb, generator):
        """Zero each row of ``cb`` with probability ``condition_dropout`` (on the device)."""
        if cb is None or not self.condition_dropout:
            return cb
        keep = torch.rand((cb.shape[0], 1), generator=generator, device=cb.device)
        return cb * (keep >= self.condition_dropout)

    def train_epoch(self, data, beta, strategy, probe=None, probe_seed=0):
        """Train one epoch on device-side ``data``; return mean loss, nll, kl.

        The strategy runs each step's loss and the epoch's single host
        synchronisation, which also reads whether every weight is still
        finite (:attr:`weights_finite`: a non-finite gradient makes the
        weights non-finite at the step that follows) and, with ``probe``
        (a few training rows), the model's float32 loss on them
        (:attr:`probe_loss`). nll and kl are None under the IWAE
        objective, which does not split into them.
        """
        module, optimizer = self.module, self.optimizer
        self._set_training(True)
        generator = strategy.generator(self)
        perm = data.epoch_order(generator)
        n = len(perm)
        batch_size = min(strategy.local_batch_size(self.batch_size), n)
        forward = self.step_forward(data.device, compile=strategy.compiles)
        step_loss = strategy.step_loss
        sums = EpochSums(beta, elbo_form=self._elbo_form())
        for start, stop in _batch_bounds(n, batch_size):
            xb, cb = data.batch(perm[start:stop])
            cb = self._drop_conditions(cb, generator)
            # Before the forward pass: a CUDA-graph replay of the compiled step
            # may reuse the memory of the last step's gradients.
            optimizer.zero_grad(set_to_none=True)
            out = step_loss(self, forward, xb, beta, cb)
            out[0].backward()
            if self.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(module.parameters(), self.clip_grad_norm)
            optimizer.step()
            sums.add(out, stop - start)
        self._set_training(False)
        with torch.no_grad():
            totals = sums.totals()
            # Values that must be finite, in one tensor: the largest magnitude
            # of each state tensor (one fused call), then the probe's loss.
            checks = list(torch._foreach_norm(self._state_tensors(), math.inf))
            if probe is not None:
                checks.append(self._probe_loss(probe, beta, probe_seed))
            # (In their own dtype: a float64 weight above float32's range is finite.)
            checks = torch.stack(checks) if checks else totals.new_zeros(1)
            values = strategy.end_epoch(module, totals, n, checks)
        k = len(checks)
        weights = values[-k:-1] if probe is not None else values[-k:]
        self.weights_finite = all(map(math.isfinite, weights))
        self.probe_loss = values[-1] if probe is not None else None
        loss, nll, kl, self.epoch_extras = sums.means(values[:-k])
        if self.n_importance > 1:
            return loss, None, None
        return loss, nll, kl

    def _state_tensors(self):
        """The module's floating-point parameters and buffers (kept: a run never
        replaces them)."""
        if self._floating_state is None:
            module = self.module
            self._floating_state = [
                t for t in (*module.parameters(), *module.buffers())
                if t.is_floating_point() and t.numel()
            ]
        return self._floating_state

    def _set_training(self, mode):
        """``module.train(mode)``: each submodule's ``training`` flag set in one flat
        loop (kept for the run), or ``train`` itself when a submodule overrides it."""
        if self._submodules is None:
            submodules = list(self.module.modules())
            plain = all(type(m).train is torch.nn.Module.train for m in submodules)
            self._submodules = submodules if plain else ()
        if not self._submodules:
            self.module.train(mode)
            return
        for submodule in self._submodules:
            object.__setattr__(submodule, "training", mode)

    def _probe_loss(self, probe, beta, seed):
        """The float32 loss on the probe rows with fixed noise, on the device (no sync)."""
        noise = RandomNoise(torch.Generator(device=probe.device).manual_seed(seed), probe.device)
        xb, cb = probe.batch(slice(None))
        kwargs = {} if cb is None else {"c": cb}
        with torch.inference_mode():
            return self.module.loss(
                xb, noise, beta=beta, free_bits=self.free_bits, n_importance=self.n_importance,
                **kwargs,
            )[0]

    def _elbo_form(self):
        """Whether the step's loss is mean(nll + beta * kl) (the module's own ``loss``)."""
        return (
            self.free_bits == 0
            and self.n_importance == 1
            and getattr(type(self.module), "loss", None) is VAEModule.loss
        )

    @torch.inference_mode()
    def validation_loss(self, data, beta, seed, precision=None):
        """Return the objective on ``data`` with noise drawn from a fixed ``seed``.

        The same noise every epoch makes epochs comparable for early stopping.
        Conditions are never dropped here. ``precision`` overrides the
        trainer's (e.g. "float32", as inference computes).
        """
        self.module.eval()
        device = data.device
        noise = RandomNoise(torch.Generator(device=device).manual_seed(seed), device)
        total = torch.zeros((), device=device)
        for start in range(0, len(data), self.batch_size):
            xb, cb = data.batch(slice(start, start + self.batch_size))
            with autocast(device, precision or self.precision):
                loss = self.loss(xb, noise, beta, cb)[0]
            total += loss.float() * xb.shape[0]
        return total.item() / len(data)


class SingleProcess:
    """The strategy of a run on this process alone (see :mod:`skvae.distributed` for DDP).

    A strategy places the data (:meth:`start`), gives each epoch its
    generator, runs each step's loss and the epoch's one synchronisation,
    and computes the validation loss.

    Examples
    --------
    >>> strategy = SingleProcess()
    >>> strategy.local_batch_size(128), strategy.is_writer, strategy.compiles
    (128, True, True)
    """

    is_writer = True
    #: Whether the trainer's ``compile`` option applies under this strategy.
    compiles = True

    def start(self, trainer, data, validation, seed):
        """Return the (data, validation) this process trains and validates on."""
        return data, validation

    def finish(self, trainer):
        """Undo what :meth:`start` did to the trainer (nothing here)."""

    def begin_epoch(self, trainer, epoch):
        """Prepare epoch ``epoch`` (nothing here)."""

    def local_batch_size(self, batch_size):
        return batch_size

    def generator(self, trainer):
        """The generator of this epoch's permutation, noise and label dropout."""
        return trainer.generator

    @staticmethod
    def step_loss(trainer, forward, xb, beta, cb):
        """The loss tuple of one training step."""
        return forward(xb, beta, cb)

    def end_epoch(self, module, totals, n, checks):
        """The epoch's mean losses and its checks, as floats: the one host synchronisation."""
        return torch.cat([totals / n, checks]).tolist()

    def validation_loss(self, trainer, data, beta, seed):
        return trainer.validation_loss(data, beta, seed)

    def any_rank(self, flag):
        """Whether ``flag`` holds on any process (here: on this one)."""
        return flag


# --------------------------------------------------------------- callbacks
class EarlyStopping:
    """Stop when a monitored loss has not improved by ``tol`` for ``patience`` epochs.

    A callback of :func:`run`. As in scikit-learn's MLP: an epoch counts as
    an improvement when its loss is below ``best - tol``. It monitors the
    validation loss when there is one, else the training loss, and starts
    comparing after the KL warm-up (while beta ramps, losses are not
    comparable). With ``restore_best``, the best weights are kept (as
    device-side copies) and put back when the run ends.
    """

    def __init__(self, tol, patience, restore_best):
        self.tol = tol
        self.patience = patience
        self.restore_best = restore_best
        self.best = math.inf
        self.bad_epochs = 0
        self.best_state = None

    def on_epoch_end(self, run, record):
        if run.epoch < run.schedule.warmup_epochs:
            self.reset()
            return False
        loss = record["val_loss"] if record["val_loss"] is not None else record["loss"]
        return self.update(loss, run.module)

    def on_train_end(self, run):
        if self.best_state is not None and run.outcome != "failed":
            run.module.load_state_dict(self.best_state)

    def update(self, loss, module):
        """Record one epoch's loss; return True when training should stop."""
        self.bad_epochs = 0 if loss < self.best - self.tol else self.bad_epochs + 1
        if loss < self.best:
            self.best = loss
            if self.restore_best:
                self.best_state = Snapshot(module).weights
        return self.bad_epochs >= self.patience

    def reset(self):
        """Forget the best loss."""
        self.best, self.bad_epochs, self.best_state = math.inf, 0, None


class ProgressBar:
    """A tqdm bar over the epochs of a run, with the last losses (``verbose > 0``)."""

    def on_train_begin(self, run):
        from tqdm.auto import tqdm

        total = run.stop_epoch - run.first_epoch
        self.bar = tqdm(total=total, disable=not run.is_writer, desc="skvae fit", unit="epoch")

    def on_epoch_end(self, run, record):
        self.bar.update(1)
        self.bar.set_postfix(
            {k: f"{record[k]:.4g}" for k in ("loss", "val_loss") if record.get(k) is not None}
        )

    def on_train_end(self, run):
        self.bar.close()


def _call(callback, hook, *args):
    """Call ``callback.hook(*args)`` if it has the hook; name the callback on failure."""
    method = getattr(callback, hook, None)
    if method is None:
        return None
    try:
        return method(*args)
    except Exception as exc:
        if isinstance(exc, CallbackError):
            raise
        raise CallbackError.from_exception(callback, hook, exc) from exc


# ---------------------------------------------------------------- the loop
def run(trainer, data, schedule, strategy=None, callbacks=(), *, validation=None, result=None,
        estimator=None, fitted=None):
    """Train over the epochs of ``schedule``; return a :class:`RunResult`.

    Parameters
    ----------
    trainer : Trainer
    data : TrainingData
        Device-side training data (see :mod:`skvae._data`).
    schedule : Schedule
    strategy : SingleProcess, skvae.distributed.DataParallel or None, default=None
        None trains on this process alone.
    callbacks : sequence, default=()
        Objects with any of ``on_train_begin(run)``, ``on_epoch_begin(run)``,
        ``on_epoch_end(run, record)`` (a true return value stops the run
        after this epoch) and ``on_train_end(run)`` (always called, also
        when the run fails), called in order with a :class:`TrainingRun`.
        An exception in a callback ends the run with a
        :class:`skvae.callbacks.CallbackError` naming it.
    validation : TrainingData or None, default=None
        Device-side validation data: its loss (fixed noise) is in each
        record as ``val_loss``.
    result : RunResult or None, default=None
        The state a resumed run starts from (``lr_scale``, ``halvings``).
    estimator, fitted : default=None
        For the callbacks: the estimator being fitted, and a function of the
        history giving its fitted attributes (:meth:`TrainingRun.fitted_attributes`).

    Returns
    -------
    result : RunResult
        ``result.history`` holds one dict per epoch: epoch, loss,
        reconstruction, kl, beta, learning_rate, val_loss, seconds, the
        trainer's :attr:`Trainer.epoch_extras`, and ``divergences`` (a list
        of str) for an epoch trained again after a divergence.

    Raises
    ------
    FloatingPointError
        On a non-finite loss, weights or outputs, unless restored: with
        ``schedule.on_divergence="restore"``, the state of the last completed
        epoch (weights, optimizer, generator) is put back, the learning rate
        halved for the rest of the run and the epoch trained again, at most
        :data:`MAX_LR_HALVINGS` times in all; each restore is a warning.
    KeyboardInterrupt
        When interrupted before the first epoch completed. After that, an
        interrupt ends the run with the state of the last completed epoch
        (``result.interrupted``).
    """
    strategy = SingleProcess() if strategy is None else strategy
    result = RunResult() if result is None else result
    seed = schedule.val_seed
    data, validation = strategy.start(trainer, data, validation, seed)
    probe = data.head(PROBE_ROWS) if validation is None else None
    state = TrainingRun(trainer, schedule, result, estimator=estimator, fitted=fitted,
                        is_writer=strategy.is_writer)
    started = []
    try:
        for callback in callbacks:
            started.append(callback)
            _call(callback, "on_train_begin", state)
        _epochs(trainer, data, validation, probe, strategy, callbacks, state)
        if probe is not None and trainer.probe_loss is None and result.history:
            _check_final_outputs(trainer, probe, strategy, state)
        state.outcome = "stopped" if result.stopped else (
            "interrupted" if result.interrupted else "completed"
        )
    except BaseException:
        state.outcome = "failed"
        raise
    finally:
        strategy.finish(trainer)
        for callback in started:
            _call(callback, "on_train_end", state)
    return result


def _epochs(trainer, data, validation, probe, strategy, callbacks, state):
    """The loop over epochs of :func:`run` (restores the last good epoch on a Ctrl-C).

    The state is copied before each epoch but the first (which starts from
    the copy taken before the loop): an epoch that diverges, or is
    interrupted, goes back to it. The last epoch's state needs no copy.
    """
    schedule, result = state.schedule, state.result
    snapshot = None
    training = False  # whether the module is in the middle of an epoch
    try:
        snapshot = Snapshot(trainer.module, trainer.optimizer, trainer.generator, tag=0)
        notes = []
        epoch = schedule.first_epoch
        while epoch < schedule.stop_epoch:
            if snapshot.tag != len(result.history):  # the state moved on since the copy
                snapshot.take(len(result.history))
            state.epoch = epoch
            for callback in callbacks:
                _call(callback, "on_epoch_begin", state)
            training = True
            record, problem = _train_one_epoch(trainer, data, validation, probe, strategy, state)
            if problem is not None:
                learning_rate = record["learning_rate"]
                _handle_divergence(problem, epoch, schedule, learning_rate, result)
                snapshot.restore()
                training = False
                del result.history[snapshot.tag :]
                notes.append(
                    f"{problem} at learning_rate {learning_rate:.4g}; restored "
                    f"{_state_name(epoch, schedule.first_epoch)} and halved the learning rate"
                )
                continue
            if notes:
                record["divergences"], notes = notes, []
            result.history.append(record)
            training = False
            epoch += 1
            state.will_stop = epoch >= schedule.stop_epoch
            stop = False
            for callback in callbacks:
                stop = bool(_call(callback, "on_epoch_end", state, record)) or stop
                state.will_stop = state.will_stop or stop
            if strategy.any_rank(stop):  # every rank stops at the same epoch
                result.stopped = True
                break
    except KeyboardInterrupt:
        if training:
            if snapshot is None or snapshot.tag == 0:
                raise  # no epoch completed: the fit puts back the state it started from
            # Back to the end of the last completed epoch: never half an epoch.
            snapshot.restore()
            del result.history[snapshot.tag :]
        elif snapshot is None or not result.history:
            raise
        result.interrupted = True


def _train_one_epoch(trainer, data, validation, probe, strategy, state):
    """Train epoch ``state.epoch``; return its record and what diverged (or None)."""
    schedule, epoch = state.schedule, state.epoch
    t0 = time.perf_counter()
    beta = schedule.beta(epoch)
    learning_rate = schedule.learning_rate(epoch) * state.result.lr_scale
    for group in trainer.optimizer.param_groups:
        group["lr"] = learning_rate
    # The probe guards the state a divergence goes back to: every epoch's under
    # on_divergence="restore"; else (a later non-finite loss raises anyway) the
    # last epoch's only, here or, for a run that stops earlier, in run.
    if schedule.on_divergence != "restore" and epoch + 1 < schedule.stop_epoch:
        probe = None
    with module_lock(trainer.module):
        strategy.begin_epoch(trainer, epoch)
        loss, nll, kl = trainer.train_epoch(data, beta, strategy, probe, schedule.val_seed)
        val_loss = None
        if validation is not None:
            val_loss = strategy.validation_loss(trainer, validation, beta, schedule.val_seed)
    record = {
        "epoch": epoch + 1,
        "loss": loss,
        "reconstruction": nll,
        "kl": kl,
        "beta": beta,
        "learning_rate": learning_rate,
        "val_loss": val_loss,
        "seconds": time.perf_counter() - t0,
        **trainer.epoch_extras,
    }
    return record, _divergence(loss, val_loss, trainer.weights_finite, trainer.probe_loss)


def _check_final_outputs(trainer, probe, strategy, state):
    """Raise FloatingPointError unless the final state's loss on the probe rows is finite.

    For a run that ended before its last planned epoch (stopped by a
    callback, or interrupted), whose last epoch was not probed.
    """
    schedule = state.schedule
    epoch = state.result.history[-1]["epoch"] - 1  # the last completed epoch
    with module_lock(trainer.module):
        loss = float(trainer._probe_loss(probe, schedule.beta(epoch), schedule.val_seed))
    if strategy.any_rank(not math.isfinite(loss)):
        raise FloatingPointError(
            f"{_divergence(0.0, None, True, loss if not math.isfinite(loss) else math.nan)} "
            f"at epoch {epoch + 1}. Lower learning_rate, set clip_grad_norm, or scale the "
            "data (e.g. StandardScaler)."
        )
    trainer.probe_loss = loss


def _divergence(loss, val_loss, weights_finite, probe_loss=None):
    """Describe what became non-finite in an epoch, or return None."""
    if not math.isfinite(loss):
        return f"The training loss became {loss}"
    if not weights_finite:
        return "The model's weights became non-finite (a non-finite gradient)"
    if val_loss is not None and not math.isfinite(val_loss):
        return f"The validation loss became {val_loss}"
    if probe_loss is not None and not math.isfinite(probe_loss):
        return (
            f"The trained model's loss on the first training rows became {probe_loss} "
            "(weights too large for finite outputs)"
        )
    return None


def _state_name(epoch, first_epoch):
    """The state a divergence at (0-based) ``epoch`` goes back to, in words."""
    if epoch == first_epoch:
        return "the weights this fit started from" if epoch else "the initial weights"
    return f"the weights of epoch {epoch}"


def _handle_divergence(problem, epoch, schedule, learning_rate, result):
    """Raise FloatingPointError, or halve ``result.lr_scale`` and warn."""
    where = f"{problem} at epoch {epoch + 1}"
    if schedule.on_divergence != "restore":
        raise FloatingPointError(
            f"{where}. Lower learning_rate (it was {learning_rate:.4g}), set "
            "clip_grad_norm, or scale the data (e.g. StandardScaler); or set "
            "on_divergence='restore' to go back to the last good epoch and halve "
            "the learning rate."
        )
    if result.halvings >= MAX_LR_HALVINGS:
        raise FloatingPointError(
            f"{where}, although on_divergence='restore' already halved the learning "
            f"rate {result.halvings} times (to {learning_rate:.4g}). Lower learning_rate, "
            "set clip_grad_norm, or scale the data (e.g. StandardScaler)."
        )
    result.lr_scale *= 0.5
    result.halvings += 1
    warnings.warn(
        f"{where} (learning_rate {learning_rate:.4g}); on_divergence='restore': "
        f"restored {_state_name(epoch, schedule.first_epoch)} and halved the learning rate "
        f"to {learning_rate * 0.5:.4g} (halving {result.halvings} of at most "
        f"{MAX_LR_HALVINGS}).",
        RuntimeWarning,
        stacklevel=user_stacklevel(),  # the caller of the estimator's fit
    )
