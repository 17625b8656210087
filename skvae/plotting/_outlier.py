"""Display of an outlier detector's most anomalous rows and what makes them so."""

import numpy as np
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted

from ._base import (
    _draw_grid,
    _figure_and_axes,
    _grid_figsize,
    _positive_int,
    _resolve_image_shape,
)

# Most columns of a table whose names are written under the heat map.
_MAX_NAMED_FEATURES = 40


class OutlierDisplay:
    """The most anomalous rows of X and their per-feature errors.

    For images: each row is drawn twice, the image itself above the same
    image with its per-pixel reconstruction error
    (``detector.reconstruction_errors``, E_q[-log p(x_j | z)] in nats) as a
    heat overlay, so that the pixels that make the row unlikely light up;
    each column is titled with the row's index in X and its score. For
    other rows (tables): a heat map of the errors, one line per row, one
    column per feature. Use :meth:`from_estimator` to make one.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_features)
        The rows shown, most anomalous first.
    errors : ndarray of shape (n_rows, n_features)
        Their per-feature errors (higher = less likely).
    scores : ndarray of shape (n_rows,)
        Their ``score_samples`` (higher = more normal).
    indices : ndarray of shape (n_rows,)
        Their positions in the X given to :meth:`from_estimator`.
    image_shape : tuple (height, width, channels) or None, default=None
        Shape of one row as an image; None draws the heat map of a table.
    channels_last : bool, default=False
        Whether rows flatten images as (H, W, C) rather than (C, H, W).
    feature_names : array-like of str or None, default=None
        Column labels of the table's heat map.

    Attributes
    ----------
    image_ : ndarray or None
        The tiled images (None for a table).
    im_ : matplotlib AxesImage
        The images (grey), or the table's heat map.
    heat_ : matplotlib AxesImage
        The error overlay (the heat map itself for a table).
    colorbar_ : matplotlib Colorbar
        The error scale, nats per feature.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    skvae.VAEOutlierDetector : The detector; ``reconstruction_errors``
        gives the errors.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skvae._outlier import VAEOutlierDetector
    >>> from skvae.plotting import OutlierDisplay
    >>> X = load_digits().data[:300] / 16
    >>> detector = VAEOutlierDetector(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> display = OutlierDisplay.from_estimator(detector, X, n_samples=6)
    >>> display.errors.shape
    (6, 64)
    >>> bool(display.scores[0] <= display.scores[-1])  # most anomalous first
    True
    >>> display.figure_.savefig("outliers.png")  # doctest: +SKIP
    """

    def __init__(
        self, rows, errors, scores, indices, *, image_shape=None, channels_last=False,
        feature_names=None,
    ):
        self.rows = rows
        self.errors = errors
        self.scores = scores
        self.indices = indices
        self.image_shape = image_shape
        self.channels_last = channels_last
        self.feature_names = feature_names

    def plot(self, ax=None, *, cmap="gray", error_cmap="inferno", alpha=0.85, title=None):
        """Draw the rows and their errors.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        error_cmap : str or Colormap, default="inferno"
            Colour map of the errors (0 at its dark end).
        alpha : float, default=0.85
            Opacity of the error overlay where the error is largest, in [0, 1];
        a pixel's opacity is ``alpha * sqrt(error / max_error)``, so that
        the image shows through where the model explains it.
        title : str, default=None
            Title of the axes.

        Returns
        -------
        display : OutlierDisplay
        """
        rows = np.asarray(self.rows, dtype=float)
        errors = np.asarray(self.errors, dtype=float)
        if rows.ndim != 2 or errors.shape != rows.shape:
            raise ValueError(
                "rows and errors must be arrays of the same shape (n_rows, n_features); "
                f"got {rows.shape} and {errors.shape}."
            )
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}.")
        top = float(np.nanmax(errors)) if errors.size else 1.0
        error_range = (min(0.0, float(np.nanmin(errors))), top if top > 0 else 1.0)
        if self.image_shape is None:
            self._plot_table(ax, errors, error_cmap, error_range)
        else:
            self._plot_images(ax, rows, errors, cmap, error_cmap, error_range, alpha)
        if title is None:
            title = f"The {len(rows)} most anomalous rows and their per-feature errors"
        self.ax_.set_title(title)
        return self

    def _plot_images(self, ax, rows, errors, cmap, error_cmap, error_range, alpha):
        """Images (upper row) above the images with their errors as a heat overlay."""
        n, n_features = rows.shape
        fig, ax = _figure_and_axes(ax, _grid_figsize(2, n, self.image_shape, 1.4))
        images = np.stack([rows, rows])  # (2, n, n_features)
        grid = _draw_grid(ax, images, self.image_shape, self.channels_last, cmap=cmap)
        heat = np.full_like(images, np.nan)
        heat[1] = errors  # the upper row stays clear
        channels = self.image_shape[2]
        if channels != 1:  # one error per pixel: the channels' errors summed
            heat_shape = (*self.image_shape[:2], 1)
            heat_rows = _pixel_errors(errors, self.image_shape, self.channels_last)
            heat = np.full((2, n, heat_rows.shape[1]), np.nan)
            heat[1] = heat_rows
        else:
            heat_shape = self.image_shape
        overlay = _draw_grid(ax, heat, heat_shape, False, cmap=error_cmap, value_range=error_range)
        # Opacity grows with the error: the image shows through where the
        # model explains it, the heat covers what it does not.
        lo, hi = error_range
        weight = np.clip((overlay.image - lo) / (hi - lo), 0.0, 1.0)
        overlay.im.set_alpha(float(alpha) * np.sqrt(np.nan_to_num(weight)))
        ax.set_xticks(grid.x_centers, [_column_label(i, s) for i, s in zip(self.indices, self.scores)],
                      fontsize="small")
        ax.xaxis.set_ticks_position("top")
        ax.set_yticks(grid.y_centers, ["row", "error"])
        ax.tick_params(length=0)
        self.colorbar_ = fig.colorbar(overlay.im, ax=ax, shrink=0.8, label="nats per pixel")
        self.image_, self.im_, self.heat_ = grid.image, grid.im, overlay.im
        self.ax_, self.figure_ = ax, fig

    def _plot_table(self, ax, errors, error_cmap, error_range):
        """A heat map: one line per row, one column per feature."""
        n, n_features = errors.shape
        named = self.feature_names is not None and n_features <= _MAX_NAMED_FEATURES
        figsize = (min(12.0, 3.0 + 0.4 * n_features), 1.2 + 0.35 * n + (1.8 if named else 0.5))
        fig, ax = _figure_and_axes(ax, figsize)
        heat = ax.imshow(
            errors, cmap=error_cmap, vmin=error_range[0], vmax=error_range[1],
            aspect="auto", interpolation="nearest",
        )
        ax.set_yticks(
            np.arange(n),
            [_column_label(i, s, sep="  ") for i, s in zip(self.indices, self.scores)],
        )
        if named:
            ax.set_xticks(np.arange(n_features), [str(v) for v in self.feature_names], rotation=90)
        ax.set_xlabel("feature")
        ax.set_ylabel("row (#index in X, score)")
        self.colorbar_ = fig.colorbar(heat, ax=ax, label="nats per feature")
        self.image_, self.im_, self.heat_ = None, heat, heat
        self.ax_, self.figure_ = ax, fig

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        n_samples=8,
        image_shape="auto",
        channels_last=None,
        ax=None,
        cmap="gray",
        error_cmap="inferno",
        alpha=0.85,
        title=None,
    ):
        """Score X, keep its ``n_samples`` most anomalous rows and draw them.

        Parameters
        ----------
        estimator : VAEOutlierDetector
            Fitted; any estimator with ``score_samples`` and
            ``reconstruction_errors``.
        X : array-like of shape (n_samples, n_features)
            Rows to search; the lowest ``score_samples`` are shown, lowest
            first.
        n_samples : int, default=8
            Number of rows shown (at most the rows of X).
        image_shape : "auto", None or tuple, default="auto"
            Shape ``(height, width[, channels])`` of one row. "auto" reads
            it from the estimator's architecture, else takes a square grey
            image when the number of features is a perfect square, else
            draws a table's heat map. None always draws the heat map.
        channels_last : bool, default=None
            Whether rows flatten images as (H, W, C); None reads it from the
            architecture, else False (C, H, W).
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        cmap, error_cmap, alpha, title
            See :meth:`plot`.

        Returns
        -------
        display : OutlierDisplay
        """
        check_is_fitted(estimator)
        n_samples = _positive_int(n_samples, "n_samples")
        scores = estimator.score_samples(X)
        indices = np.argsort(scores, kind="stable")[:n_samples]
        rows = _safe_indexing(X, indices)
        errors = estimator.reconstruction_errors(rows)
        feature_names = getattr(estimator, "feature_names_in_", None)
        rows = np.asarray(rows, dtype=float)
        shape, channels_last = _resolve_image_shape(
            estimator, image_shape, channels_last, rows.shape[1]
        )
        display = cls(
            rows, errors, scores[indices], indices, image_shape=shape,
            channels_last=channels_last, feature_names=feature_names,
        )
        return display.plot(
            ax=ax, cmap=cmap, error_cmap=error_cmap, alpha=alpha, title=title
        )


def _pixel_errors(errors, image_shape, channels_last):
    """Per-pixel errors of multi-channel images: the channels' errors summed, (n, h * w)."""
    h, w, c = image_shape
    if channels_last:
        per_channel = errors.reshape(-1, h, w, c)
        return per_channel.sum(axis=-1).reshape(-1, h * w)
    return errors.reshape(-1, c, h, w).sum(axis=1).reshape(-1, h * w)


def _column_label(index, score, sep="\n"):
    """``#17`` and its score (e.g. ``-131.2``), on two lines by default."""
    return f"#{int(index)}{sep}{score:.1f}"
