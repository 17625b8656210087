"""Data-parallel training with torch.distributed and DistributedDataParallel.

Launched by ``torchrun`` (one process per GPU, or a few CPU processes), a fit
of a :class:`~skvae.VAETransformer` trains one model on all the processes:

- :func:`setup` starts the process group from torchrun's environment
  variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
  ``MASTER_PORT``) with the NCCL backend on GPUs and gloo on CPUs, unless
  the program started one already; on a GPU each process takes the device
  ``cuda:LOCAL_RANK`` (``torch.cuda.set_device``), so that ``device="auto"``
  or ``"cuda"`` means that process's own GPU.
- Every rank builds the same initial weights from the same
  ``random_state``, and DistributedDataParallel broadcasts rank 0's weights
  when it wraps the module (so ``random_state=None`` works too, except with
  ``early_stopping``, whose validation split is drawn from the seed: every
  rank must hold the same training data, which is checked at the start).
- The training rows are split into ``world_size`` disjoint shards of equal
  length: rows ``rank::world_size`` of a permutation common to all ranks,
  padded by repeating its first rows when the count does not divide (at most
  ``world_size - 1`` rows count twice). Each rank keeps only its shard for
  training, and draws each epoch's order of it (and the noise of the
  reparameterisation) from a generator seeded by (seed, rank, epoch).
- Each rank takes ``batch_size // world_size`` rows per step (at least one):
  the global batch is ``batch_size`` (rounded down to a multiple of
  ``world_size``), and DDP averages the gradients, so that a fit on two
  processes follows a fit on one process with the same ``batch_size`` in
  expectation. Every rank runs the same number of steps per epoch.
- The epoch's summed losses, row counts and the "weights are finite" flags
  are all-reduced once per epoch, with the single host synchronisation of
  the epoch; the validation loss is the all-reduced mean over the ranks'
  shards of the validation rows. Every rank therefore sees the same history,
  makes the same early-stopping and divergence decisions, and ends with the
  same weights (buffers such as batch-norm statistics are broadcast from
  rank 0 at the end of every epoch).
- Only rank 0 writes the per-epoch checkpoints (and ``skvae fit``'s
  outputs) and shows a progress bar. (The estimator's own final checkpoint
  write at the end of ``fit`` is not guarded yet: every rank writes the same
  model there, atomically.)

Who decides: :func:`mode`, that is the innermost :func:`data_parallel`
block, else the environment variable ``SKVAE_DISTRIBUTED`` ("auto", "1",
"0"), else "auto": data-parallel when a process group is initialised or
torchrun's variables are set, with more than one process. Every fit of a
script launched by torchrun is then data-parallel, and every rank must call
it with the same data: wrap a fit that only some ranks run in
``data_parallel(False)``.

On GPUs, call :func:`init` at the top of the script (or
``torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))``) so that the model
is built on the process's own GPU; ``skvae fit`` does it itself.

The module is wrapped in DDP only for the training step: the estimator's
``module_`` stays the plain module, so that pickling and :func:`skvae.save`
work as usual.
"""

import atexit
import warnings
import contextlib
import contextvars
import inspect
import math
import os

import numpy as np
import torch

from ._model import RandomNoise
from ._step import autocast

#: Environment variables that torchrun sets, all of which say "launched by torchrun".
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
DISTRIBUTED_OPTIONS = ("auto", True, False)
#: Environment variable with the default mode: "auto" (unset), "1"/"true" or "0"/"false".
ENV_VAR = "SKVAE_DISTRIBUTED"
_MODE = contextvars.ContextVar("skvae_distributed", default=None)


def _parse_mode(text):
    value = str(text).strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{ENV_VAR} must be 'auto', '1' or '0', got {text!r}.")


def mode():
    """The data-parallel mode of fits started now: "auto", True or False.

    Set by :func:`data_parallel` (innermost wins), else by the environment
    variable ``SKVAE_DISTRIBUTED`` ("auto", "1" or "0"), else "auto".

    Examples
    --------
    >>> with data_parallel(False):
    ...     mode()
    False
    """
    value = _MODE.get()
    if value is not None:
        return value
    return _parse_mode(os.environ.get(ENV_VAR, "auto"))


@contextlib.contextmanager
def data_parallel(distributed=True):
    """Set the data-parallel mode of the fits run inside the block.

    Parameters
    ----------
    distributed : {"auto", True, False}, default=True
        See :func:`setup`. ``data_parallel(False)`` trains the fits of the
        block on this process alone, under torchrun too (e.g. a small model
        that only rank 0 fits).

    Examples
    --------
    >>> from skvae import VAETransformer
    >>> with data_parallel(False):  # doctest: +SKIP
    ...     VAETransformer().fit(X)
    """
    _check_option(distributed)
    token = _MODE.set(distributed)
    try:
        yield
    finally:
        _MODE.reset(token)


