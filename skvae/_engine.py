"""The training engine: epochs over device-resident data, early stopping.

The whole training set is moved to the device once. Each epoch draws a
permutation from a seeded :class:`torch.Generator` and takes batches by index;
there is no DataLoader and no host synchronisation inside the step: the
losses of each step are added into a small device tensor that is read once per
epoch, together with one flag saying whether the weights are still finite.

After every completed epoch, :func:`run` keeps a device-side copy of the
weights, the optimizer's state and the generator's state (a
:class:`Snapshot`): a divergence (``on_divergence="restore"``) or a
KeyboardInterrupt goes back to it, so that the model is never left half-way
through an epoch. It costs one copy of the parameters and of the optimizer's
state in device memory, and no host synchronisation.

Launched by torchrun, :func:`run` trains data-parallel (see
:mod:`skvae.distributed`): each rank trains on its shard of the rows through
DistributedDataParallel, with ``batch_size // world_size`` rows per step, and
the epoch's sums are all-reduced in the one synchronisation of the epoch.
"""

import math
import threading
import time
import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from . import _state, distributed
from ._model import RandomNoise, VAEModule
from ._step import EpochSums, StepForward, autocast

#: How many times ``on_divergence="restore"`` may halve the learning rate in
#: one call of :func:`run` before it gives up with a FloatingPointError.
MAX_LR_HALVINGS = 5
DIVERGENCE_OPTIONS = ("raise", "restore")
#: Training rows on which :func:`run` checks, after its last epoch, that the
#: weights it returns give finite outputs (a forward pass, in float32).
FINAL_CHECK_ROWS = 32

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


def to_tensor(array, device, rows=None):
    """Copy a 2-D numpy array (or a slice of a memmap) to a float32 tensor on ``device``.

    With ``rows``, the result is padded with zero rows to exactly that many.
    """
    array = np.ascontiguousarray(array, dtype=np.float32)
    if rows is not None and array.shape[0] < rows:
        padded = np.zeros((rows,) + array.shape[1:], dtype=np.float32)
        padded[: array.shape[0]] = array
        array = padded
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).to(device)


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


