"""Optimizers by name, and loading a saved optimizer state across devices."""

import torch

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


def make_optimizer(name, parameters, learning_rate):
    """Return a torch optimizer by name ("adam", "adamw", "rmsprop", "sgd").

    Adam and AdamW use their fused implementation (one kernel updates each
    parameter, with no Python loop over the update's operations) wherever
    the installed torch has one for the parameters' device: CUDA, and the
    CPU from torch 2.4 on. On a small model that is a fifth of a training
    step's time on the CPU (``benchmarks/bench_step_overhead.py``). Where
    torch has none, they fall back to the default implementation. The
    parameters' device decides (they are on it already).

    Examples
    --------
    >>> import torch
    >>> optimizer = make_optimizer("adam", [torch.nn.Parameter(torch.zeros(2))], 1e-3)
    >>> type(optimizer).__name__
    'Adam'
    """
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=0.9)
    cls = OPTIMIZERS[name]
    if name in ("adam", "adamw"):
        parameters = list(parameters)
        try:
            return cls(parameters, lr=learning_rate, fused=True)
        except RuntimeError:  # no fused kernel for this device in this torch
            pass
    return cls(parameters, lr=learning_rate)


def load_optimizer_state(optimizer, state):
    """``optimizer.load_state_dict(state)``, keeping ``optimizer``'s implementation.

    A saved state names the implementation it was made with (``fused``,
    ``foreach``), which may not exist where it is loaded (a fused CUDA
    optimizer's state loaded by a torch with no fused CPU kernel); loading
    keeps the options this optimizer was made with.

    Examples
    --------
    >>> import torch
    >>> params = [torch.nn.Parameter(torch.zeros(2))]
    >>> state = torch.optim.Adam(params, foreach=True).state_dict()
    >>> optimizer = make_optimizer("adam", params, 1e-3)
    >>> load_optimizer_state(optimizer, state)
    >>> optimizer.param_groups[0]["foreach"]  # this optimizer's: None
    """
    implementation = [
        {k: group[k] for k in ("fused", "foreach") if k in group} for group in optimizer.param_groups
    ]
    optimizer.load_state_dict(state)
    for group, options in zip(optimizer.param_groups, implementation):
        for key in ("fused", "foreach"):
            if key in options:
                group[key] = options[key]
            else:
                group.pop(key, None)


def optimizer_name(optimizer):
    """Return the name in :data:`OPTIMIZERS` of ``optimizer``'s class, or None.

    Examples
    --------
    >>> import torch
    >>> optimizer_name(torch.optim.RMSprop([torch.zeros(1, requires_grad=True)]))
    'rmsprop'
    """
    return next((n for n, cls in OPTIMIZERS.items() if type(optimizer) is cls), None)