def _check_option(distributed):
    if not any(distributed is o or (isinstance(o, str) and distributed == o)
               for o in DISTRIBUTED_OPTIONS):
        raise ValueError(
            f"distributed must be 'auto', True or False, got {distributed!r}."
        )


def _dist():
    import torch.distributed as dist

    return dist


def launched_by_torchrun():
    """Whether torchrun's environment variables are set.

    Examples
    --------
    >>> import os
    >>> launched_by_torchrun() == all(v in os.environ for v in TORCHRUN_VARS)
    True
    """
    return all(name in os.environ for name in TORCHRUN_VARS)


def is_initialized():
    """Whether a torch.distributed process group is running in this process."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized()


def rank():
    """This process's rank, 0 without a process group."""
    return _dist().get_rank() if is_initialized() else 0


def is_writer():
    """Whether this process writes files: rank 0, or any process outside torch.distributed."""
    return rank() == 0


def _wants_cuda(device):
    if isinstance(device, str) and device == "auto":
        return torch.cuda.is_available()
    try:
        return torch.device(device).type == "cuda"
    except (RuntimeError, TypeError):
        return False  # the estimator's own check reports it


def _local_cuda_device(device):
    """Make ``cuda:LOCAL_RANK`` the current device when ``device`` names no index."""
    if not _wants_cuda(device) or not torch.cuda.is_available():
        return
    explicit = not (isinstance(device, str) and device == "auto")
    if explicit and torch.device(device).index is not None:
        return  # an explicit cuda:i: the caller chose
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is not None:
        torch.cuda.set_device(int(local_rank) % torch.cuda.device_count())


def setup(distributed, device):
    """Start (or join) data-parallel training; return a :class:`DataParallel` or None.

    Parameters
    ----------
    distributed : {"auto", True, False}
        "auto": data-parallel when a process group is initialised, or when
        torchrun's environment variables are set (then the process group is
        started), with more than one process. True: the same, but an error
        when neither holds. False: never.
    device : str or torch.device
        The estimator's ``device``: the backend is NCCL for CUDA and gloo
        for the CPU; with CUDA, ``cuda:LOCAL_RANK`` becomes the current
        device unless ``device`` names an index.

    Returns
    -------
    data_parallel : DataParallel or None
        None when training is not distributed (or has one process).

    Raises
    ------
    ValueError
        ``distributed`` is not one of the options, or is True outside torchrun
        without a process group.
    RuntimeError
        torch.distributed is not available in this build of torch.

    Examples
    --------
    >>> setup(False, "cpu") is None
    True
    """
    _check_option(distributed)
    if distributed is False:
        return None
    dist = _dist()
    launched = launched_by_torchrun()
    if not dist.is_available():
        if distributed is True:
            raise RuntimeError(
                "distributed=True, but this build of torch has no torch.distributed."
            )
        return None
    if not dist.is_initialized():
        if not launched:
            if distributed is True:
                raise ValueError(
                    "distributed=True needs a torch.distributed process group: launch the "
                    "program with torchrun (e.g. `torchrun --nproc-per-node 2 script.py`), "
                    "which sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, or call "
                    "torch.distributed.init_process_group first."
                )
            return None
        if int(os.environ["WORLD_SIZE"]) == 1 and distributed == "auto":
            return None
        cuda = _wants_cuda(device)
        _local_cuda_device(device)
        backend = "nccl" if cuda and dist.is_nccl_available() else "gloo"
        if cuda and torch.cuda.is_available():
            device_id = torch.device("cuda", torch.cuda.current_device())
            dist.init_process_group(backend, device_id=device_id)
        else:
            dist.init_process_group(backend)
        atexit.register(_shutdown)
    else:
        _local_cuda_device(device)
    if dist.get_world_size() == 1 and distributed == "auto":
        return None
    return DataParallel()


def init(device="auto"):
    """Start the process group of torchrun and pick this process's GPU; return the rank.

    Call it at the top of a script launched by torchrun, before building
    models on a GPU: ``cuda:LOCAL_RANK`` becomes the current device, so
    that ``device="auto"`` or ``"cuda"`` means this process's own GPU. (A
    fit starts the process group by itself, but by then a model may already
    sit on ``cuda:0``.) Outside torchrun it does nothing and returns 0.
    """
    setup("auto", device)
    return rank()


