"""The forward pass of a training step: eager, in mixed precision, or compiled.

:class:`StepForward` computes a minibatch's objective for the
:class:`~skvae._engine.Trainer`. Two options make it fast on a GPU:

``precision="bf16-mixed"``
    The forward pass runs under :func:`torch.autocast` with bfloat16: matrix
    products and convolutions in bfloat16, reductions and losses in float32
    (autocast's own op lists). Weights, gradients and the optimizer's state
    stay float32; bfloat16 has float32's exponent range, so no loss scaling
    is needed.

``compile=True`` or a mode of :func:`torch.compile`
    The forward pass (and through AOTAutograd its backward) is compiled with
    static shapes. Under ``"reduce-overhead"`` on CUDA, the compiled forward
    and backward are replayed as CUDA graphs: a step costs a handful of
    launches instead of one per operation.

    :func:`torch.compile` cannot trace a draw from a :class:`torch.Generator`,
    so a compiled step takes its noise as input. The first step runs eagerly
    through a :class:`RecordingNoise`, which learns the shapes of the draws
    the model makes (one per stochastic layer; ``n_importance`` copies per
    row); each later step draws them from the training generator, in the same
    order the eager step would, and the compiled function reads them from a
    :class:`ReplayNoise`. So the random stream, and the model, are those of
    the eager step up to floating-point rounding.
"""

import contextlib

import torch

from ._model import RandomNoise

PRECISIONS = ("float32", "bf16-mixed")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(compile):
    """Return the :func:`torch.compile` mode of a ``compile`` option, or None.

    Examples
    --------
    >>> compile_mode(False), compile_mode(True), compile_mode("reduce-overhead")
    (None, 'default', 'reduce-overhead')
    """
    if compile is False or compile is None:
        return None
    if compile is True:
        return "default"
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile must be a bool or one of {COMPILE_MODES}, got {compile!r}.")
    return compile


