"""Shared helpers of the likelihood plugins (private).

* :class:`ScaleModule`: the scale of a location-scale likelihood (gaussian,
  laplace, student_t), fixed, learned per feature, or predicted per sample by
  the decoder; :func:`check_scale` validates the configuration, and
  :func:`warn_if_unscaled` warns about training data on a large scale.
* :func:`standard_gamma`: Gamma(concentration, 1) draws that follow a
  :class:`torch.Generator`, which torch's gamma sampler does not take.
* :func:`softplus_inverse`: the raw value whose softplus is a given number.
"""

import math
import warnings
from numbers import Real

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: Accepted string values of ``scale``.
SCALE_OPTIONS = ("learned", "predicted")


def softplus_inverse(y):
    """Return x with softplus(x) = y, for y > 0 (a Python float).

    Examples
    --------
    >>> import torch
    >>> from torch.nn import functional as F
    >>> round(float(F.softplus(torch.tensor(softplus_inverse(2.5)))), 6)
    2.5
    """
    y = max(float(y), 1e-6)
    return y + math.log(-math.expm1(-y))


def is_positive_real(value):
    """True for a positive, finite real number (bools excluded).

    Examples
    --------
    >>> is_positive_real(0.5), is_positive_real(0), is_positive_real(True)
    (True, False, False)
    """
    return (
        isinstance(value, Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


#: A feature whose mean or standard deviation exceeds this is "on a large
#: scale" for a likelihood whose scale starts at 1 under a N(0, I) prior.
LARGE_SCALE = 10.0


def warn_if_unscaled(name, X):
    """Warn when a feature of X has a mean or standard deviation above :data:`LARGE_SCALE`.

    The prior is N(0, I) and the decoder starts with outputs and scales of
    order 1: features of order 100 make the KL term explode, the codes
    spread far beyond the prior and the samples flat (raw wine: codes with
    a standard deviation of 10 to 20). Standardising fixes it.

    Parameters
    ----------
    name : str
        The likelihood's name, for the message.
    X : ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> X = np.array([[1.0, 500.0], [2.0, 900.0]])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_unscaled("gaussian", X)
    >>> "StandardScaler" in str(caught[0].message)
    True
    """
    mean = np.mean(X, axis=0, dtype=np.float64)
    std = np.std(X, axis=0, dtype=np.float64)
    size = np.maximum(np.abs(mean), std)
    worst = int(np.argmax(size))
    if size[worst] <= LARGE_SCALE:
        return
    n_large = int(np.sum(size > LARGE_SCALE))
    warnings.warn(
        f"The {name!r} likelihood works best on standardised data, but {n_large} of "
        f"X's {X.shape[1]} features have a mean or standard deviation above "
        f"{LARGE_SCALE:g} (feature {worst}: mean {mean[worst]:.4g}, std {std[worst]:.4g}): "
        "the KL term grows, the codes spread far beyond the prior and the samples "
        "flatten. Standardise X first, e.g. "
        "make_pipeline(StandardScaler(), VAETransformer(...)).",
        UserWarning,
        stacklevel=2,
    )


def check_scale(owner, scale, min_scale):
    """Raise ValueError unless ``scale`` and ``min_scale`` are valid.

    Parameters
    ----------
    owner : str
        Class name used in the message, such as "Gaussian".
    scale : object
        A positive number, "learned" or "predicted".
    min_scale : object
        A positive number.

    Examples
    --------
    >>> check_scale("Laplace", "predicted", 1e-3)
    >>> check_scale("Laplace", "fixed", 1e-3)
    Traceback (most recent call last):
    ...
    ValueError: Laplace scale must be a positive number or 'learned' (one scale ...; got 'fixed'.
    """
    if not (is_positive_real(scale) or (isinstance(scale, str) and scale in SCALE_OPTIONS)):
        raise ValueError(
            f"{owner} scale must be a positive number or 'learned' (one scale per "
            "feature) or 'predicted' (by the decoder, per sample and feature); "
            f"got {scale!r}."
        )
    if not is_positive_real(min_scale):
        raise ValueError(f"{owner} min_scale must be a positive number; got {min_scale!r}.")


def n_params_for_scale(scale):
    """Decoder outputs per feature: 2 when the scale is predicted, else 1."""
    return 2 if isinstance(scale, str) and scale == "predicted" else 1


class ScaleModule(nn.Module):
    """Location and log-scale from the decoder output of a location-scale likelihood.

    With ``scale="predicted"`` the decoder output has ``2 * n_features``
    columns: the locations, then the raw scales, mapped to
    ``min_scale + softplus(raw + c)`` where ``c`` makes a raw value of 0 give
    a scale of 1. With ``scale="learned"`` one raw parameter per feature goes
    through the same map (starting at 1); a number is a fixed scale.

    Parameters
    ----------
    n_features : int
    scale : float, "learned" or "predicted"
    min_scale : float

    Examples
    --------
    >>> import torch
    >>> module = ScaleModule(3, "predicted", 1e-3)
    >>> loc, log_scale = module.split(torch.zeros(2, 6))
    >>> loc.shape, torch.allclose(log_scale, torch.zeros(2, 3), atol=1e-6)
    (torch.Size([2, 3]), True)
    """

    def __init__(self, n_features, scale, min_scale):
        super().__init__()
        self.min_scale = float(min_scale)
        self.predicted = isinstance(scale, str) and scale == "predicted"
        # softplus(raw + offset) + min_scale = 1 at raw = 0.
        self.offset = softplus_inverse(1.0 - self.min_scale)
        if isinstance(scale, str) and scale == "learned":
            self.raw_scale = nn.Parameter(torch.full((n_features,), self.offset))
        else:
            self.raw_scale = None
        # A fixed scale stays a Python float, exact in any dtype.
        self.fixed_log_scale = None if isinstance(scale, str) else math.log(scale)

    def _log_scale_from_raw(self, raw):
        return torch.log(self.min_scale + F.softplus(raw))

    def split(self, params):
        """Return ``(loc, log_scale)``; ``log_scale`` broadcasts against ``loc``."""
        if self.predicted:
            loc, raw = params.chunk(2, dim=-1)
            return loc, self._log_scale_from_raw(raw + self.offset)
        if self.raw_scale is not None:
            return params, self._log_scale_from_raw(self.raw_scale)
        log_scale = torch.full((), self.fixed_log_scale, dtype=params.dtype, device=params.device)
        return params, log_scale

    def extra_repr(self):
        if self.predicted:
            return f"predicted, min_scale={self.min_scale:g}"
        if self.raw_scale is not None:
            return f"learned, min_scale={self.min_scale:g}"
        return f"scale={math.exp(self.fixed_log_scale):g}"


def standard_gamma(concentration, generator=None):
    """Draw Gamma(concentration, rate=1), deterministically given ``generator``.

    Torch's gamma sampler takes no generator. With one, a seed is drawn from
    it, and the gamma draws are made from the default generator of
    ``concentration``'s device, seeded with it inside
    :func:`torch.random.fork_rng`, which restores that generator's state
    afterwards: the global RNG is left as it was, and the same generator
    state gives the same draws.

    Parameters
    ----------
    concentration : Tensor
        Positive shape parameters; the result has the same shape.
    generator : torch.Generator or None
        Without one, the global RNG is used (as torch does).

    Examples
    --------
    >>> import torch
    >>> alpha = torch.full((4,), 2.0)
    >>> a = standard_gamma(alpha, torch.Generator().manual_seed(0))
    >>> b = standard_gamma(alpha, torch.Generator().manual_seed(0))
    >>> bool(torch.equal(a, b)), bool((a > 0).all())
    (True, True)
    """
    if generator is None:
        return _gamma(concentration)
    device = concentration.device
    seed = int(
        torch.randint(0, 2**62, (), generator=generator, device=generator.device)
    )
    if device.type == "cpu":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return _gamma(concentration)
    # An accelerator (cuda): fork and seed that device's generator only.
    device_module = getattr(torch, device.type)
    with torch.random.fork_rng(devices=[device], device_type=device.type):
        if hasattr(device_module, "device"):
            with device_module.device(device):
                device_module.manual_seed(seed)
        else:
            device_module.manual_seed(seed)
        return _gamma(concentration)


def _gamma(concentration):
    # Draws are clamped to the smallest positive number, as torch does.
    rate = torch.ones_like(concentration)
    return torch.distributions.Gamma(concentration, rate, validate_args=False).sample()
