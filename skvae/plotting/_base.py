"""Pieces the displays share: figures, the image layout and the sample grid.

:func:`_draw_grid` is the one place that turns an array of samples into a
picture: one tiled image when the samples are images, or a grid of small
line plots on one axes when they are flat vectors. Every display that shows
samples (generated, reconstructed, decoded from a grid or a sweep) calls it.
"""

import math
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from matplotlib.collections import LineCollection, PolyCollection
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._conditional import AuxiliaryClassifierVAE, ConditionalVAETransformer

# Pixels of blank space between the tiles of a sample grid.
_TILE_PAD = 1


# ------------------------------------------------------------------ figures
def _figure_and_axes(ax, figsize):
    """Return ``(figure, ax)``: a new figure from pyplot only when ``ax`` is None."""
    if ax is None:
        import matplotlib.pyplot as plt

        return plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _dim_label(j):
    """Axis label of latent dimension ``j`` (0-based, as the columns of ``transform``)."""
    return f"$z_{{{j}}}$"


# ------------------------------------------------------------- image layout
class _Layout(NamedTuple):
    """How one sample (a row of X) is an image: ``(height, width, channels)``."""

    height: int
    width: int
    channels: int
    channels_last: bool


def _check_channels_last(channels_last):
    if channels_last is not None and not isinstance(channels_last, (bool, np.bool_)):
        raise ValueError(f"channels_last must be None, True or False; got {channels_last!r}.")


def _resolve_image_shape(estimator, image_shape, channels_last, n_features):
    """Return ``(image_shape, channels_last)`` for a display: a shape tuple or None.

    ``image_shape="auto"`` reads ``image_shape`` and ``channels_last`` from
    ``estimator.architecture_`` (conv-based plugins have them; their None
    means a square single-channel image), else takes a square single-channel
    image when ``n_features`` is a perfect square of at least 4, else None:
    flat samples, drawn as lines. None forces lines; a tuple ``(h, w)`` or
    ``(h, w, c)`` must hold ``n_features`` values.

    Examples
    --------
    >>> from skvae.plotting._base import _resolve_image_shape
    >>> _resolve_image_shape(None, "auto", None, 64)
    ((8, 8, 1), False)
    >>> _resolve_image_shape(None, "auto", None, 10)
    (None, False)
    >>> _resolve_image_shape(None, (2, 3, 2), True, 12)
    ((2, 3, 2), True)
    """
    _check_channels_last(channels_last)
    architecture = getattr(estimator, "architecture_", None)
    if channels_last is None:
        channels_last = bool(getattr(architecture, "channels_last", False))
    if isinstance(image_shape, str):
        if image_shape != "auto":
            raise ValueError(
                f"image_shape must be 'auto', None or a tuple (height, width[, "
                f"channels]); got {image_shape!r}."
            )
        image_shape = getattr(architecture, "image_shape", None)
        if image_shape is None:
            side = math.isqrt(n_features)
            if side < 2 or side * side != n_features:
                return None, channels_last
            return (side, side, 1), channels_last
    if image_shape is None:
        return None, channels_last
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) not in (2, 3) or not all(
        isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in shape
    ):
        raise ValueError(
            "image_shape must be 'auto', None or a tuple of 2 or 3 positive integers "
            f"(height, width[, channels]); got {image_shape!r}."
        )
    shape = tuple(int(v) for v in shape) + ((1,) if len(shape) == 2 else ())
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={tuple(image_shape)} holds {math.prod(shape)} values but the "
            f"samples have {n_features} features; pass image_shape=(height, width"
            "[, channels]) with height * width * channels == n_features, or "
            "image_shape=None for line plots."
        )
    return shape, channels_last


def _as_images(samples, layout):
    """Rows ``(..., n_features)`` -> images ``(..., h, w')`` grey or ``(..., h, w, c)``.

    One channel gives grey images; 3 or 4 channels colour images (RGB,
    RGBA); any other number of channels is shown as grey images of the
    channels side by side.
    """
    h, w, c = layout.height, layout.width, layout.channels
    lead = samples.shape[:-1]
    if layout.channels_last:
        images = samples.reshape(*lead, h, w, c)
    else:
        images = np.moveaxis(samples.reshape(*lead, c, h, w), -3, -1)
    if c == 1:
        return images[..., 0]
    if c in (3, 4):
        return images
    # (..., h, w, c) -> (..., h, c, w) -> (..., h, c * w): channels side by side.
    return np.swapaxes(images, -1, -2).reshape(*lead, h, c * w)


