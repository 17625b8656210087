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
    back. A copy is written into the buffers of the copy before the last
    one when the state has kept its layout (the engine takes one per epoch:
    no allocation then, one fused copy), and becomes the current copy in
    one assignment, so that an interrupt sees the old copy or the new one,
    never half of each.

    Parameters
    ----------
    module : torch.nn.Module
    optimizer : torch.optim.Optimizer or None, default=None
    generator : torch.Generator or None, default=None
    tag : object, default=None
        See :attr:`tag`.

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
        self._spare = None  # the copy before the current one: its buffers are reused
        # (optimizer state size, keys, tensors) of the live state, kept while the
        # optimizer's state has as many entries (a run replaces no tensor; the
        # optimizer makes its state at its first step).
        self._live = None
        self.take(tag)

    @property
    def tag(self):
        """What was said about the current copy when it was taken."""
        return self._copy[0]

    @property
    def weights(self):
        """The copied module state dict (device-side tensors).

        Valid until the second :meth:`take` after this copy, which reuses
        its buffers.
        """
        copies = self._copy[1]
        return {
            name: tensor
            for (index, name), tensor in zip(copies.keys, copies.tensors)
            if index is None
        }

    def take(self, tag=None):
        """Copy the current state (replacing the last copy)."""
        keys, tensors, others = self._live_state()
        spare, self._spare = self._spare, None
        if spare is not None and spare.fits(keys, tensors):
            with torch.no_grad():
                _copy_all(spare.tensors, tensors)
            spare.others = others
            copies = spare
        else:
            copies = _Copies(keys, [t.detach().clone() for t in tensors], others)
        optimizer, generator = self.optimizer, self.generator
        groups = None if optimizer is None else [
            {k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups
        ]
        previous = self._copy
        self._copy = (tag, copies, groups, None if generator is None else generator.get_state())
        if previous is not None:
            self._spare = previous[1]

    def _live_state(self):
        """:func:`_live_state` of the module and optimizer, its keys and tensors kept
        while the optimizer's state has the same number of entries and no
        value that is not a tensor."""
        size = 0 if self.optimizer is None else len(self.optimizer.state)
        if self._live is not None and self._live[0] == size:
            return self._live[1], self._live[2], []
        keys, tensors, others = _live_state(self.module, self.optimizer)
        self._live = None if others else (size, keys, tensors)
        return keys, tensors, others

    def restore(self):
        """Put the copied state back; the module is left in eval mode."""
        _, copies, groups, generator_state = self._copy
        self._live = None  # the optimizer gets new state tensors
        live = self.module.state_dict(keep_vars=True)
        optimizer_state = {}
        with torch.no_grad():
            for (index, name), tensor in zip(copies.keys, copies.tensors):
                if index is None:
                    live[name].copy_(tensor)
                else:  # a copy, so that the snapshot can be restored again
                    optimizer_state.setdefault(index, {})[name] = tensor.clone()
        if self.optimizer is not None:
            for (index, key), value in copies.others:
                optimizer_state.setdefault(index, {})[key] = value
            _set_optimizer_state(self.optimizer, optimizer_state, groups)
        if generator_state is not None:
            self.generator.set_state(generator_state)
        self.module.eval()


class _Copies:
    """Copies of a state's tensors, with the keys saying where each belongs."""

    def __init__(self, keys, tensors, others):
        self.keys = keys
        self.tensors = tensors
        self.others = others  # the optimizer state's values that are not tensors
        self.shapes = [t.shape for t in tensors]

    def fits(self, keys, tensors):
        """Whether the buffers can hold a copy of ``tensors`` (same keys and shapes).

        (A copy into them converts the dtype and device where these differ.)
        """
        return keys == self.keys and [t.shape for t in tensors] == self.shapes


def _live_state(module, optimizer):
    """The state's tensors, their keys, and the optimizer's values that are not tensors.

    A module tensor's key is ``(None, name)``; an optimizer tensor's is
    ``(index, name)``, ``index`` being its parameter's position in the
    optimizer's parameter groups and ``name`` its key in the parameter's state.
    """
    state = module.state_dict(keep_vars=True)
    keys = [(None, name) for name in state]
    tensors = list(state.values())
    others = []
    if optimizer is not None:
        index = 0
        for group in optimizer.param_groups:
            for param in group["params"]:
                for key, value in optimizer.state.get(param, {}).items():
                    if isinstance(value, torch.Tensor):
                        keys.append((index, key))
                        tensors.append(value)
                    else:
                        others.append(((index, key), value))
                index += 1
    return keys, tensors, others


def _copy_all(targets, sources):
    """``target.copy_(source)`` for each pair, as one fused call where torch has one."""
    if hasattr(torch, "_foreach_copy_"):
        torch._foreach_copy_(targets, sources)
    else:  # pragma: no cover - torch < 2.1
        for target, source in zip(targets, sources):
            target.copy_(source)


def _set_optimizer_state(optimizer, state, groups):
    """Give ``optimizer`` exactly ``state`` (parameter index -> dict) and group settings."""
    params = [param for group in optimizer.param_groups for param in group["params"]]
    optimizer.state.clear()
    for index, values in state.items():
        optimizer.state[params[index]] = values
    for group, settings in zip(optimizer.param_groups, groups):
        group.update(settings)


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
    optimizer = make_optimizer(optimizer_name, module.parameters(), learning_rate)
    if optimizer_state is not None:
        load_optimizer_state(optimizer, optimizer_state)
    generator = torch.Generator(device=device)
    if generator_state is not None and generator_device_type == device.type:
        generator.set_state(generator_state)
    else:
        generator.manual_seed(int(seed))
    return Fitted(module, optimizer, generator, device)