@dataclass
class EarlyStopping:
    """Stop when a monitored loss has not improved by ``tol`` for ``patience`` epochs.

    As in scikit-learn's MLP: an epoch counts as an improvement when its loss
    is below ``best - tol``. With ``restore_best``, the best weights are kept
    (as device-side copies) so that they can be restored at the end.
    """

    tol: float
    patience: int
    restore_best: bool
    best: float = math.inf
    bad_epochs: int = 0
    best_state: dict = field(default=None, repr=False)

    def update(self, loss, module):
        """Record one epoch's loss; return True when training should stop."""
        self.bad_epochs = self._bad_epochs_after(loss)
        if loss < self.best:
            self.best = loss
            if self.restore_best:
                self.best_state = {
                    k: v.detach().clone() for k, v in module.state_dict().items()
                }
        return self.bad_epochs >= self.patience

    def would_stop(self, loss):
        """Whether :meth:`update` with ``loss`` would stop training (changes nothing)."""
        return self._bad_epochs_after(loss) >= self.patience

    def _bad_epochs_after(self, loss):
        return 0 if loss < self.best - self.tol else self.bad_epochs + 1

    def reset(self):
        """Forget the best loss (while beta still ramps, losses are not comparable)."""
        self.best, self.bad_epochs, self.best_state = math.inf, 0, None


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
        With a per-row condition tensor ``C``, each training row's condition
        is replaced by zeros (the "unknown" condition) with this probability,
        drawn from ``generator`` at every step (label dropout).
    precision : {"float32", "bf16-mixed"}, default="float32"
        "bf16-mixed" runs the forward passes of training and validation
        under bfloat16 autocast (see :mod:`skvae._step`).
    compile : bool or str, default=False
        Compile the training step's forward and backward with
        :func:`torch.compile` (True: mode "default"; or a mode name such as
        "reduce-overhead", which replays them as CUDA graphs on a GPU). Not
        applied under data-parallel training (a warning says so).

    Attributes
    ----------
    epoch_extras : dict
        Mean per sample, over the last training epoch, of each extra term
        the module's ``loss`` returned (as a fourth element, a dict of
        per-sample tensors); empty when it returned none.
    weights_finite : bool
        Whether every floating-point tensor of the module's state was finite
        at the end of the last training epoch.
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
        self._forward = None  # a StepForward, made at the first epoch (on X's device)
        self.epoch_extras = {}
        self.weights_finite = True
        #: Set by :func:`run` during a data-parallel fit (a
        #: :class:`skvae.distributed.DataParallel`): training steps then go
        #: through DDP, and the epoch's sums are all-reduced.
        self.data_parallel = None

    def _loss(self, x, noise, beta, c=None):
        kwargs = {} if c is None else {"c": c}
        return self.module.loss(
            x,
            noise,
            beta=beta,
            free_bits=self.free_bits,
            n_importance=self.n_importance,
            **kwargs,
        )

    def _drop_conditions(self, cb):
        """Zero each row of ``cb`` with probability ``condition_dropout`` (on the device)."""
        if not self.condition_dropout:
            return cb
        keep = torch.rand(
            (cb.shape[0], 1), generator=self.generator, device=cb.device
        ) >= self.condition_dropout
        return cb * keep

    def train_epoch(self, X, beta, C=None):
        """Train one epoch on device tensor ``X``; return mean loss, nll, kl.

        ``C`` is an optional device tensor of per-row conditions, batched
        with the same permutation as ``X``. The single host synchronisation
        is the final ``tolist()``, which also reads whether every weight is
        still finite (:attr:`weights_finite`): a non-finite gradient makes
        the weights non-finite at the step that follows, so that one check
        per epoch catches it without a per-step synchronisation. nll and kl
        are None under the IWAE objective, which does not split into them.
        """
        module, optimizer = self.module, self.optimizer
        data_parallel = getattr(self, "data_parallel", None)
        module.train()
        n = X.shape[0]
        batch_size = self.batch_size
        if data_parallel is not None:  # the global batch is split over the ranks
            batch_size = data_parallel.local_batch_size(batch_size)
        batch_size = min(batch_size, n)
        perm = torch.randperm(n, generator=self.generator, device=X.device)
        forward = self._step_forward(X.device, data_parallel)
        sums = EpochSums(beta, elbo_form=self._elbo_form())
        for start, stop in _batch_bounds(n, batch_size):
            index = perm[start:stop]
            xb = X[index]
            cb = None if C is None else self._drop_conditions(C[index])
            # Before the forward pass: a CUDA-graph replay of the compiled step
            # may reuse the memory of the last step's gradients.
            optimizer.zero_grad(set_to_none=True)
            if data_parallel is None:
                out = forward(xb, beta, cb)
            else:
                with autocast(X.device, self.precision):
                    out = data_parallel.step_loss(self, xb, forward.noise, beta, cb)
            out[0].backward()
            if self.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(module.parameters(), self.clip_grad_norm)
            optimizer.step()
            sums.add(out, stop - start)
        module.eval()
        with torch.no_grad():
            if data_parallel is not None:
                data_parallel.sync_buffers(module)
            tensors = [t for t in module.state_dict().values() if t.is_floating_point()]
            finite = torch.stack([torch.isfinite(t).all() for t in tensors]).all()
            totals = sums.totals()
            if data_parallel is None:
                values = torch.cat([totals / n, finite.to(totals.dtype).reshape(1)]).tolist()
            else:  # means over all ranks' rows, finite on every rank
                values = data_parallel.reduce_epoch(totals, n, finite)
        extra_names = sums.extra_names
        self.weights_finite = bool(values.pop())
        loss, nll, kl = values[:3]
        self.epoch_extras = dict(zip(extra_names, values[3:]))
        if self.n_importance > 1:
            return loss, None, None
        return loss, nll, kl

    def _elbo_form(self):
        """Whether the step's loss is mean(nll + beta * kl) (the module's own ``loss``)."""
        return (
            self.free_bits == 0
            and self.n_importance == 1
            and getattr(type(self.module), "loss", None) is VAEModule.loss
        )

    def _step_forward(self, device, data_parallel=None):
        """The :class:`~skvae._step.StepForward` of this trainer (made once)."""
        if self._forward is None:
            compile = self.compile
            if compile and data_parallel is not None:
                warnings.warn(
                    "compile is not applied under data-parallel training; the steps run "
                    "eagerly through DistributedDataParallel.",
                    UserWarning,
                    stacklevel=2,
                )
                compile = False
            self._forward = StepForward(
                self._loss,
                self.generator,
                device,
                precision=self.precision,
                compile=compile,
            )
        return self._forward

    @torch.inference_mode()
    def validation_loss(self, X, beta, seed, C=None, precision=None):
        """Return the objective on ``X`` with noise drawn from a fixed ``seed``.

        The same noise every epoch makes epochs comparable for early stopping.
        ``C`` holds the per-row conditions (never dropped here). ``precision``
        overrides the trainer's (e.g. "float32", as inference computes).
        """
        self.module.eval()
        noise = RandomNoise(torch.Generator(device=X.device).manual_seed(seed), X.device)
        total = torch.zeros((), device=X.device)
        for start in range(0, X.shape[0], self.batch_size):
            xb = X[start : start + self.batch_size]
            cb = None if C is None else C[start : start + self.batch_size]
            with autocast(X.device, precision or self.precision):
                loss = self._loss(xb, noise, beta, cb)[0]
            total += loss.float() * xb.shape[0]
        return total.item() / X.shape[0]


