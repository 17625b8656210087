"""What a fit trains over its epochs: the KL weight and the learning rate per epoch."""

import math

def _cycle(epoch, max_iter, kl_cycles):
    """Return (position in its cycle, cycle length) of a global epoch index."""
    length = max(1, max_iter // kl_cycles)
    cycle = min(epoch // length, kl_cycles - 1)  # epochs past max_iter: last cycle
    return epoch - cycle * length, length


def beta_at(epoch, beta, kl_warmup, max_iter, kl_cycles=1):
    """Return the KL weight of epoch ``epoch`` (0-based).

    The epochs are split into ``kl_cycles`` equal cycles (cyclical annealing,
    Fu et al. 2019); in each, beta ramps linearly from 0 over the first
    ``floor(kl_warmup * cycle_length)`` epochs, then stays at ``beta``. With
    one cycle and kl_warmup = 3/7 this is ``beta_e = min(e * beta / floor(3 N / 7), beta)``.

    Examples
    --------
    >>> [beta_at(e, 1.0, 0.5, 6) for e in range(6)]
    [0.0, 0.3333333333333333, 0.6666666666666666, 1.0, 1.0, 1.0]
    >>> [beta_at(e, 1.0, 0.5, 8, kl_cycles=2) for e in range(8)]
    [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    """
    position, length = _cycle(epoch, max_iter, kl_cycles)
    warmup_epochs = math.floor(kl_warmup * length)
    if warmup_epochs <= 0:
        return float(beta)
    return float(beta) * min(1.0, position / warmup_epochs)


def warmup_end(kl_warmup, max_iter, kl_cycles=1):
    """Return the first epoch at which beta no longer changes.

    Examples
    --------
    >>> warmup_end(3 / 7, 7), warmup_end(0.5, 8, kl_cycles=2)
    (3, 6)
    """
    length = max(1, max_iter // kl_cycles)
    return (kl_cycles - 1) * length + math.floor(kl_warmup * length)


LR_SCHEDULES = ("constant", "cosine", "linear")


def lr_at(epoch, learning_rate, schedule, max_iter):
    """Return the learning rate of epoch ``epoch`` (0-based).

    "constant" keeps it; "cosine" anneals it to 0 over ``max_iter`` epochs
    along half a cosine; "linear" decays it linearly to 0. Past ``max_iter``
    (warm starts) the last value holds.

    Examples
    --------
    >>> [round(lr_at(e, 1.0, "cosine", 4), 3) for e in range(4)]
    [1.0, 0.854, 0.5, 0.146]
    """
    progress = min(epoch, max_iter - 1) / max_iter
    if schedule == "cosine":
        return learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return learning_rate * (1.0 - progress)
    return learning_rate