def _value_range(arrays, value_range):
    """Colour range of images and height range of lines: given, [0, 1] or the data's."""
    if value_range is not None:
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(
                f"value_range must be (low, high) with low < high; got {value_range!r}."
            )
        return lo, hi
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays if a is not None])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    if hi == lo:
        return lo - 0.5, hi + 0.5
    return lo, hi


# ---------------------------------------------------------------- the grid
class _Grid(NamedTuple):
    """What :func:`_draw_grid` drew."""

    image: object  # the tiled image (ndarray), or None for lines
    im: object  # matplotlib AxesImage, or None
    lines: object  # matplotlib LineCollection, or None
    x_centers: np.ndarray  # data x of each column's centre
    y_centers: np.ndarray  # data y of each row's centre (row 0 at the top)


def _draw_grid(
    ax,
    samples,
    image_shape,
    channels_last=False,
    *,
    value_range=None,
    cmap="gray",
    pad=_TILE_PAD,
    ghost=None,
    **kwargs,
):
    """Draw a grid of samples on ``ax``: one tiled image, or small line plots.

    Parameters
    ----------
    ax : matplotlib Axes
    samples : ndarray of shape (n_rows, n_cols, n_features)
        Rows of X laid out on the grid; a cell whose values are all NaN is
        left empty.
    image_shape : tuple (height, width, channels) or None
        Images: tiled into one image with ``pad`` blank pixels between tiles,
        row 0 at the top, drawn by ``imshow`` (grey with ``cmap`` for one
        channel, RGB(A) for 3 or 4). None: each cell is a line plot of the
        sample's values against the feature index, all in one
        ``LineCollection``; each cell spans ``value_range`` from bottom to top,
        with a dashed line at 0 when the range holds it.
    channels_last : bool
        Whether rows flatten images as (H, W, C) rather than (C, H, W).
    value_range : (float, float), default=None
        Values mapped to black and white (images) or to the bottom and top of
        a cell (lines). None: [0, 1] when the values lie in it, else their
        range.
    cmap : str or Colormap, default="gray"
        Colour map of one-channel images.
    pad : int, default=1
        Blank pixels between tiles.
    ghost : ndarray like ``samples``, default=None
        Lines only: drawn in light grey behind the samples (e.g. originals
        behind reconstructions).
    **kwargs
        Passed to ``imshow`` (images) or ``LineCollection`` (lines).

    Returns
    -------
    grid : _Grid
        The tiled image, the artist and the data coordinates of the cell
        centres (for tick labels).

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from skvae.plotting._base import _draw_grid
    >>> ax = Figure().add_subplot()
    >>> grid = _draw_grid(ax, np.zeros((2, 3, 64)), (8, 8, 1))
    >>> grid.image.shape, grid.x_centers
    ((17, 26), array([ 3.5, 12.5, 21.5]))
    >>> grid = _draw_grid(ax, np.zeros((2, 3, 10)), None)
    >>> len(grid.lines.get_segments())
    6
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 3:
        raise ValueError(
            f"samples must have shape (n_rows, n_cols, n_features); got {samples.shape}."
        )
    value_range = _value_range([samples, ghost], value_range)
    if image_shape is not None:
        layout = _Layout(*image_shape, channels_last=bool(channels_last))
        grid = _draw_image_grid(ax, samples, layout, value_range, cmap, pad, kwargs)
    else:
        grid = _draw_line_grid(ax, samples, ghost, value_range, kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return grid


def _draw_image_grid(ax, samples, layout, value_range, cmap, pad, imshow_kwargs):
    """Tile the samples as images into one picture, ``pad`` blank pixels apart."""
    n_rows, n_cols = samples.shape[:2]
    lo, hi = value_range
    images = _as_images(samples, layout)
    h, w = images.shape[2:4]
    colour = images.ndim == 5
    if colour:
        # RGBA scaled to [0, 1]; blank space transparent.
        tiles = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
        if tiles.shape[-1] == 3:
            tiles = np.concatenate([tiles, np.ones(tiles.shape[:-1] + (1,))], axis=-1)
        tiles = np.where(np.isnan(tiles), 0.0, tiles)
        blank = 0.0
    else:
        tiles, blank = images, np.nan  # NaN: imshow leaves it transparent
    canvas = np.full((n_rows * (h + pad) - pad, n_cols * (w + pad) - pad) + tiles.shape[4:], blank)
    empty = _empty_cells(samples)
    for i in range(n_rows):
        for j in range(n_cols):
            if not empty[i, j]:
                top, left = i * (h + pad), j * (w + pad)
                canvas[top : top + h, left : left + w] = tiles[i, j]
    style = {"interpolation": "nearest"}
    if not colour:
        style.update(cmap=cmap, vmin=lo, vmax=hi)
    style.update(imshow_kwargs)
    im = ax.imshow(canvas, **style)
    x_centers = np.arange(n_cols) * (w + pad) + (w - 1) / 2
    y_centers = np.arange(n_rows) * (h + pad) + (h - 1) / 2
    return _Grid(canvas, im, None, x_centers, y_centers)


class _LineCells(NamedTuple):
    """Where the line plots of a grid go, in data coordinates (y grows downwards).

    Cell (i, j) spans x in ``[j * (width + gap_x), ... + width]`` and y in
    ``[i * (height + gap_y), ... + height]``; values ``lo`` to ``hi`` span
    its height, from the bottom up.
    """

    width: float
    height: float
    gap_x: float
    gap_y: float
    lo: float
    hi: float

    def y(self, i, values):
        """Data y of ``values`` drawn in row ``i``."""
        return i * (self.height + self.gap_y) + self.height * (
            1.0 - (values - self.lo) / (self.hi - self.lo)
        )

    def origin(self, i, j):
        """Data (x, y) of the top left corner of cell (i, j)."""
        return j * (self.width + self.gap_x), i * (self.height + self.gap_y)


def _draw_line_grid(ax, samples, ghost, value_range, line_kwargs):
    """Draw each sample as a small line plot of its values in its own framed cell."""
    n_rows, n_cols, n_features = samples.shape
    w = max(n_features - 1, 1)
    h = 0.6 * w
    cells = _LineCells(w, h, 0.25 * w, 0.3 * h, *value_range)
    empty = _empty_cells(samples)
    full = [(i, j) for i in range(n_rows) for j in range(n_cols) if not empty[i, j]]
    frames = [_frame(cells, i, j) for i, j in full]
    ax.add_collection(
        PolyCollection(frames, facecolors="0.97", edgecolors="0.8", linewidths=0.5, zorder=0)
    )
    if cells.lo < 0.0 < cells.hi:  # a faint zero line in each cell
        zero = [np.array([f[0], f[1]]) for f in frames]
        for segment, (i, _) in zip(zero, full):
            segment[:, 1] = cells.y(i, 0.0)
        ax.add_collection(
            LineCollection(zero, colors="0.8", linewidths=0.6, linestyles="--", zorder=0.5)
        )
    if ghost is not None:
        ghost = np.asarray(ghost, dtype=float)
        segments = _line_segments(cells, ghost, full)
        ax.add_collection(LineCollection(segments, colors="0.7", linewidths=1.0, zorder=1))
    style = {"colors": "C0", "linewidths": 1.2, "zorder": 2}
    style.update(line_kwargs)
    lines = LineCollection(_line_segments(cells, samples, full), **style)
    ax.add_collection(lines)
    step_x, step_y = cells.width + cells.gap_x, cells.height + cells.gap_y
    ax.set_xlim(-0.5 * cells.gap_x, n_cols * step_x - 0.5 * cells.gap_x)
    ax.set_ylim(n_rows * step_y - 0.5 * cells.gap_y, -0.5 * cells.gap_y)  # row 0 at the top
    x_centers = np.arange(n_cols) * step_x + cells.width / 2
    y_centers = np.arange(n_rows) * step_y + cells.height / 2
    return _Grid(None, None, lines, x_centers, y_centers)


def _empty_cells(samples):
    """Cells of a grid whose values are all NaN: left empty."""
    return np.all(np.isnan(samples), axis=-1)


def _frame(cells, i, j):
    """The corners of cell (i, j)."""
    x0, y0 = cells.origin(i, j)
    x1, y1 = x0 + cells.width, y0 + cells.height
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _line_segments(cells, values, full):
    """One polyline per cell of ``full``: ``values[i, j]`` against the feature index."""
    x = np.arange(values.shape[-1])
    return [
        np.column_stack([cells.origin(i, j)[0] + x, cells.y(i, values[i, j])]) for i, j in full
    ]


def _grid_figsize(n_rows, n_cols, image_shape, extra_width=0.0):
    """A figure size (inches) in which a grid of cells reads well."""
    if image_shape is None:
        cell_w, cell_h = 1.4, 0.84 * 1.3  # lines: wider than high (h = 0.6 w, gaps)
    else:
        h, w, c = image_shape
        w = w * c if c not in (1, 3, 4) else w
        cell_h = 1.0
        cell_w = w / h
    scale = min(1.0, 8.5 / (n_cols * cell_w + 1e-9), 8.0 / (n_rows * cell_h + 1e-9))
    scale = max(scale, 0.35)
    return (n_cols * cell_w * scale + 1.2 + extra_width, n_rows * cell_h * scale + 1.0)


# ------------------------------------------------------- estimator helpers
def _is_labelled(estimator):
    """Whether ``estimator`` is fitted with labels (and takes ``y`` to decode)."""
    return isinstance(estimator, (ConditionalVAETransformer, AuxiliaryClassifierVAE))


def _check_y_allowed(estimator, y, what="y"):
    if y is not None and not _is_labelled(estimator):
        raise ValueError(
            f"{what} is only for estimators fitted with labels (ConditionalVAETransformer, "
            f"AuxiliaryClassifierVAE); {type(estimator).__name__} takes no labels."
        )


def _encode(estimator, X, y=None):
    """Posterior means of X, conditioned on y for a conditional VAE."""
    if y is not None and isinstance(estimator, ConditionalVAETransformer):
        return estimator.transform(X, y)
    return estimator.transform(X)


def _decode(estimator, Z, y=None):
    """``inverse_transform(Z)``, with ``y=y`` when given."""
    _check_y_allowed(estimator, y)
    if y is None:
        return estimator.inverse_transform(Z)
    return estimator.inverse_transform(Z, y=y)


def _reconstruct(estimator, X, y=None):
    """Decoded posterior means of X: ``inverse_transform(transform(X))``.

    A conditional VAE encodes and decodes with ``y`` (or the unknown
    condition); an auxiliary-classifier VAE decodes with ``y``, or with its
    own prediction when y is None.
    """
    _check_y_allowed(estimator, y)
    if isinstance(estimator, AuxiliaryClassifierVAE) and y is None:
        y = estimator.predict(X)
    return _decode(estimator, _encode(estimator, X, y), y)


def _prior_draws(estimator, n_samples, random_state):
    """``n_samples`` draws z ~ p(z) from the fitted prior, float32 ndarray."""
    check_is_fitted(estimator)
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    device = next(estimator.module_.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.inference_mode():
        z = estimator.module_.prior.sample(n_samples, generator=generator, device=device)
    return z.cpu().numpy().astype(np.float32)


def _extent(extent, name="extent"):
    """``r`` -> (-r, r); ``(lo, hi)`` as given."""
    if np.ndim(extent) == 0:
        r = float(extent)
        if not r > 0:
            raise ValueError(f"{name} must be positive or a pair (low, high); got {extent!r}.")
        return -r, r
    try:
        lo, hi = (float(v) for v in extent)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number r (for [-r, r]) or a pair (low, high); got {extent!r}."
        ) from None
    if not hi > lo:
        raise ValueError(f"{name} must have low < high; got {extent!r}.")
    return lo, hi


def _positive_int(value, name):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _tick_label(value, decimals=1):
    """Short label of a latent value: -4.0, -3.4, 0.0, 1.8."""
    return f"{value:.{decimals}f}" if abs(value) < 100 else f"{value:.3g}"


def _tick_labels(values):
    """Labels of distinct latent values, with the fewest decimals (1 to 3) that tell them apart.

    Examples
    --------
    >>> from skvae.plotting._base import _tick_labels
    >>> _tick_labels([-1.0, 0.0, 1.0]), _tick_labels([0.0, 0.07, 0.14])
    (['-1.0', '0.0', '1.0'], ['0.00', '0.07', '0.14'])
    """
    for decimals in (1, 2, 3):
        labels = [_tick_label(float(v), decimals) for v in values]
        if len(set(labels)) == len(labels):
            break
    return labels