def autocast(device, precision):
    """Return the autocast context of ``precision`` on ``device`` (or a null context).

    Examples
    --------
    >>> import torch
    >>> with autocast(torch.device("cpu"), "bf16-mixed"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    if precision == "bf16-mixed":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision != "float32":
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    return contextlib.nullcontext()


class RecordingNoise:
    """Standard normal draws that also record their shapes, per row of the batch.

    Parameters
    ----------
    noise : callable
        The source of the draws, ``noise(shape)``.
    rows : int
        Rows of the batch.

    Attributes
    ----------
    shapes : list of tuple
        ``(copies, rest)`` per draw: the draw's shape is
        ``(copies * rows, *rest)``.

    Examples
    --------
    >>> import torch
    >>> noise = RecordingNoise(RandomNoise(torch.Generator(), torch.device("cpu")), rows=4)
    >>> _ = noise((12, 3)), noise((4, 2))
    >>> noise.shapes
    [(3, (3,)), (1, (2,))]
    """

    def __init__(self, noise, rows):
        self.noise = noise
        self.rows = rows
        self.shapes = []

    def __call__(self, shape):
        shape = tuple(shape)
        if not shape or shape[0] % self.rows:
            raise ValueError(
                f"compile needs each noise draw of a step to have a multiple of the batch's "
                f"{self.rows} rows as its first dimension; the model drew {shape}. Set "
                "compile=False for this architecture."
            )
        self.shapes.append((shape[0] // self.rows, shape[1:]))
        return self.noise(shape)


class ReplayNoise:
    """Hands out draws made beforehand, in order (inside a compiled step).

    Examples
    --------
    >>> import torch
    >>> a, b = torch.zeros(2, 1), torch.ones(2, 3)
    >>> noise = ReplayNoise([a, b])
    >>> noise((2, 1)) is a, noise((2, 3)) is b
    (True, True)
    """

    def __init__(self, draws):
        self.draws = draws
        self.index = 0

    def __call__(self, shape):
        draw = self.draws[self.index]
        self.index += 1
        return draw


class StepForward:
    """The objective of a training minibatch, eager or compiled, in a precision.

    Parameters
    ----------
    loss : callable
        ``loss(x, noise, beta, c)``, returning the module's loss tuple
        (:meth:`skvae._model.VAEModule.loss`).
    generator : torch.Generator
        The training generator; the noise is drawn from it.
    device : torch.device
    precision : {"float32", "bf16-mixed"}, default="float32"
    compile : bool or str, default=False
        False, True (mode "default") or a :func:`torch.compile` mode.

    Examples
    --------
    >>> import torch
    >>> def loss(x, noise, beta, c):
    ...     return ((x + noise(x.shape)) ** 2).mean(), None, None
    >>> forward = StepForward(loss, torch.Generator().manual_seed(0), torch.device("cpu"))
    >>> out = forward(torch.zeros(4, 2), beta=1.0)
    >>> out[0].shape
    torch.Size([])
    """

    def __init__(self, loss, generator, device, precision="float32", compile=False):
        self.loss = loss
        self.generator = generator
        self.device = device
        self.precision = precision
        self.mode = compile_mode(compile)
        autocast(device, precision)  # validates precision
        #: Eager float32: the loss is called directly, with no context.
        self._plain = self.mode is None and precision == "float32"
        #: Whether the compiled step is replayed as a CUDA graph, whose next
        #: replay overwrites the outputs of the last one.
        self._replays_graph = self.mode in ("reduce-overhead", "max-autotune") and (
            torch.device(device).type == "cuda"
        )
        self._compiled = None
        self._shapes = None  # the noise draws of a step, learned at the first step
        self._beta = None  # (value, device tensor)
        #: The eager steps' noise: draws from ``generator``.
        self.noise = RandomNoise(generator, device)

    def _eager(self, x, noise, beta, c):
        if self.precision == "float32":
            return self.loss(x, noise, beta, c)
        with autocast(self.device, self.precision):
            return self.loss(x, noise, beta, c)

    def _replayed(self, x, draws, beta, c):
        # The function torch.compile traces: no generator inside.
        with autocast(self.device, self.precision):
            return self.loss(x, ReplayNoise(draws), beta, c)

    def __call__(self, x, beta, c=None):
        """Return the module's loss tuple for minibatch ``x`` (and conditions ``c``).

        Its tensors stay valid after the next call (an :class:`EpochSums`
        may keep them until the end of the epoch).
        """
        if self._plain:
            return self.loss(x, self.noise, beta, c)
        if self.mode is None:
            return self._eager(x, self.noise, beta, c)
        rows = x.shape[0]
        if self._shapes is None:  # first step: eager, learning the draws' shapes
            recorder = RecordingNoise(self.noise, rows)
            out = self._eager(x, recorder, beta, c)
            self._shapes = recorder.shapes
            return out
        if self._compiled is None:
            self._compiled = torch.compile(self._replayed, mode=self.mode, dynamic=False)
        draws = [self.noise((copies * rows, *rest)) for copies, rest in self._shapes]
        if not self._replays_graph:
            return self._compiled(x, draws, self._beta_tensor(beta), c)
        # Outputs of the last replay (read already) may be overwritten.
        torch.compiler.cudagraph_mark_step_begin()
        return _own_terms(self._compiled(x, draws, self._beta_tensor(beta), c))

    def _beta_tensor(self, beta):
        """beta as a device tensor, made once per value (a Python float would be
        baked into the graph: one compilation per value of a warm-up)."""
        if isinstance(beta, torch.Tensor):
            return beta
        if self._beta is None or self._beta[0] != beta:
            self._beta = (beta, torch.tensor(float(beta), device=self.device))
        return self._beta[1]


def _own_terms(out):
    """The loss tuple with its per-sample nll and kl copied out of a CUDA graph's memory.

    The loss itself is used (``backward``) before the next replay; the
    per-sample terms may be kept longer (by :class:`EpochSums`). One copy of
    both, detached: they take no part in the backward pass.
    """
    loss, nll, kl = out[:3]
    if nll is None:
        return out
    nll, kl = torch.stack((nll.detach(), kl.detach()))
    return (loss, nll, kl, *out[3:])


class EpochSums:
    """An epoch's loss sums over samples, kept on the device (no host sync).

    Each step passes the module's loss tuple (loss, nll, kl[, extras]) and
    its number of rows. In the common case, the ELBO with a KL weight
    (``elbo_form``: the loss is the batch mean of nll + beta * kl, with no
    extra terms), a step keeps its per-sample nll and kl as they are
    (detached views: no kernel, no copy); the sums are formed at the end,
    the loss's as nll + beta * kl (beta is constant within an epoch), and
    the kept tensors are summed every :attr:`COLLAPSE` steps to bound their
    memory. Otherwise (free bits, IWAE, extra terms) each step adds
    ``[loss * rows, nll sum, kl sum, extra sums...]`` into a running total.

    The kept tensors must not be overwritten by later steps (the tensors of
    :class:`StepForward` are not).

    Parameters
    ----------
    beta : float
        The epoch's KL weight.
    elbo_form : bool

    Examples
    --------
    >>> import torch
    >>> sums = EpochSums(beta=0.5, elbo_form=True)
    >>> nll, kl = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])
    >>> sums.add(((nll + 0.5 * kl).mean(), nll, kl), rows=2)
    >>> sums.totals().tolist()  # nll and kl summed over the rows
    [4.0, 4.0]
    >>> sums.means([4.0 / 2, 4.0 / 2])  # loss, nll, kl and extra terms, per row
    (3.0, 2.0, 2.0, {})
    """

    COLLAPSE = 256

    def __init__(self, beta, elbo_form):
        self.beta = beta
        self.elbo_form = elbo_form
        self.extra_names = ()
        # ELBO form: the steps' per-sample nll and kl (None once the
        # running sums are used instead).
        self._nll = [] if elbo_form else None
        self._kl = []
        self._running = None  # otherwise: [loss, nll, kl, *extras] sums

    def add(self, out, rows):
        """Record one step's loss tuple ``out`` over ``rows`` samples."""
        records = self._nll
        if records is not None and len(out) == 3 and out[1] is not None:
            # Detached: no autograd record, without a no_grad context per step.
            records.append(out[1].detach())
            self._kl.append(out[2].detach())
            if len(records) >= self.COLLAPSE:
                self._collapse()
            return
        with torch.no_grad():
            self._add_running(out, rows)

    def _collapse(self):
        """Replace the kept per-sample terms by their float32 sums (one entry each)."""
        self._nll = [_sum32(self._nll).reshape(1)]
        self._kl = [_sum32(self._kl).reshape(1)]

    def _add_running(self, out, rows):
        loss, nll, kl = out[:3]
        extras = out[3] if len(out) > 3 else {}
        if self._running is None:
            self.extra_names = tuple(extras)
            self._running = loss.new_zeros(3 + len(self.extra_names), dtype=torch.float32)
            self._zero = self._running.new_zeros(())
            if self._nll:  # steps kept in the ELBO form so far
                self._running[1:3] = self._kept_sums()
                self._running[0] = self._running[1] + self.beta * self._running[2]
            self._nll = None
        # Under no_grad (see add); sums in float32 (bf16 autocast gives a bfloat16 KL).
        f32 = torch.float32
        parts = [loss * rows]
        if nll is None:
            parts += [self._zero, self._zero]
        else:
            parts += [nll.sum(dtype=f32), kl.sum(dtype=f32)]
        parts += [extras[name].sum(dtype=f32) for name in self.extra_names]
        self._running.add_(torch.stack(parts))

    def _kept_sums(self):
        """The sums of the kept nll and kl, as a float32 tensor of 2 values."""
        return torch.stack((_sum32(self._nll), _sum32(self._kl)))

    @torch.no_grad()
    def totals(self):
        """Return the epoch's sums as one device tensor, for :meth:`means`.

        ``[loss, nll, kl, *extras]``; in the ELBO form ``[nll, kl]`` (the
        loss's sum, nll + beta * kl, is formed on the host by :meth:`means`).
        """
        if self._running is not None:
            return self._running
        if not self._nll:
            raise ValueError("no step was recorded")
        # One concatenation: the steps' nll then kl, as many values each.
        both = torch.cat(self._nll + self._kl).view(2, -1)
        return both.sum(dim=1, dtype=torch.float32)

    def means(self, values):
        """Return ``(loss, nll, kl, extras)`` from the host values of :meth:`totals`.

        ``values`` are the totals divided by the number of rows (floats);
        ``extras`` maps each extra term's name to its mean.
        """
        if self._running is None:
            nll, kl = values
            return nll + self.beta * kl, nll, kl, {}
        return (*values[:3], dict(zip(self.extra_names, values[3:])))


def _sum32(tensors):
    """The sum of all elements of ``tensors``, accumulated and returned in float32.

    Under bf16 autocast the per-sample KL is bfloat16: an epoch's sum of it in
    bfloat16 would keep 3 significant digits.
    """
    return torch.cat(tensors).sum(dtype=torch.float32)
