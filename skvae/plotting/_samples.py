"""Displays of generated and reconstructed samples."""

import math

import numpy as np
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted

from ._base import (
    _check_y_allowed,
    _decode,
    _draw_grid,
    _figure_and_axes,
    _grid_figsize,
    _positive_int,
    _prior_draws,
    _reconstruct,
    _resolve_image_shape,
)


def _grid_shape(grid_size):
    """``8`` -> (8, 8); ``(rows, cols)`` as given."""
    if np.ndim(grid_size) == 0:
        n = _positive_int(grid_size, "grid_size")
        return n, n
    try:
        rows, cols = grid_size
    except (TypeError, ValueError):
        raise ValueError(
            f"grid_size must be an int or a pair (n_rows, n_cols); got {grid_size!r}."
        ) from None
    return _positive_int(rows, "grid_size"), _positive_int(cols, "grid_size")


class SamplesDisplay:
    """Grid of generated samples, ``estimator.sample(...)``.

    Images are tiled into one picture; flat samples are drawn as a grid of
    small line plots. Use :meth:`from_estimator` to make one.

    Parameters
    ----------
    samples : ndarray of shape (n_rows * n_cols, n_features)
        The samples, filling the grid row by row.
    grid_shape : (int, int)
        ``(n_rows, n_cols)``.
    image_shape : tuple (height, width, channels) or None, default=None
        Shape of one sample as an image; None draws lines.
    channels_last : bool, default=False
        Whether rows flatten images as (H, W, C) rather than (C, H, W).

    Attributes
    ----------
    image_ : ndarray or None
        The tiled image (None for lines).
    im_ : matplotlib AxesImage or None
    lines_ : matplotlib LineCollection or None
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    ClassConditionalDisplay : Samples of chosen classes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import SamplesDisplay
    >>> X = load_digits().data[:300] / 16
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> display = SamplesDisplay.from_estimator(vae, grid_size=(4, 6), random_state=0)
    >>> display.samples.shape
    (24, 64)
    >>> display.image_.shape  # 4 x 6 digits of 8 x 8 pixels, 1 pixel apart
    (35, 53)
    """

    def __init__(self, samples, grid_shape, *, image_shape=None, channels_last=False):
        self.samples = samples
        self.grid_shape = grid_shape
        self.image_shape = image_shape
        self.channels_last = channels_last

    def plot(self, ax=None, *, value_range=None, cmap="gray", title=None, **kwargs):
        """Draw the grid.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            Values shown black and white (or spanned by a line plot's
            cell); None: [0, 1] when the values lie in it, else their range.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        title : str, default=None
            Title of the axes (default: "Samples from the model").
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : SamplesDisplay
        """
        rows, cols = self.grid_shape
        samples = np.asarray(self.samples)
        fig, ax = _figure_and_axes(ax, _grid_figsize(rows, cols, self.image_shape))
        grid = _draw_grid(
            ax, samples.reshape(rows, cols, -1), self.image_shape, self.channels_last,
            value_range=value_range, cmap=cmap, **kwargs,
        )
        ax.set_title("Samples from the model" if title is None else title)
        self.image_, self.im_, self.lines_ = grid.image, grid.im, grid.lines
        self.ax_, self.figure_ = ax, fig
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        grid_size=8,
        y=None,
        random_state=None,
        decode="mean",
        image_shape="auto",
        channels_last=None,
        ax=None,
        value_range=None,
        cmap="gray",
        title=None,
        **kwargs,
    ):
        """Draw ``estimator.sample(n_rows * n_cols)`` on a grid.

        Parameters
        ----------
        estimator : VAETransformer
            Fitted.
        grid_size : int or (int, int), default=8
            ``n`` for an n x n grid, or ``(n_rows, n_cols)``.
        y : label, default=None
            The class to generate, for estimators fitted with labels.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws (see ``estimator.sample``).
        decode : {"mean", "draw"}, default="mean"
            Decoded means (smooth) or draws from p(x | z).
        image_shape : "auto", None or tuple, default="auto"
            Shape ``(height, width[, channels])`` of one sample. "auto" reads
            it from the estimator's architecture (conv plugins: their
            ``image_shape`` and ``channels_last``), else takes a square grey
            image when the number of features is a perfect square (64 ->
            8 x 8), else draws each sample as a line plot of its values.
            None always draws lines.
        channels_last : bool, default=None
            Whether rows flatten images as (H, W, C); None reads it from the
            architecture, else False (C, H, W).
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            See :meth:`plot`.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        title : str, default=None
            Title of the axes.
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : SamplesDisplay
        """
        check_is_fitted(estimator)
        rows, cols = _grid_shape(grid_size)
        _check_y_allowed(estimator, y)
        extra = {} if y is None else {"y": y}
        samples = estimator.sample(rows * cols, random_state=random_state, decode=decode, **extra)
        shape, channels_last = _resolve_image_shape(
            estimator, image_shape, channels_last, samples.shape[1]
        )
        display = cls(samples, (rows, cols), image_shape=shape, channels_last=channels_last)
        return display.plot(ax=ax, value_range=value_range, cmap=cmap, title=title, **kwargs)