def strategy_for(device):
    """The :class:`DataParallel` strategy of a fit on ``device`` under :func:`mode`, or None.

    Raises ValueError when the module sits on a GPU that is not this
    process's own (``cuda:LOCAL_RANK``): every process would train on the
    same GPU.
    """
    data_parallel = setup(mode(), device)
    if data_parallel is None or device.type != "cuda":
        return data_parallel
    local_rank = os.environ.get("LOCAL_RANK")
    index = torch.cuda.current_device() if device.index is None else device.index
    if local_rank is not None and index != int(local_rank) % torch.cuda.device_count():
        raise ValueError(
            f"Data-parallel training on GPUs: this process (LOCAL_RANK={local_rank}) holds "
            f"its model on cuda:{index}, not on its own GPU cuda:{local_rank}. Call "
            "skvae.distributed.init() (or torch.cuda.set_device(int(os.environ["
            "'LOCAL_RANK'])) ) at the top of the script, before fit, or pass "
            "device=f'cuda:{local_rank}'."
        )
    return data_parallel


@contextlib.contextmanager
def rank_zero_first(data_parallel):
    """Run the block on rank 0 first, then on the other ranks (e.g. a download).

    Does nothing special when ``data_parallel`` is None.
    """
    if data_parallel is not None and not data_parallel.is_writer:
        _dist().barrier()
    yield
    if data_parallel is not None and data_parallel.is_writer:
        _dist().barrier()


def _shutdown():
    if is_initialized():
        _dist().destroy_process_group()