class Snapshot:
    """The training state after a completed epoch: weights, optimizer and generator.

    Device-side copies (no host synchronisation), taken by :meth:`take` and
    put back by :meth:`restore`. ``n_records`` is the number of history
    records of the run at the time of the copy.

    Parameters
    ----------
    trainer : Trainer
        Whose module, optimizer and generator are copied; a first copy is
        taken at once, with ``n_records`` 0.

    Examples
    --------
    >>> import torch
    >>> module = torch.nn.Linear(2, 1)
    >>> optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    >>> trainer = Trainer(module, optimizer, torch.Generator(), batch_size=4)
    >>> snapshot = Snapshot(trainer)
    >>> before = module.weight.detach().clone()
    >>> with torch.no_grad():
    ...     _ = module.weight.fill_(float("nan"))
    >>> snapshot.restore()
    >>> bool(torch.equal(module.weight, before)), snapshot.n_records
    (True, 0)
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self.state = None
        self.take(0)

    @property
    def n_records(self):
        """History records of the run when the copy was taken."""
        return self.state[0]

    def take(self, n_records):
        """Copy the current state, after ``n_records`` history records."""
        trainer = self.trainer
        state = (
            n_records,
            {k: v.detach().clone() for k, v in trainer.module.state_dict().items()},
            _state.clone(trainer.optimizer.state_dict()),
            trainer.generator.get_state(),
        )
        self.state = state  # one assignment: an interrupt sees the old or the new copy

    def restore(self):
        """Put the copied weights, optimizer state and generator state back."""
        _, module_state, optimizer_state, generator_state = self.state
        trainer = self.trainer
        trainer.module.load_state_dict(module_state)
        # load_state_dict may keep the tensors it is given: give it copies.
        trainer.optimizer.load_state_dict(_state.clone(optimizer_state))
        trainer.generator.set_state(generator_state)
        trainer.module.eval()


@dataclass
class RunResult:
    """What :func:`run` did.

    Attributes
    ----------
    history : list of dict
        One record per completed epoch.
    lr_scale : float
        Factor applied to the scheduled learning rate at the end (halved at
        each divergence under ``on_divergence="restore"``).
    halvings : int
        Number of such halvings so far.
    interrupted : bool
        Whether a KeyboardInterrupt ended the run (after at least one
        completed epoch; the model is that of the last completed epoch, or
        the best one with early stopping on validation data).
    stopped : bool
        Whether early stopping ended the run.
    """

    history: list = field(default_factory=list)
    lr_scale: float = 1.0
    halvings: int = 0
    interrupted: bool = False
    stopped: bool = False


def _divergence(loss, val_loss, weights_finite, final_loss=None):
    """Describe what became non-finite in an epoch, or return None."""
    if not math.isfinite(loss):
        return f"The training loss became {loss}"
    if not weights_finite:
        return "The model's weights became non-finite (a non-finite gradient)"
    if val_loss is not None and not math.isfinite(val_loss):
        return f"The validation loss became {val_loss}"
    if final_loss is not None and not math.isfinite(final_loss):
        return (
            f"The trained model's loss on the first training rows became {final_loss} "
            "(weights too large for finite outputs)"
        )
    return None


def _validation_loss(trainer, data_parallel, X, C, beta, seed, precision=None):
    """The objective on ``X`` with fixed noise (all-reduced over the ranks)."""
    if data_parallel is not None:
        return data_parallel.validation_loss(trainer, X, beta, seed, C, precision=precision)
    return trainer.validation_loss(X, beta, seed, C, precision=precision)


def _ends_run(epoch, stop_epoch, stopper, warmup_epochs, loss):
    """Whether the (0-based) ``epoch`` with training ``loss`` is the run's last."""
    if epoch + 1 >= stop_epoch:
        return True
    return stopper is not None and epoch >= warmup_epochs and stopper.would_stop(loss)