class ReconstructionDisplay:
    """Originals above their reconstructions: what the model keeps of each sample.

    Each original x is drawn above ``inverse_transform(transform(x))``, the
    decoded mean of its posterior mean. With more samples than ``n_cols``
    the pairs of rows repeat below. Flat samples are drawn as line plots,
    the original repeated in light grey behind its reconstruction. Use
    :meth:`from_estimator` to make one.

    Parameters
    ----------
    originals : ndarray of shape (n_samples, n_features)
    reconstructions : ndarray of shape (n_samples, n_features)
    n_cols : int, default=None
        Samples per row; None puts them all in one row.
    image_shape : tuple (height, width, channels) or None, default=None
        Shape of one sample as an image; None draws lines.
    channels_last : bool, default=False
        Whether rows flatten images as (H, W, C) rather than (C, H, W).

    Attributes
    ----------
    errors_ : ndarray of shape (n_samples,)
        Squared error of each reconstruction, summed over the features
        (over the observed ones: NaN entries of an original are left out).
    image_ : ndarray or None
        The tiled image (None for lines).
    im_ : matplotlib AxesImage or None
    lines_ : matplotlib LineCollection or None
    error_labels_ : list of matplotlib Text
        The error written under each reconstruction (``show_errors=True``),
        else empty.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import ReconstructionDisplay
    >>> X = load_digits().data[:300] / 16
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> display = ReconstructionDisplay.from_estimator(vae, X[:10], show_errors=True)
    >>> display.reconstructions.shape, display.errors_.shape
    ((10, 64), (10,))
    >>> [t.get_text() for t in display.ax_.get_yticklabels()]
    ['original', 'reconstruction']
    >>> display.error_labels_[0].get_text() == f"{display.errors_[0]:.2f}"
    True
    """

    def __init__(
        self, originals, reconstructions, *, n_cols=None, image_shape=None, channels_last=False
    ):
        self.originals = originals
        self.reconstructions = reconstructions
        self.n_cols = n_cols
        self.image_shape = image_shape
        self.channels_last = channels_last

    def plot(
        self, ax=None, *, value_range=None, cmap="gray", title=None, show_errors=False, **kwargs
    ):
        """Draw the originals (upper rows) and reconstructions (lower rows).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            Values shown black and white (or spanned by a line plot's
            cell); None: [0, 1] when the values lie in it, else their range.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        title : str, default=None
            Title of the axes.
        show_errors : bool, default=False
            Write each reconstruction's squared error (``errors_``) under
            it: as the x tick labels when the samples fill one row, else in
            a small box at the foot of each reconstruction.
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : ReconstructionDisplay
        """
        originals = np.asarray(self.originals, dtype=float)
        recons = np.asarray(self.reconstructions, dtype=float)
        if originals.shape != recons.shape or originals.ndim != 2:
            raise ValueError(
                "originals and reconstructions must be arrays of the same shape "
                f"(n_samples, n_features); got {originals.shape} and {recons.shape}."
            )
        n, n_features = originals.shape
        cols = n if self.n_cols is None else min(_positive_int(self.n_cols, "n_cols"), n)
        blocks = math.ceil(n / cols)
        # Rows: originals of block 0, reconstructions of block 0, block 1, ...
        cells = np.full((2 * blocks, cols, n_features), np.nan)
        ghost = np.full_like(cells, np.nan)
        for b in range(blocks):
            part = slice(b * cols, min((b + 1) * cols, n))
            m = part.stop - part.start
            cells[2 * b, :m], cells[2 * b + 1, :m] = originals[part], recons[part]
            ghost[2 * b + 1, :m] = originals[part]
        fig, ax = _figure_and_axes(ax, _grid_figsize(2 * blocks, cols, self.image_shape, 0.8))
        grid = _draw_grid(
            ax, cells, self.image_shape, self.channels_last, value_range=value_range,
            cmap=cmap, ghost=ghost if self.image_shape is None else None, **kwargs,
        )
        ax.set_yticks(grid.y_centers, ["original", "reconstruction"] * blocks)
        ax.tick_params(length=0)
        self.errors_ = _squared_errors(originals, recons)
        self.error_labels_ = (
            _write_errors(ax, grid, self.errors_, cols, blocks) if show_errors else []
        )
        if title is None:
            title = "Originals and their reconstructions"
            if self.image_shape is None:
                title += " (original in grey)"
        ax.set_title(title)
        self.image_, self.im_, self.lines_ = grid.image, grid.im, grid.lines
        self.ax_, self.figure_ = ax, fig
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y=None,
        *,
        n_samples=10,
        n_cols=None,
        image_shape="auto",
        channels_last=None,
        ax=None,
        value_range=None,
        cmap="gray",
        title=None,
        show_errors=False,
        **kwargs,
    ):
        """Reconstruct the first ``n_samples`` rows of X and draw them.

        Parameters
        ----------
        estimator : VAETransformer
            Fitted.
        X : array-like of shape (n_samples, n_features)
            Data; its first ``n_samples`` rows are shown (pass the rows you
            want, e.g. ``X_test[idx]``).
        y : array-like of shape (n_samples,), default=None
            For estimators fitted with labels: a conditional VAE encodes and
            decodes with them (None: the unknown condition); an
            auxiliary-classifier VAE decodes with them (None: its own
            predictions).
        n_samples : int, default=10
            Number of samples shown.
        n_cols : int, default=None
            Samples per row; None puts them all in one row.
        image_shape : "auto", None or tuple, default="auto"
            Shape ``(height, width[, channels])`` of one sample. "auto" reads
            it from the estimator's architecture (conv plugins: their
            ``image_shape`` and ``channels_last``), else takes a square grey
            image when the number of features is a perfect square (64 ->
            8 x 8), else draws each sample as a line plot of its values.
            None always draws lines.
        channels_last : bool, default=None
            Whether rows flatten images as (H, W, C); None reads it from the
            architecture, else False (C, H, W).
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            See :meth:`plot`.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        title : str, default=None
            Title of the axes.
        show_errors : bool, default=False
            Write each reconstruction's squared error under it (see
            :meth:`plot`).
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : ReconstructionDisplay
        """
        check_is_fitted(estimator)
        n_samples = _positive_int(n_samples, "n_samples")
        rows = slice(0, n_samples)
        X = _safe_indexing(X, rows)
        y = None if y is None else _safe_indexing(y, rows)
        recons = _reconstruct(estimator, X, y)
        originals = np.asarray(X, dtype=float)
        shape, channels_last = _resolve_image_shape(
            estimator, image_shape, channels_last, originals.shape[1]
        )
        display = cls(
            originals, recons, n_cols=n_cols, image_shape=shape, channels_last=channels_last
        )
        return display.plot(
            ax=ax, value_range=value_range, cmap=cmap, title=title, show_errors=show_errors,
            **kwargs,
        )