def _mix(*words):
    """A 63-bit seed from integers (numpy's SeedSequence)."""
    state = np.random.SeedSequence([int(w) % (1 << 64) for w in words]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class _Step(torch.nn.Module):
    """The module's training loss as ``forward``, so that DDP can wrap it."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module.loss(*args, **kwargs)


class DataParallel:
    """The process group's view of one fit: ranks, shards, collectives.

    The data-parallel strategy of :func:`skvae._engine.run` (the other is
    :class:`skvae._engine.SingleProcess`), made by :func:`setup`: :meth:`start`
    shards the data and wraps the module in DDP, each step's loss goes
    through :meth:`step_loss`, and :meth:`end_epoch` all-reduces the epoch.
    """

    #: The trainer's ``compile`` option does not apply through DDP.
    compiles = False
    #: Tests set this to False to train without averaging the gradients
    #: (each rank then trains its own model on its shard).
    _sync_gradients = True

    def __init__(self):
        dist = _dist()
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        backend = str(dist.get_backend())
        if "nccl" in backend and torch.cuda.is_available():
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.device = torch.device("cpu")
        self.step_module = None
        self._base_seed = 0
        self._generator = self._noise = None

    @property
    def is_writer(self):
        """Whether this rank writes checkpoints and outputs (rank 0)."""
        return self.rank == 0

    # ----------------------------------------------------------- collectives
    def _all_reduce(self, tensor, op=None):
        dist = _dist()
        moved = tensor.to(self.device)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM if op is None else op)
        return moved.to(tensor.device)

    def common_seed(self, seed):
        """Rank 0's ``seed`` (an int), on every rank."""
        tensor = torch.tensor([int(seed)], dtype=torch.int64, device=self.device)
        _dist().broadcast(tensor, 0)
        return int(tensor.item())

    def check_same_data(self, *tensors):
        """Raise ValueError on every rank unless all ranks hold the same tensors.

        Compares shapes and two sums (plain and row-weighted): cheap, one
        collective.
        """
        values = []
        for t in tensors:
            if t is None:
                values += [-1.0, 0.0, 0.0, 0.0]
                continue
            if not isinstance(t, torch.Tensor):  # rows streamed from the host: shapes only
                values += [float(t.shape[0]), float(t.shape[1]), 0.0, 0.0]
                continue
            flat = t.reshape(t.shape[0], -1).to(torch.float64)
            weights = torch.arange(1, t.shape[0] + 1, dtype=torch.float64, device=t.device)
            values += [float(t.shape[0]), float(flat.shape[1]), 0.0, 0.0]
            values[-2:] = torch.stack([flat.sum(), (flat.sum(dim=1) * weights).sum()]).tolist()
        mine = torch.tensor(values, dtype=torch.float64)
        both = torch.cat([mine, -mine])
        reduced = self._all_reduce(both, _dist().ReduceOp.MAX)
        high, low = reduced[: len(values)], -reduced[len(values) :]
        if not torch.allclose(high, low, rtol=1e-9, atol=0.0):
            raise ValueError(
                "Data-parallel training needs the same training data on every rank, but "
                "the ranks' data differ. Load the same data on every process, and give "
                "random_state an int (the validation split of early_stopping is drawn "
                "from it)."
            )

    # -------------------------------------------------------------- sharding
    def local_batch_size(self, batch_size):
        """Rows per step on this rank: ``batch_size // world_size``, at least 1."""
        return max(1, batch_size // self.world_size)

    def shard_train(self, data, seed):
        """This rank's training rows: ``rank::world_size`` of a common permutation, padded."""
        n = len(data)
        per_rank = math.ceil(n / self.world_size)
        generator = torch.Generator().manual_seed(_mix(seed, 0x5EED))
        perm = torch.randperm(n, generator=generator)
        total = per_rank * self.world_size
        perm = perm.repeat(math.ceil(total / n))[:total]
        return data.take(perm[self.rank :: self.world_size])

    def shard_validation(self, data):
        """This rank's validation rows (``rank::world_size``, not padded)."""
        if data is None:
            return None
        return data.take(torch.arange(len(data))[self.rank :: self.world_size])  # may be empty

    # ---------------------------------------------------------------- training
    def start(self, trainer, data, validation, seed):
        """Check that every rank holds the same data; shard it; wrap the module in DDP.

        ``seed`` (rank 0's is used) seeds the shards and the epochs' generators.
        Returns this rank's (data, validation).
        """
        if trainer.compile:
            warnings.warn(
                "compile is not applied under data-parallel training; the steps run "
                "eagerly through DistributedDataParallel.",
                UserWarning,
                stacklevel=2,
            )
        self.check_same_data(
            data.rows, None if validation is None else validation.rows,
            data.conditions, None if validation is None else validation.conditions,
        )
        self._base_seed = self.common_seed(seed)  # rank 0's, for random_state=None
        step = _Step(trainer.module)
        if self._sync_gradients:
            from torch.nn.parallel import DistributedDataParallel

            # device_ids=None: a single-device module, inputs left where they are.
            # Buffers are synchronised once per epoch (end_epoch), not per step;
            # static_graph copes with parameters a loss does not use.
            options = {"device_ids": None, "static_graph": True}
            if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
                options["forward_sync_buffers"] = False
            else:
                options["broadcast_buffers"] = False
            step = DistributedDataParallel(step, **options)
        self.step_module = step
        self._generator = torch.Generator(device=trainer.generator.device)
        self._noise = RandomNoise(self._generator, trainer.generator.device)
        return self.shard_train(data, self._base_seed), self.shard_validation(validation)

    def finish(self, trainer):
        """Drop the DDP wrapper (the module itself is the estimator's)."""
        self.step_module = None

    def begin_epoch(self, trainer, epoch):
        """Seed this rank's generator from (seed, rank, epoch)."""
        self._generator.manual_seed(_mix(self._base_seed, self.rank, epoch))

    def generator(self, trainer):
        """This rank's generator (seeded per epoch), not the estimator's."""
        return self._generator

    def step_loss(self, trainer, forward, x, beta, c=None):
        """The training loss through DDP (gradients are averaged over the ranks)."""
        kwargs = {} if c is None else {"c": c}
        with autocast(x.device, trainer.precision):
            return self.step_module(
                x,
                self._noise,
                beta=beta,
                free_bits=trainer.free_bits,
                n_importance=trainer.n_importance,
                **kwargs,
            )

    @torch.no_grad()
    def sync_buffers(self, module):
        """Broadcast rank 0's buffers (batch-norm statistics and such)."""
        dist = _dist()
        for buffer in module.buffers():
            moved = buffer.to(self.device)
            dist.broadcast(moved, 0)
            if moved is not buffer:
                buffer.copy_(moved)

    @torch.no_grad()
    def end_epoch(self, module, sums, n, checks):
        """Broadcast the buffers, all-reduce an epoch's sums; return [means..., checks] as floats.

        ``checks`` are values that must be finite on every rank; they are
        summed over the ranks, so that one non-finite value makes the sum
        non-finite. The single host synchronisation of the epoch.
        """
        self.sync_buffers(module)
        packed = torch.cat(
            [
                sums.to(torch.float64),
                torch.tensor([float(n)], dtype=torch.float64, device=sums.device),
                checks.to(torch.float64).reshape(-1),
            ]
        )
        packed = self._all_reduce(packed)
        k = checks.numel()
        means = packed[: -k - 1] / packed[-k - 1]
        return torch.cat([means, packed[-k:]]).tolist()

    def validation_loss(self, trainer, data, beta, seed):
        """Mean validation loss over all ranks' shards (one all-reduce)."""
        n = 0 if data is None else len(data)
        mean = trainer.validation_loss(data, beta, seed) if n else 0.0
        total = torch.tensor([mean * n, float(n)], dtype=torch.float64)
        total = self._all_reduce(total)
        return float(total[0] / total[1])

    def any_rank(self, flag):
        """Whether ``flag`` holds on any rank (a callback's stop request on one rank
        stops them all at the same epoch)."""
        tensor = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64)
        return bool(self._all_reduce(tensor, _dist().ReduceOp.MAX).item())
