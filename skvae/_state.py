"""The fitted state of a model: copy it, keep it, put it back, move it.

A fitted skvae estimator holds three torch objects: the module (weights and
buffers), its optimizer (moments, step counts) and the training generator.
Everything that copies or rebuilds them goes through this module:

- :func:`clone`: a deep copy of a (nested) state dict, on its device or
  moved to another.
- :class:`Snapshot`: the three objects' state at one moment, kept as
  device-side copies (no host synchronisation) and put back on request. A
  fit keeps one to undo a failed call (all or nothing), the engine one per
  completed epoch (divergence, Ctrl-C), early stopping one of the best
  epoch's weights (``Snapshot(module)`` alone).
- :func:`rebuild`: the optimizer and generator of a module from their
  saved state, on a device (unpickling and model files).
"""

from dataclasses import dataclass

import torch

from ._optimizers import load_optimizer_state, make_optimizer


def clone(obj, device=None):
    """Deep-copy the tensors of a (nested) state dict, on their devices or to ``device``.

    Examples
    --------
    >>> import torch
    >>> state = {"step": 3, "weights": [torch.ones(2)]}
    >>> copy = clone(state, device="cpu")
    >>> copy["weights"][0] is state["weights"][0], copy["step"]
    (False, 3)
    """
    if isinstance(obj, torch.Tensor):
        obj = obj.detach()
        return obj.clone() if device is None else obj.to(device, copy=True)
    if isinstance(obj, dict):
        return {k: clone(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone(v, device) for v in obj)
    return obj


class Snapshot:
    """A copy of a module's state, and of its optimizer's and generator's if given.

    The copy is taken at once (device-side tensors, no host
    synchronisation) and again by :meth:`take`; :meth:`restore` puts it
    back. Taking a copy is one assignment, so that an interrupt sees the old
    copy or the new one, never half of each.

    Parameters
    ----------
    module : torch.nn.Module
    optimizer : torch.optim.Optimizer or None, default=None
    generator : torch.Generator or None, default=None

    Attributes
    ----------
    tag : object
        What the caller said about the copy when taking it (the engine: the
        number of history records at the time).

    Examples
    --------
    >>> import torch
    >>> module = torch.nn.Linear(2, 1)
    >>> snapshot = Snapshot(module)
    >>> before = module.weight.detach().clone()
    >>> with torch.no_grad():
    ...     _ = module.weight.fill_(float("nan"))
    >>> snapshot.restore()
    >>> bool(torch.equal(module.weight, before))
    True
    """

    def __init__(self, module, optimizer=None, generator=None, tag=None):
        self.module = module
        self.optimizer = optimizer
        self.generator = generator
        self._copy = None
        self.take(tag)

    @property
    def tag(self):
        """What was said about the current copy when it was taken."""
        return self._copy[0]

    @property
    def weights(self):
        """The copied module state dict (device-side tensors)."""
        return self._copy[1]

    def take(self, tag=None):
        """Copy the current state (replacing the last copy)."""
        optimizer, generator = self.optimizer, self.generator
        self._copy = (
            tag,
            clone(self.module.state_dict()),
            None if optimizer is None else clone(optimizer.state_dict()),
            None if generator is None else generator.get_state(),
        )

    def restore(self):
        """Put the copied state back; the module is left in eval mode."""
        _, weights, optimizer_state, generator_state = self._copy
        self.module.load_state_dict(weights)
        if optimizer_state is not None:
            # load_state_dict may keep the tensors it is given: give it copies.
            self.optimizer.load_state_dict(clone(optimizer_state))
        if generator_state is not None:
            self.generator.set_state(generator_state)
        self.module.eval()


@dataclass
class Fitted:
    """The torch objects of a fitted estimator, on one device."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    device: torch.device


def rebuild(
    module,
    device,
    *,
    optimizer_name,
    learning_rate,
    seed,
    optimizer_state=None,
    generator_state=None,
    generator_device_type=None,
):
    """Move ``module`` to ``device`` and give it its optimizer and generator back.

    Parameters
    ----------
    module : torch.nn.Module
        With its weights loaded.
    device : torch.device
    optimizer_name : str
        A name of :data:`skvae._optimizers.OPTIMIZERS`.
    learning_rate : float
    seed : int
        Seeds the generator when no state of it can be used.
    optimizer_state : dict or None, default=None
        The optimizer's saved state dict (a fresh optimizer when None).
    generator_state : ByteTensor or None, default=None
        The generator's saved state; used only when it was saved on a
        device of the same type (``generator_device_type``): a CUDA
        generator's state means nothing to a CPU generator.
    generator_device_type : str or None, default=None

    Returns
    -------
    fitted : Fitted

    Examples
    --------
    >>> import torch
    >>> fitted = rebuild(torch.nn.Linear(2, 1), torch.device("cpu"),
    ...                  optimizer_name="adam", learning_rate=1e-3, seed=0)
    >>> type(fitted.optimizer).__name__, fitted.device
    ('Adam', device(type='cpu'))
    """
    module.to(device).eval()
    optimizer = make_optimizer(optimizer_name, module.parameters(), learning_rate, device)
    if optimizer_state is not None:
        load_optimizer_state(optimizer, optimizer_state)
    generator = torch.Generator(device=device)
    if generator_state is not None and generator_device_type == device.type:
        generator.set_state(generator_state)
    else:
        generator.manual_seed(int(seed))
    return Fitted(module, optimizer, generator, device)
