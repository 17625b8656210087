"""Where a model runs: the one place that turns ``device`` values into torch devices.

:func:`resolve` reads the estimators' ``device`` parameter and
``skvae.load(device=...)``: "auto" (CUDA when present, else the CPU) or a
torch device string, refused with a message that says which devices are
allowed when this machine cannot hold a model's data there. :func:`available`
maps the device a model was saved or pickled on to one this machine has.
"""

import torch

#: Device types a model can train and infer on (a "meta" tensor holds no data).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
_HELP = "use 'auto', 'cpu', 'cuda' or 'cuda:N' (or 'mps' on Apple silicon, 'xpu' on Intel GPUs)"


def resolve(device):
    """Return the torch device that ``device`` names on this machine.

    Parameters
    ----------
    device : str or torch.device
        "auto", or a torch device such as "cpu", "cuda", "cuda:1", "mps".

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        For a value that is not a device, a device type that holds no data
        (such as "meta"), or a device this machine does not have.

    Examples
    --------
    >>> resolve("cpu")
    device(type='cpu')
    >>> resolve("meta")
    Traceback (most recent call last):
    ...
    ValueError: device='meta' cannot hold a model's data ('meta' devices are not supported); use 'auto', 'cpu', 'cuda' or 'cuda:N' (or 'mps' on Apple silicon, 'xpu' on Intel GPUs).
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device; {_HELP}. ({exc})") from None
    if device.type not in DEVICE_TYPES:
        raise ValueError(
            f"device={str(device)!r} cannot hold a model's data ({device.type!r} devices "
            f"are not supported); {_HELP}."
        )
    if device.type in ("mps", "xpu") and not _backend_available(device.type):
        raise ValueError(
            f"device={str(device)!r} but {device.type} is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    return device


def available(device):
    """Map a saved device to one this machine has: cuda:1 -> cuda -> cpu.

    Examples
    --------
    >>> import torch
    >>> available(torch.device("cpu"))
    device(type='cpu')
    """
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            return torch.device("cuda")
    return device


def _backend_available(device_type):
    """Whether torch can use an 'mps' or 'xpu' device on this machine."""
    backend = torch.backends.mps if device_type == "mps" else getattr(torch, "xpu", None)
    return backend is not None and backend.is_available()