def _squared_errors(originals, reconstructions):
    """Squared error of each row, summed over its observed (not NaN) features."""
    return np.nansum((originals - reconstructions) ** 2, axis=1)


def _write_errors(ax, grid, errors, cols, blocks):
    """Write each error under its reconstruction; return the Text artists.

    One row of samples: the x tick labels. Several: a small box at the foot
    of each reconstruction cell (the next originals follow right below).
    """
    labels = [f"{e:.2f}" for e in errors]
    if blocks == 1:
        ax.set_xticks(grid.x_centers[: len(labels)], labels, fontsize="small")
        ax.tick_params(axis="x", length=0, pad=2)
        ax.set_xlabel("squared error of each reconstruction", fontsize="small")
        return list(ax.get_xticklabels())
    step = grid.y_centers[1] - grid.y_centers[0]  # an original's row to its reconstruction's
    texts = []
    for i, label in enumerate(labels):
        block, col = divmod(i, cols)
        y = grid.y_centers[2 * block + 1] + 0.45 * step
        texts.append(ax.text(
            grid.x_centers[col], y, label, ha="center", va="bottom", fontsize="x-small",
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.75,
                  "linewidth": 0},
        ))  # fmt: skip
    return texts


class ClassConditionalDisplay:
    """Generated samples of each class: one row per class, one shared z per column.

    What the label controls and what the code z does: a model fitted with
    labels decodes one z with a chosen class (its one-hot vector beside z).
    Column j decodes the same draw ``z_j ~ p(z)`` with every class, ``inverse_transform(Z, y=c)`` for the
    class c of each row, so a column shows one style across classes. For
    a :class:`~skvae.ConditionalVAETransformer` or an
    :class:`~skvae.AuxiliaryClassifierVAE`. Use :meth:`from_estimator` to
    make one.

    Parameters
    ----------
    decoded : ndarray of shape (n_classes, n_cols, n_features)
        ``decoded[i, j]`` decodes ``latent_codes[j]`` with ``classes[i]``.
    classes : array-like of shape (n_classes,)
        The class of each row.
    latent_codes : ndarray of shape (n_cols, n_components), default=None
        The shared codes of the columns (kept for inspection).
    image_shape : tuple (height, width, channels) or None, default=None
        Shape of one sample as an image; None draws lines.
    channels_last : bool, default=False
        Whether rows flatten images as (H, W, C) rather than (C, H, W).

    Attributes
    ----------
    image_ : ndarray or None
        The tiled image (None for lines).
    im_ : matplotlib AxesImage or None
    lines_ : matplotlib LineCollection or None
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    SamplesDisplay : Samples of one class, or of the whole model.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skvae import ConditionalVAETransformer
    >>> from skvae.plotting import ClassConditionalDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> cvae = ConditionalVAETransformer(n_components=2, max_iter=2,
    ...                                  random_state=0).fit(X[:300] / 16, y[:300])
    >>> display = ClassConditionalDisplay.from_estimator(cvae, n_samples=6, random_state=0)
    >>> display.decoded.shape  # 10 classes x 6 shared codes x 64 pixels
    (10, 6, 64)
    """

    def __init__(
        self, decoded, classes, *, latent_codes=None, image_shape=None, channels_last=False
    ):
        self.decoded = decoded
        self.classes = classes
        self.latent_codes = latent_codes
        self.image_shape = image_shape
        self.channels_last = channels_last

    def plot(self, ax=None, *, value_range=None, cmap="gray", title=None, **kwargs):
        """Draw the grid, the class of each row as y tick labels.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            Values shown black and white (or spanned by a line plot's
            cell); None: [0, 1] when the values lie in it, else their range.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        title : str, default=None
            Title of the axes.
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : ClassConditionalDisplay
        """
        decoded = np.asarray(self.decoded)
        n_rows, n_cols = decoded.shape[:2]
        fig, ax = _figure_and_axes(ax, _grid_figsize(n_rows, n_cols, self.image_shape, 0.6))
        grid = _draw_grid(
            ax, decoded, self.image_shape, self.channels_last,
            value_range=value_range, cmap=cmap, **kwargs,
        )
        ax.set_yticks(grid.y_centers, [str(c) for c in self.classes])
        ax.tick_params(length=0)
        ax.set_ylabel("class")
        ax.set_xlabel("shared latent code z (one per column)")
        ax.set_title("Generated samples of each class" if title is None else title)
        self.image_, self.im_, self.lines_ = grid.image, grid.im, grid.lines
        self.ax_, self.figure_ = ax, fig
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        n_samples=8,
        classes=None,
        random_state=None,
        image_shape="auto",
        channels_last=None,
        ax=None,
        value_range=None,
        cmap="gray",
        title=None,
        **kwargs,
    ):
        """Draw ``n_samples`` codes z ~ p(z) and decode each with every class.

        Parameters
        ----------
        estimator : ConditionalVAETransformer or AuxiliaryClassifierVAE
            Fitted with labels.
        n_samples : int, default=8
            Number of shared codes (columns).
        classes : array-like, default=None
            Classes to show, one row each; None: all of ``estimator.classes_``.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws of z.
        image_shape : "auto", None or tuple, default="auto"
            Shape ``(height, width[, channels])`` of one sample. "auto" reads
            it from the estimator's architecture (conv plugins: their
            ``image_shape`` and ``channels_last``), else takes a square grey
            image when the number of features is a perfect square (64 ->
            8 x 8), else draws each sample as a line plot of its values.
            None always draws lines.
        channels_last : bool, default=None
            Whether rows flatten images as (H, W, C); None reads it from the
            architecture, else False (C, H, W).
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            See :meth:`plot`.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        title : str, default=None
            Title of the axes.
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : ClassConditionalDisplay
        """
        check_is_fitted(estimator)
        if not hasattr(estimator, "classes_"):
            raise ValueError(
                "ClassConditionalDisplay needs an estimator fitted with labels "
                "(ConditionalVAETransformer or AuxiliaryClassifierVAE); got "
                f"{type(estimator).__name__}. Use SamplesDisplay for an unconditional model."
            )
        n_samples = _positive_int(n_samples, "n_samples")
        classes = estimator.classes_ if classes is None else np.asarray(classes).reshape(-1)
        Z = _prior_draws(estimator, n_samples, random_state)
        decoded = np.stack([_decode(estimator, Z, np.repeat(c, n_samples)) for c in classes])
        shape, channels_last = _resolve_image_shape(
            estimator, image_shape, channels_last, decoded.shape[-1]
        )
        display = cls(
            decoded, classes, latent_codes=Z, image_shape=shape, channels_last=channels_last
        )
        return display.plot(ax=ax, value_range=value_range, cmap=cmap, title=title, **kwargs)

