"""Warnings that point at the user's line, however deep in skvae they are raised."""

import sys

#: The top-level packages whose frames a warning skips.
_OWN_PACKAGES = ("skvae", "skvae_plugins")


def user_stacklevel():
    """The ``stacklevel`` of :func:`warnings.warn` that names the first frame outside skvae.

    Called by the function that calls :func:`warnings.warn`; counts the frames
    from there out of skvae's own modules, so that the warning shows the line
    that called skvae (``vae.fit(X)``, or scikit-learn's ``Pipeline.fit``), for
    every estimator and however many of skvae's frames lie between.

    Examples
    --------
    >>> import warnings
    >>> def fit():  # a function of the user's, warning through skvae's helper
    ...     warnings.warn("not converged", stacklevel=user_stacklevel())
    >>> user_stacklevel() >= 1
    True
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and (
        frame.f_globals.get("__name__", "").partition(".")[0] in _OWN_PACKAGES
    ):
        frame = frame.f_back
        level += 1
    return level
