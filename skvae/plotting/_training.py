"""Displays of training: the curves of ``history_`` and the KL of each latent dimension."""

import numpy as np
from matplotlib.patches import Patch
from sklearn.utils.validation import check_is_fitted

from ._base import _dim_label, _figure_and_axes

# Panels in this order first, then any other numeric key of the history
# (such as "classification"); each is (title, y label).
_PANELS = {
    "loss": ("loss = reconstruction + beta * KL", "nats per sample"),
    "reconstruction": ("reconstruction, -log p(x | z)", "nats per sample"),
    "kl": ("KL(q(z | x) || p(z))", "nats per sample"),
    "beta": ("KL weight beta", "beta"),
    "learning_rate": ("learning rate", "learning rate"),
}
_EXTRA_PANELS = {
    "classification": ("classifier cross-entropy", "nats per sample"),
    "val_loss": ("validation loss", "nats per sample"),
}
_NOT_PANELS = ("epoch", "seconds", "val_loss")


def _values(history, key):
    """``(epochs, values)`` of the epochs where ``key`` has a value (not None)."""
    epochs, values = [], []
    for i, record in enumerate(history):
        value = record.get(key)
        if value is not None:
            epochs.append(record.get("epoch", i + 1))
            values.append(float(value))
    return np.asarray(epochs), np.asarray(values)


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class TrainingCurvesDisplay:
    """Training curves from ``history_``: loss, its terms, beta and the learning rate.

    One panel per quantity, against the epoch: the loss (with the validation
    loss, when the estimator held data out), the reconstruction term, the
    KL term, the KL weight beta, the learning rate, and any other number
    the history records (an auxiliary-classifier VAE's ``classification``
    cross-entropy). Epochs where a value is None are skipped; a quantity
    without values (the KL and reconstruction terms under the IWAE
    objective) gets no panel. Use :meth:`from_estimator` to make one.

    Parameters
    ----------
    history : list of dict
        One dict per epoch, as ``VAETransformer.history_``.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        The line of each history key drawn (``"val_loss"`` too).
    axes_ : ndarray of matplotlib Axes
        The panels, in the order of ``keys``.
    bounding_ax_ : matplotlib Axes or None
        When ``ax`` was a single Axes for several panels: that Axes, turned
        off, in whose place the panels were made.
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import TrainingCurvesDisplay
    >>> X = load_digits().data[:300] / 16
    >>> vae = VAETransformer(n_components=2, max_iter=3, kl_warmup=0.5,
    ...                      random_state=0).fit(X)
    >>> display = TrainingCurvesDisplay.from_estimator(vae)
    >>> list(display.lines_)
    ['loss', 'reconstruction', 'kl', 'beta', 'learning_rate']
    >>> display.lines_["beta"].get_ydata().tolist()
    [0.0, 1.0, 1.0]
    """

    def __init__(self, history):
        self.history = history

    def _available_keys(self):
        present = []
        for record in self.history:
            for key, value in record.items():
                if key not in present and _is_number(value):
                    present.append(key)
        keys = [k for k in _PANELS if k in present]
        keys += [k for k in present if k not in _PANELS and k not in _NOT_PANELS]
        return keys

    def plot(self, ax=None, *, keys=None, n_cols=3, **kwargs):
        """Draw one panel per key.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            None makes a new figure. One Axes: with one key, the curve is
            drawn in it; with several, the panels are made in its place (as
            scikit-learn's ``PartialDependenceDisplay`` does). An array of
            Axes: one per key.
        keys : list of str, default=None
            History keys to draw, one panel each; None draws every key with
            a value. ``"loss"`` carries the validation loss when there is
            one.
        n_cols : int, default=3
            Panels per row of a new grid.
        **kwargs : dict
            Passed to ``ax.plot``.

        Returns
        -------
        display : TrainingCurvesDisplay
        """
        keys = self._keys_to_draw(keys)
        n_cols = max(1, min(int(n_cols), len(keys)))
        fig, axes, self.bounding_ax_ = _panel_axes(ax, keys, n_cols)
        self.lines_ = {}
        style = {"marker": "o", "markersize": 3} if len(self.history) <= 30 else {}
        style.update(kwargs)
        for panel, key in zip(axes, keys):
            self._draw_panel(panel, key, style)
        self.axes_ = np.asarray(axes, dtype=object)
        self.figure_ = fig
        return self

    def _keys_to_draw(self, keys):
        """The keys asked for (each with a value), or every key with a value for None."""
        if not self.history:
            raise ValueError("The history is empty: fit the estimator first.")
        if keys is None:
            keys = self._available_keys()
        else:
            keys = [keys] if isinstance(keys, str) else list(keys)
            for key in keys:
                if len(_values(self.history, key)[1]) == 0:
                    raise ValueError(
                        f"The history has no values of {key!r} (the IWAE objective records "
                        "no 'reconstruction' or 'kl'; 'val_loss' needs early_stopping=True). "
                        f"Keys with values: {self._available_keys()}."
                    )
        if not keys:
            raise ValueError("The history records no numeric values to draw.")
        return keys

    def _draw_panel(self, panel, key, style):
        """The curve of ``key`` against the epoch (the loss with the validation loss)."""
        title, ylabel = _PANELS.get(key) or _EXTRA_PANELS.get(key) or (key, key)
        epochs, values = _values(self.history, key)
        (self.lines_[key],) = panel.plot(epochs, values, label="train", **style)
        if key == "loss":
            val_epochs, val = _values(self.history, "val_loss")
            if len(val):
                (self.lines_["val_loss"],) = panel.plot(
                    val_epochs, val, label="validation", **style
                )
                panel.legend(fontsize="small")
        panel.set_title(title, fontsize="medium")
        panel.set_xlabel("epoch")
        panel.set_ylabel(ylabel)
        panel.grid(alpha=0.3)
        if len(self.history) <= 12:
            panel.set_xticks(epochs)

    @classmethod
    def from_estimator(cls, estimator, *, keys=None, ax=None, n_cols=3, **kwargs):
        """Draw the training curves of a fitted estimator's ``history_``.

        Parameters
        ----------
        estimator : VAETransformer
            Fitted.
        keys : list of str, default=None
            History keys to draw; None draws every key with a value.
        ax : matplotlib Axes or array-like of Axes, default=None
            See :meth:`plot`.
        n_cols : int, default=3
            Panels per row of a new grid.
        **kwargs : dict
            Passed to ``ax.plot``.

        Returns
        -------
        display : TrainingCurvesDisplay
        """
        check_is_fitted(estimator)
        return cls(estimator.history_).plot(ax=ax, keys=keys, n_cols=n_cols, **kwargs)


