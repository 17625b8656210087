"""Optimizers by name, and loading a saved optimizer state across devices."""

import torch

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


def make_optimizer(name, parameters, learning_rate, device=None):
    """Return a torch optimizer by name ("adam", "adamw", "rmsprop", "sgd").

    On a CUDA ``device``, Adam and AdamW use their fused implementation (one
    kernel launch updates every parameter).
    """
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=0.9)
    options = {}
    if name in ("adam", "adamw") and device is not None and torch.device(device).type == "cuda":
        options["fused"] = True
    return OPTIMIZERS[name](parameters, lr=learning_rate, **options)


def load_optimizer_state(optimizer, state):
    """``optimizer.load_state_dict(state)``, keeping ``optimizer``'s implementation.

    A state saved by a fused (CUDA) optimizer says ``fused=True``; loading
    it on the CPU keeps the options this optimizer was made with.

    Examples
    --------
    >>> import torch
    >>> params = [torch.nn.Parameter(torch.zeros(2))]
    >>> state = torch.optim.Adam(params).state_dict()
    >>> state["param_groups"][0]["fused"] = True  # as saved on a GPU
    >>> optimizer = make_optimizer("adam", params, 1e-3, device="cpu")
    >>> load_optimizer_state(optimizer, state)
    >>> optimizer.param_groups[0]["fused"]
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