def run(
    trainer,
    X_train,
    X_val,
    *,
    first_epoch,
    n_epochs,
    beta_schedule,
    lr_schedule,
    stopper,
    warmup_epochs,
    val_seed,
    verbose,
    C_train=None,
    C_val=None,
    on_divergence="raise",
    lr_scale=1.0,
    halvings=0,
    on_epoch_end=None,
    data_parallel="auto",
):
    """Train for up to ``n_epochs`` epochs; return a :class:`RunResult`.

    Parameters
    ----------
    trainer : Trainer
    X_train, X_val : Tensor or None
        Device-resident training data and optional validation data.
    first_epoch : int
        Global index of the first epoch (for the beta schedule).
    n_epochs : int
    beta_schedule : callable
        Maps a global epoch index to beta.
    lr_schedule : callable
        Maps a global epoch index to the learning rate.
    stopper : EarlyStopping or None
        Monitors the validation loss when ``X_val`` is given, else the
        training loss.
    warmup_epochs : int
        Global epochs during which beta still ramps; the stopper starts
        comparing losses after them.
    val_seed : int
    verbose : int
        Shows a tqdm progress bar over epochs when positive.
    C_train, C_val : Tensor or None, default=None
        Device-resident per-row conditions of ``X_train`` and ``X_val``
        (conditional models), batched with the same permutation.
    on_divergence : {"raise", "restore"}, default="raise"
        When the training loss, the weights or the validation loss of an
        epoch are not finite: "raise" a FloatingPointError naming the epoch;
        or "restore" the state of the last completed epoch (weights,
        optimizer and generator), halve the learning rate for the rest of
        the run and train that epoch again, at most :data:`MAX_LR_HALVINGS`
        times in all (then a FloatingPointError). Each restore is a
        warning and is listed under ``"divergences"`` in the record of the
        epoch trained again.
    lr_scale : float, default=1.0
        Initial factor on the scheduled learning rate (a resumed run).
    halvings : int, default=0
        Halvings already done (a resumed run).
    on_epoch_end : callable or None, default=None
        Called as ``on_epoch_end(result, finished)`` after each completed
        epoch, with the :class:`RunResult` so far and whether that epoch is
        the last one (early stop or ``n_epochs`` reached); used to write
        checkpoints.
    data_parallel : "auto", skvae.distributed.DataParallel or None, default="auto"
        Train data-parallel over a torch.distributed process group (see
        :mod:`skvae.distributed`). "auto" follows
        :func:`skvae.distributed.mode`: data-parallel when a process group
        is initialised or torchrun's environment variables are set (then it
        starts the process group), unless ``SKVAE_DISTRIBUTED=0`` or
        :func:`skvae.distributed.data_parallel` says otherwise; None
        trains on this process alone. Every rank passes the same ``X_train``
        and ``X_val`` and trains on its shard of them through
        DistributedDataParallel; the losses of each epoch are all-reduced,
        so that every rank returns the same history and weights. Only rank
        0 calls ``on_epoch_end`` and shows a progress bar.

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
        On a non-finite loss or weights, unless restored (see
        ``on_divergence``).
    KeyboardInterrupt
        When interrupted before the first epoch completed. After that, an
        interrupt ends the run with the state of the last completed epoch
        (``result.interrupted``).
    """
    if on_divergence not in DIVERGENCE_OPTIONS:
        raise ValueError(
            f"on_divergence must be one of {DIVERGENCE_OPTIONS}, got {on_divergence!r}."
        )
    if isinstance(data_parallel, str) and data_parallel == "auto":
        data_parallel = distributed.for_run(getattr(X_train, "device", torch.device("cpu")))
    if data_parallel is not None:
        data_parallel.check_same_data(X_train, X_val, C_train, C_val)
        seed = data_parallel.common_seed(val_seed)  # rank 0's, for random_state=None
        X_train, C_train = data_parallel.shard_train(X_train, C_train, seed)
        X_val, C_val = data_parallel.shard_validation(X_val, C_val)
        if not data_parallel.is_writer:
            on_epoch_end, verbose = None, 0
        data_parallel.attach(trainer, seed)
    result = RunResult(lr_scale=lr_scale, halvings=halvings)
    history = result.history
    stop_epoch = first_epoch + n_epochs
    bar = tqdm(total=n_epochs, disable=not verbose, desc="skvae fit", unit="epoch")
    snapshot = None
    try:
        snapshot = Snapshot(trainer)
        notes = []
        epoch = first_epoch
        while epoch < stop_epoch:
            t0 = time.perf_counter()
            beta = beta_schedule(epoch)
            learning_rate = lr_schedule(epoch) * result.lr_scale
            for group in trainer.optimizer.param_groups:
                group["lr"] = learning_rate
            trainer.weights_finite = True
            with module_lock(trainer.module):
                if data_parallel is not None:
                    data_parallel.begin_epoch(trainer, epoch)
                if C_train is None:
                    loss, nll, kl = trainer.train_epoch(X_train, beta)
                else:
                    loss, nll, kl = trainer.train_epoch(X_train, beta, C_train)
                val_loss = None
                if X_val is not None:
                    val_loss = _validation_loss(trainer, data_parallel, X_val, C_val, beta, val_seed)
                final_loss = None
                if X_val is None and _ends_run(epoch, stop_epoch, stopper, warmup_epochs, loss):
                    # Nothing has run the model since its last step: check that
                    # the weights this run returns give finite outputs.
                    rows = slice(0, FINAL_CHECK_ROWS)
                    C_probe = None if C_train is None else C_train[rows]
                    final_loss = _validation_loss(
                        trainer, data_parallel, X_train[rows], C_probe, beta, val_seed,
                        precision="float32",  # as inference computes
                    )
            problem = _divergence(
                loss, val_loss, getattr(trainer, "weights_finite", True), final_loss
            )
            if problem is not None:
                _handle_divergence(problem, epoch, first_epoch, learning_rate, on_divergence, result)
                snapshot.restore()
                del history[snapshot.n_records :]
                notes.append(
                    f"{problem} at learning_rate {learning_rate:.4g}; restored "
                    f"{_state_name(epoch, first_epoch)} and halved the learning rate"
                )
                continue
            record = {
                "epoch": epoch + 1,
                "loss": loss,
                "reconstruction": nll,
                "kl": kl,
                "beta": beta,
                "learning_rate": learning_rate,
                "val_loss": val_loss,
                "seconds": time.perf_counter() - t0,
                **getattr(trainer, "epoch_extras", {}),
            }
            if notes:
                record["divergences"], notes = notes, []
            history.append(record)
            stop = False
            if stopper is not None:
                if epoch < warmup_epochs:
                    stopper.reset()
                else:
                    stop = stopper.update(val_loss if val_loss is not None else loss, trainer.module)
            snapshot.take(len(history))
            bar.update(1)
            bar.set_postfix(
                {k: f"{v:.4g}" for k, v in record.items() if k in ("loss", "val_loss") and v is not None}
            )
            epoch += 1
            if on_epoch_end is not None:
                on_epoch_end(result, stop or epoch >= stop_epoch)
            if stop:
                result.stopped = True
                break
    except KeyboardInterrupt:
        if snapshot is None or snapshot.n_records == 0:
            raise
        # Back to the end of the last completed epoch: never half an epoch.
        snapshot.restore()
        del history[snapshot.n_records :]
        result.interrupted = True
    finally:
        bar.close()
        if data_parallel is not None:
            data_parallel.detach(trainer)
    if stopper is not None and stopper.best_state is not None:
        trainer.module.load_state_dict(stopper.best_state)
    return result


def _state_name(epoch, first_epoch):
    """The state a divergence at (0-based) ``epoch`` goes back to, in words."""
    if epoch == first_epoch:
        return "the weights this fit started from" if epoch else "the initial weights"
    return f"the weights of epoch {epoch}"


def _handle_divergence(problem, epoch, first_epoch, learning_rate, on_divergence, result):
    """Raise FloatingPointError, or halve ``result.lr_scale`` and warn."""
    where = f"{problem} at epoch {epoch + 1}"
    if on_divergence != "restore":
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
        f"restored {_state_name(epoch, first_epoch)} and halved the learning rate to "
        f"{learning_rate * 0.5:.4g} (halving {result.halvings} of at most "
        f"{MAX_LR_HALVINGS}).",
        RuntimeWarning,
        stacklevel=6,  # the caller of the estimator's fit
    )