def _panel_axes(ax, keys, n_cols):
    """Return ``(figure, axes, bounding_ax)``: one Axes per key, ``n_cols`` per row.

    A new figure for ``ax=None``; for one Axes and several keys, a grid of
    panels in its place (it becomes ``bounding_ax``, turned off); else the
    Axes given, one per key.
    """
    from matplotlib.axes import Axes
    from matplotlib.gridspec import GridSpecFromSubplotSpec

    n = len(keys)
    n_rows = -(-n // n_cols)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, grid = plt.subplots(
            n_rows, n_cols, figsize=(4.0 * n_cols, 3.0 * n_rows),
            squeeze=False, layout="constrained",
        )
        for extra in grid.flat[n:]:
            extra.remove()
        return fig, grid.flat[:n], None
    if isinstance(ax, Axes):
        if n == 1:
            return ax.figure, [ax], None
        if ax.get_subplotspec() is None:
            raise ValueError(
                f"{n} panels cannot share one Axes that is not a subplot; pass "
                "keys with one key, or an array of one Axes per key."
            )
        ax.set_axis_off()
        specs = GridSpecFromSubplotSpec(
            n_rows, n_cols, subplot_spec=ax.get_subplotspec(), wspace=0.4, hspace=0.6
        )
        return ax.figure, [ax.figure.add_subplot(spec) for spec in list(specs)[:n]], ax
    axes = list(np.asarray(ax, dtype=object).ravel())
    if len(axes) != n:
        raise ValueError(
            f"ax holds {len(axes)} Axes for {n} panels ({keys}); pass one per key."
        )
    return axes[0].figure, axes, None


class KLPerDimensionDisplay:
    """Bar chart of the KL of each latent dimension, active units marked.

    A dimension whose KL(q(z_j | x) || p(z_j)) is near 0 carries no
    information about x (posterior collapse). Bars of active units (Burda
    et al. 2016: the variance over the data of the posterior mean exceeds a
    threshold) are coloured, the others grey. Use :meth:`from_estimator` to
    make one.

    Parameters
    ----------
    kl : ndarray of shape (n_components,)
        Mean KL of each dimension, in nats.
    active : ndarray of bool, shape (n_components,), default=None
        Which dimensions are active; None colours every bar the same.
    threshold : float, default=None
        The variance threshold behind ``active`` (for the legend).

    Attributes
    ----------
    bars_ : matplotlib BarContainer
        The bars; their heights are ``kl``.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    LatentTraversalDisplay : What each dimension does to the output.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import KLPerDimensionDisplay
    >>> X = load_digits().data[:300] / 16
    >>> vae = VAETransformer(n_components=4, max_iter=2, random_state=0).fit(X)
    >>> display = KLPerDimensionDisplay.from_estimator(vae, X)
    >>> len(display.bars_)
    4
    """

    def __init__(self, kl, active=None, *, threshold=None):
        self.kl = kl
        self.active = active
        self.threshold = threshold

    def plot(self, ax=None, **kwargs):
        """Draw the bars.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        **kwargs : dict
            Passed to ``ax.bar``.

        Returns
        -------
        display : KLPerDimensionDisplay
        """
        kl = np.asarray(self.kl, dtype=float).ravel()
        k = kl.shape[0]
        fig, ax = _figure_and_axes(ax, (max(4.0, min(12.0, 1.0 + 0.45 * k)), 3.8))
        style = {}
        if self.active is not None:
            active = np.asarray(self.active, dtype=bool).ravel()
            if active.shape != kl.shape:
                raise ValueError(
                    f"active has {active.shape[0]} values for {k} dimensions; "
                    "pass one per dimension."
                )
            style["color"] = np.where(active, "C0", "0.65")
        style.update(kwargs)
        self.bars_ = ax.bar(np.arange(k), kl, **style)
        top = float(np.nanmax(kl)) if k else 0.0
        if self.active is not None and np.isfinite(top) and top > 0:
            ax.set_ylim(0.0, 1.3 * top)  # room for the legend above the bars
        if k <= 20:
            ax.set_xticks(np.arange(k), [_dim_label(j) for j in range(k)])
        ax.set_xlabel("latent dimension")
        ax.set_ylabel("KL(q(z_j | x) || p(z_j)), nats")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        if self.active is not None:
            rule = "" if self.threshold is None else f" (variance of mean > {self.threshold:g})"
            ax.legend(
                handles=[
                    Patch(color="C0", label="active" + rule),
                    Patch(color="0.65", label="inactive"),
                ],
                fontsize="small",
                loc="upper right",
            )
            ax.set_title(f"KL per latent dimension: {int(active.sum())} of {k} active")
        else:
            ax.set_title("KL per latent dimension")
        self.ax_, self.figure_ = ax, fig
        return self

    @classmethod
    def from_estimator(cls, estimator, X, *, threshold=0.01, ax=None, **kwargs):
        """Compute ``kl_per_dimension(X)`` and ``active_units(X)`` and draw them.

        Parameters
        ----------
        estimator : VAETransformer
            Fitted, with a prior that factorises over dimensions (such as
            "normal").
        X : array-like of shape (n_samples, n_features)
            Data.
        threshold : float, default=0.01
            Variance threshold of ``active_units``.
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        **kwargs : dict
            Passed to ``ax.bar``.

        Returns
        -------
        display : KLPerDimensionDisplay
        """
        check_is_fitted(estimator)
        kl = estimator.kl_per_dimension(X)
        active = estimator.active_units(X, threshold=threshold)
        return cls(kl, active, threshold=threshold).plot(ax=ax, **kwargs)
