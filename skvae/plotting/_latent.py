"""Displays of the latent space: the codes of data, a decoded grid, a sweep."""

from numbers import Integral
from typing import NamedTuple

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted

from .._conditional import AuxiliaryClassifierVAE
from ._base import (
    _decode,
    _dim_label,
    _draw_grid,
    _encode,
    _extent,
    _figure_and_axes,
    _grid_figsize,
    _positive_int,
    _resolve_image_shape,
    _tick_labels,
)

# Labels with at most this many distinct integer values are classes.
_MAX_CLASSES = 20


def _class_colormap(n):
    """A qualitative colour map with ``n`` colours (tab10, tab20, else viridis)."""
    from matplotlib import colormaps

    if n <= 10:
        return ListedColormap(colormaps["tab10"].colors[:n])
    if n <= 20:
        return ListedColormap(colormaps["tab20"].colors[:n])
    return colormaps["viridis"].resampled(n)


def _is_discrete(y):
    """Whether labels ``y`` are classes: strings, booleans, or few integer values."""
    y = np.asarray(y)
    if y.dtype.kind in "OUSb":
        return True
    if y.dtype.kind in "iu":
        return len(np.unique(y)) <= _MAX_CLASSES
    if y.dtype.kind == "f":
        finite = y[np.isfinite(y)]
        return (
            finite.size == y.size
            and np.all(finite == np.round(finite))
            and len(np.unique(finite)) <= _MAX_CLASSES
        )
    return False


class LatentScatterDisplay:
    """Scatter plot of latent codes (posterior means), coloured by a label.

    Where held-out data lie in the latent space: each row's posterior mean
    is a point (in a 2-D latent space, its two coordinates), coloured by its
    label, so that classes that the model separates show as clusters. Use
    :meth:`from_estimator` to make one; all parameters are stored as
    attributes.

    Labels that are classes (strings, booleans, or at most 20 distinct
    integer values) get one colour each and a discrete colour bar naming
    them; other numeric labels a continuous colour bar. A 1-D latent space
    is drawn as the code (x) against the label (y), classes spread by a
    little vertical jitter.

    Parameters
    ----------
    latent : ndarray of shape (n_samples, 2) or (n_samples, 1)
        The points: two coordinates, or one (a 1-D latent space).
    y : array-like of shape (n_samples,), default=None
        Labels that colour the points; None draws them in one colour.
    xlabel, ylabel : str, default=None
        Axis labels; None gives ``z_0`` and ``z_1`` (and for a 1-D latent
        space ``label_name`` on the y axis).
    label_name : str, default=None
        Title of the colour bar (default "label").

    Attributes
    ----------
    scatter_ : matplotlib PathCollection
        The points; ``scatter_.get_offsets()`` are their coordinates.
    colorbar_ : matplotlib Colorbar or None
        The colour bar, when ``y`` is given (not for classes on a 1-D latent
        space, whose y axis names them).
    classes_ : ndarray or None
        The classes in colour order, when ``y`` holds classes.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    LatentManifoldDisplay : Decoded images over a grid of the latent space.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")  # no window
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import LatentScatterDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X[:300] / 16
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> display = LatentScatterDisplay.from_estimator(vae, X, y[:300], label_name="digit")
    >>> display.scatter_.get_offsets().shape
    (300, 2)
    >>> display.classes_
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """

    def __init__(self, latent, y=None, *, xlabel=None, ylabel=None, label_name=None):
        self.latent = latent
        self.y = y
        self.xlabel = xlabel
        self.ylabel = ylabel
        self.label_name = label_name

    def plot(self, ax=None, *, colorbar=True, **kwargs):
        """Draw the points.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        colorbar : bool, default=True
            Whether to add a colour bar for the labels.
        **kwargs : dict
            Passed to ``ax.scatter`` (e.g. ``s``, ``alpha``).

        Returns
        -------
        display : LatentScatterDisplay
        """
        Z = _check_latent(self.latent)
        fig, ax = _figure_and_axes(ax, (6.5, 5.5))
        style = {"s": 12, "alpha": 0.8}
        style.update(kwargs)
        # Spreads the points of a 1-D latent space vertically (within a class).
        jitter = np.random.RandomState(0).uniform(-0.3, 0.3, size=Z.shape[0])
        colours = _NO_COLOURS
        if self.y is not None:
            colours = _colour_by_label(self.y, Z.shape[0], style.pop("cmap", None), jitter)
            style.update(c=colours.values, cmap=colours.cmap)
            if colours.norm is not None:
                style["norm"] = colours.norm
        if Z.shape[1] == 2:
            y_coord = Z[:, 1]
        else:
            y_coord = jitter if colours.y_coord is None else colours.y_coord
        self.classes_, self.colorbar_ = colours.classes, None
        points = np.column_stack([Z[:, 0], y_coord])
        self.scatter_ = ax.scatter(points[:, 0], points[:, 1], **style)

        label_name = self.label_name or "label"
        self._label_axes(ax, Z.shape[1], colours, label_name)
        one_d_classes = Z.shape[1] == 1 and colours.classes is not None
        if colorbar and self.y is not None and not one_d_classes:
            self.colorbar_ = _add_colorbar(fig, ax, self.scatter_, colours, label_name)
        self.ax_, self.figure_ = ax, fig
        return self

    def _label_axes(self, ax, n_dims, colours, label_name):
        """Axis labels; a 1-D latent space names the label (or its classes) on the y axis."""
        ax.set_xlabel(self.xlabel or _dim_label(0))
        if n_dims == 2:
            ax.set_ylabel(self.ylabel or _dim_label(1))
        elif self.y is None:
            ax.set_yticks([])
            ax.set_ylabel(self.ylabel or "")
        else:
            ax.set_ylabel(self.ylabel or label_name)
            if colours.classes is not None:
                ax.set_yticks(colours.ticks, [str(c) for c in colours.classes])

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y=None,
        *,
        projection="pca",
        label_name=None,
        ax=None,
        colorbar=True,
        **kwargs,
    ):
        """Scatter the posterior means ``estimator.transform(X)``.

        Parameters
        ----------
        estimator : VAETransformer
            Fitted; any estimator with ``transform`` works.
        X : array-like of shape (n_samples, n_features)
            Data to encode (say, a test set).
        y : array-like of shape (n_samples,), default=None
            Labels that colour the points (a conditional VAE still encodes
            without them: the unconditional code).
        projection : {"pca", "first"} or (int, int), default="pca"
            For more than two latent dimensions: "pca" draws the first two
            principal components of the codes (axis labels give their share
            of variance), "first" the dimensions 0 and 1. A pair ``(i, j)``
            draws dimension i against dimension j (with two dimensions too).
            A 1-D latent space ignores "pca" and "first".
        label_name : str, default=None
            Title of the colour bar (default "label").
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        colorbar : bool, default=True
            Whether to add a colour bar for the labels.
        **kwargs : dict
            Passed to ``ax.scatter``.

        Returns
        -------
        display : LatentScatterDisplay
        """
        check_is_fitted(estimator)
        Z = np.asarray(estimator.transform(X), dtype=float)
        Z, xlabel, ylabel = _project(Z, projection)
        display = cls(Z, y, xlabel=xlabel, ylabel=ylabel, label_name=label_name)
        return display.plot(ax=ax, colorbar=colorbar, **kwargs)


def _check_latent(latent):
    """The points of a scatter: shape (n_samples, 2), or (n_samples, 1) for a 1-D space."""
    Z = np.asarray(latent, dtype=float)
    if Z.ndim == 1:
        Z = Z[:, None]
    if Z.ndim != 2 or Z.shape[1] not in (1, 2):
        raise ValueError(f"latent must have shape (n_samples, 1 or 2); got {Z.shape}.")
    return Z


class _Colours(NamedTuple):
    """How labels colour the points of a scatter (all None: one colour)."""

    values: object  # what ``scatter(c=...)`` gets: class codes or the numbers
    cmap: object
    norm: object  # a BoundaryNorm for classes, else None
    classes: object  # the classes in colour order, or None for numbers
    ticks: object  # colour bar ticks of the classes, or None
    y_coord: object  # y of a 1-D latent space's points: class codes + jitter, or the numbers


_NO_COLOURS = _Colours(None, None, None, None, None, None)


def _colour_by_label(y, n_points, cmap, jitter):
    """One colour per class for classes, a colour map over the values for other numbers."""
    y = np.asarray(y).ravel()
    if y.shape[0] != n_points:
        raise ValueError(
            f"y has {y.shape[0]} labels for {n_points} points; pass one label per row."
        )
    if not _is_discrete(y):
        values = y.astype(float)
        return _Colours(values, "viridis" if cmap is None else cmap, None, None, None, values)
    classes, codes = np.unique(y, return_inverse=True)
    n = len(classes)
    if cmap is None:
        cmap = _class_colormap(n)
    else:
        from matplotlib import colormaps

        cmap = colormaps.get_cmap(cmap).resampled(n)
    norm_ = BoundaryNorm(np.arange(-0.5, n), cmap.N)
    return _Colours(codes, cmap, norm_, classes, np.arange(n), codes + jitter)


def _add_colorbar(fig, ax, scatter, colours, label_name):
    """A colour bar titled ``label_name``; classes get one tick each, named."""
    if colours.ticks is None:
        colorbar = fig.colorbar(scatter, ax=ax)
    else:
        colorbar = fig.colorbar(scatter, ax=ax, ticks=colours.ticks)
        colorbar.ax.set_yticklabels([str(c) for c in colours.classes])
        colorbar.ax.minorticks_off()
    colorbar.set_label(label_name)
    return colorbar


def _project(Z, projection):
    """The two columns of the codes to draw and their axis labels (see ``projection``).

    A 1-D latent space is returned as it is, with default labels (None).
    """
    k = Z.shape[1]
    if not (isinstance(projection, str) and projection in ("pca", "first")):
        dims = _check_dims(projection, k, "projection", allow_strings="'pca', 'first' or ")
    elif projection == "pca" and k > 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(Z)
        ratio = pca.explained_variance_ratio_
        return (
            pca.transform(Z),
            f"PC 1 of z ({ratio[0]:.0%} of variance)",
            f"PC 2 of z ({ratio[1]:.0%} of variance)",
        )
    else:
        dims = (0, 1)
    if k < 2:
        return Z, None, None
    return Z[:, list(dims)], _dim_label(dims[0]), _dim_label(dims[1])


def _check_dims(dims, n_components, name="dims", allow_strings=""):
    """Two distinct latent dimensions ``(i, j)`` within ``n_components``."""
    try:
        pair = tuple(dims)
    except TypeError:
        pair = ()
    ok = (
        len(pair) == 2
        and all(isinstance(d, Integral) and not isinstance(d, bool) for d in pair)
        and pair[0] != pair[1]
        and all(0 <= d < n_components for d in pair)
    )
    if not ok:
        raise ValueError(
            f"{name} must be {allow_strings}a pair of two different latent dimensions "
            f"(i, j) with 0 <= i, j < n_components={n_components}; got {dims!r}."
        )
    return tuple(int(d) for d in pair)


class LatentManifoldDisplay:
    """Decoded images over a grid of two latent dimensions, tiled into one image.

    What the decoder makes of each region of the latent space: the decoded
    means at a grid of points (by default 15 x 15 over [-4, 4]^2) are tiled
    into one picture, with the z values as axis tick labels. Column j
    decodes ``z[dims[0]] = grid_x[j]`` and row i from the top
    ``z[dims[1]] = grid_y[-1 - i]`` (large values at the top, as in a plot);
    other latent dimensions are 0. Use :meth:`from_estimator` to make one.

    Flat samples (no image shape) are drawn as a grid of small line plots,
    one per grid point.

    Parameters
    ----------
    decoded : ndarray of shape (len(grid_y), len(grid_x), n_features)
        ``decoded[i, j]`` is the decoded mean at ``(grid_x[j], grid_y[i])``.
    grid_x, grid_y : ndarray
        Increasing values of the two latent dimensions.
    dims : (int, int), default=(0, 1)
        The latent dimensions of the grid (for axis labels).
    image_shape : tuple (height, width, channels) or None, default=None
        Shape of one sample as an image; None draws lines.
    channels_last : bool, default=False
        Whether rows flatten images as (H, W, C) rather than (C, H, W).

    Attributes
    ----------
    image_ : ndarray or None
        The tiled image: shape ``(len(grid_y) * h, len(grid_x) * w)`` for one
        channel and the default ``pad=0`` (tiles without gaps: one continuous
        map); None for lines.
    im_ : matplotlib AxesImage or None
    lines_ : matplotlib LineCollection or None
        The line plots of flat samples.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    LatentTraversalDisplay : One dimension at a time.
    LatentScatterDisplay : Where the data lie in the same space.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import LatentManifoldDisplay
    >>> X = load_digits().data[:300] / 16
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> display = LatentManifoldDisplay.from_estimator(vae, grid_size=15, extent=4)
    >>> display.image_.shape  # 15 x 15 digits of 8 x 8 pixels
    (120, 120)
    >>> [t.get_text() for t in display.ax_.get_xticklabels()][::7]
    ['-4.0', '0.0', '4.0']
    """

    def __init__(
        self, decoded, grid_x, grid_y, *, dims=(0, 1), image_shape=None, channels_last=False
    ):
        self.decoded = decoded
        self.grid_x = grid_x
        self.grid_y = grid_y
        self.dims = dims
        self.image_shape = image_shape
        self.channels_last = channels_last

    def plot(self, ax=None, *, value_range=None, cmap="gray", pad=0, **kwargs):
        """Draw the tiled grid, with the z values as tick labels.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            Values shown black and white; None: [0, 1] when the decoded
            values lie in it, else their range.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        pad : int, default=0
            Blank pixels between the tiles: 0 draws one continuous map; 1
            separates images with no dark border of their own (such as 8 x 8
            digits).
        **kwargs : dict
            Passed to ``ax.imshow`` (images) or to the ``LineCollection``
            (flat samples).

        Returns
        -------
        display : LatentManifoldDisplay
        """
        decoded = np.asarray(self.decoded)
        grid_x, grid_y = np.asarray(self.grid_x), np.asarray(self.grid_y)
        n_y, n_x = decoded.shape[:2]
        fig, ax = _figure_and_axes(ax, _grid_figsize(n_y, n_x, self.image_shape, 0.5))
        grid = _draw_grid(
            ax,
            decoded[::-1],  # large values of the second dimension at the top
            self.image_shape,
            self.channels_last,
            value_range=value_range,
            cmap=cmap,
            pad=pad,
            **kwargs,
        )
        rotation = 90 if n_x > 15 else 0
        ax.set_xticks(grid.x_centers, _tick_labels(grid_x), rotation=rotation)
        ax.set_yticks(grid.y_centers, _tick_labels(grid_y[::-1]))
        ax.tick_params(labelsize="small")
        ax.set_xlabel(_dim_label(self.dims[0]))
        ax.set_ylabel(_dim_label(self.dims[1]))
        self.image_, self.im_, self.lines_ = grid.image, grid.im, grid.lines
        self.ax_, self.figure_ = ax, fig
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        grid_size=15,
        extent=4.0,
        grid="linear",
        dims=None,
        image_shape="auto",
        channels_last=None,
        ax=None,
        value_range=None,
        cmap="gray",
        pad=0,
        **kwargs,
    ):
        """Decode a grid over two latent dimensions with ``inverse_transform``.

        Parameters
        ----------
        estimator : VAETransformer
            Fitted. A conditional VAE decodes with its unknown condition,
            an auxiliary-classifier VAE with the class proportions (use
            :class:`ClassConditionalDisplay` for chosen classes).
        grid_size : int or (int, int), default=15
            Points per dimension, or ``(n_x, n_y)``.
        extent : float or (float, float), default=4.0
            The range of ``grid="linear"``: ``r`` means [-r, r], or
            ``(low, high)``. 4 covers nearly all of a standard normal prior's
            mass.
        grid : {"linear", "quantile"}, default="linear"
            "linear": evenly spaced over ``extent``; "quantile": the
            quantiles ``(i + 0.5) / grid_size`` of the standard normal prior
            (Kingma and Welling's figure), which puts equal prior mass in
            each cell; ``extent`` is then ignored.
        dims : (int, int), default=None
            The two latent dimensions to vary; the others stay at 0 (the
            prior mean). Required when ``n_components > 2``; a 1-D latent
            space has no grid (see :class:`LatentTraversalDisplay`).
        image_shape : "auto", None or tuple, default="auto"
            Shape ``(height, width[, channels])`` of one sample. "auto" reads
            it from the estimator's architecture (conv plugins), else takes a
            square grey image when the number of features is a perfect
            square (64 -> 8 x 8), else draws lines. None draws lines.
        channels_last : bool, default=None
            Whether rows flatten images as (H, W, C); None reads it from the
            architecture, else False (C, H, W).
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            Values shown black and white (see :meth:`plot`).
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        pad : int, default=0
            Blank pixels between the tiles (see :meth:`plot`).
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : LatentManifoldDisplay
        """
        check_is_fitted(estimator)
        k = estimator.n_components
        dims = _grid_dims(dims, k)
        if np.ndim(grid_size) == 0:
            n_x = n_y = _positive_int(grid_size, "grid_size")
        else:
            n_x, n_y = (_positive_int(g, "grid_size") for g in grid_size)
        grid_x, grid_y = _grid_values(n_x, extent, grid), _grid_values(n_y, extent, grid)
        Z = np.zeros((n_y, n_x, k), dtype=np.float32)
        Z[:, :, dims[0]] = grid_x[None, :]
        Z[:, :, dims[1]] = grid_y[:, None]
        decoded = _decode(estimator, Z.reshape(-1, k)).reshape(n_y, n_x, -1)
        shape, channels_last = _resolve_image_shape(
            estimator, image_shape, channels_last, decoded.shape[-1]
        )
        display = cls(
            decoded, grid_x, grid_y, dims=dims, image_shape=shape, channels_last=channels_last
        )
        return display.plot(ax=ax, value_range=value_range, cmap=cmap, pad=pad, **kwargs)


def _grid_dims(dims, n_components):
    """The two latent dimensions of a grid: ``dims``, or (0, 1) in a 2-D latent space."""
    if dims is None:
        if n_components != 2:
            raise ValueError(
                f"LatentManifoldDisplay draws a grid over two latent dimensions, but "
                f"the estimator has n_components={n_components}. "
                + (
                    "Use LatentTraversalDisplay for a 1-D latent space."
                    if n_components == 1
                    else "Pass dims=(i, j) to choose two; the others stay at 0."
                )
            )
        dims = (0, 1)
    return _check_dims(dims, n_components)


def _grid_values(n, extent, grid):
    """``n`` increasing values of one dimension of a grid: even over ``extent``, or quantiles."""
    if grid == "linear":
        lo, hi = _extent(extent)
        return np.linspace(lo, hi, n)
    if grid == "quantile":
        return norm.ppf((np.arange(n) + 0.5) / n)
    raise ValueError(f"grid must be 'linear' or 'quantile'; got {grid!r}.")


class LatentTraversalDisplay:
    """Latent traversal: one latent dimension swept per row, the others fixed.

    What each latent dimension does to the output: one dimension is swept
    over a range and each value decoded, the others fixed. Row r varies
    dimension ``dims[r]`` over ``values`` (one column per value); the other
    dimensions stay at a base code: 0 (the prior mean) or the posterior mean
    of a given sample. Use :meth:`from_estimator` to make one.

    Parameters
    ----------
    decoded : ndarray of shape (len(dims), len(values), n_features)
        The decoded means.
    values : ndarray of shape (n_steps,)
        Values the swept dimension takes, one per column.
    dims : sequence of int
        The swept dimension of each row.
    latent_codes : ndarray of shape (len(dims), n_steps, n_components), default=None
        The decoded codes (kept for inspection).
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
    LatentManifoldDisplay : Two dimensions at once.
    KLPerDimensionDisplay : Which dimensions carry information.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import LatentTraversalDisplay
    >>> X = load_digits().data[:300] / 16
    >>> vae = VAETransformer(n_components=3, max_iter=2, random_state=0).fit(X)
    >>> display = LatentTraversalDisplay.from_estimator(vae, X=X[0], n_steps=7)
    >>> display.latent_codes.shape  # 3 dimensions x 7 values x 3 coordinates
    (3, 7, 3)
    >>> [t.get_text() for t in display.ax_.get_yticklabels()]
    ['$z_{0}$', '$z_{1}$', '$z_{2}$']
    """

    def __init__(
        self,
        decoded,
        values,
        dims,
        *,
        latent_codes=None,
        image_shape=None,
        channels_last=False,
    ):
        self.decoded = decoded
        self.values = values
        self.dims = dims
        self.latent_codes = latent_codes
        self.image_shape = image_shape
        self.channels_last = channels_last

    def plot(self, ax=None, *, value_range=None, cmap="gray", title=None, **kwargs):
        """Draw the sweep: one row per dimension, the values as x tick labels.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            Values shown black and white; None: [0, 1] when the decoded
            values lie in it, else their range.
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        title : str, default=None
            Title of the axes (default: "Latent traversal").
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : LatentTraversalDisplay
        """
        decoded = np.asarray(self.decoded)
        n_rows, n_cols = decoded.shape[:2]
        fig, ax = _figure_and_axes(ax, _grid_figsize(n_rows, n_cols, self.image_shape, 0.5))
        grid = _draw_grid(
            ax, decoded, self.image_shape, self.channels_last,
            value_range=value_range, cmap=cmap, **kwargs,
        )
        ax.set_xticks(grid.x_centers, _tick_labels(np.asarray(self.values)))
        ax.set_yticks(grid.y_centers, [_dim_label(d) for d in self.dims])
        ax.tick_params(length=0, labelsize="small")
        ax.set_xlabel("value of the swept dimension")
        ax.set_ylabel("swept dimension")
        ax.set_title("Latent traversal" if title is None else title)
        self.image_, self.im_, self.lines_ = grid.image, grid.im, grid.lines
        self.ax_, self.figure_ = ax, fig
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X=None,
        y=None,
        *,
        dims=None,
        n_steps=9,
        extent=3.0,
        image_shape="auto",
        channels_last=None,
        ax=None,
        value_range=None,
        cmap="gray",
        title=None,
        **kwargs,
    ):
        """Sweep latent dimensions one at a time and decode.

        Parameters
        ----------
        estimator : VAETransformer
            Fitted.
        X : array-like of shape (n_features,) or (1, n_features), default=None
            One sample whose posterior mean fixes the dimensions not swept;
            None fixes them at 0, the prior mean. The swept dimension takes
            the values of ``extent`` whatever the sample's own value.
        y : label, default=None
            For estimators fitted with labels: the class to decode with (a
            conditional VAE also encodes ``X`` with it). None decodes a
            conditional VAE with its unknown condition, and an
            auxiliary-classifier VAE with the class it predicts for ``X``
            (without ``X``: the class proportions, a blurry average).
        dims : int or sequence of int, default=None
            Dimensions to sweep, one row each; None sweeps every dimension.
        n_steps : int, default=9
            Values per dimension (columns).
        extent : float or (float, float), default=3.0
            Range of the sweep: ``r`` means [-r, r], or ``(low, high)``.
        image_shape : "auto", None or tuple, default="auto"
            Shape of one sample; see :meth:`LatentManifoldDisplay.from_estimator`.
        channels_last : bool, default=None
            Whether rows flatten images as (H, W, C); None reads it from the
            architecture, else False.
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        value_range : (float, float), default=None
            Values shown black and white (see :meth:`plot`).
        cmap : str or Colormap, default="gray"
            Colour map of one-channel images.
        title : str, default=None
            Title of the axes; None says where the other dimensions stay.
        **kwargs : dict
            Passed to ``ax.imshow`` or to the ``LineCollection``.

        Returns
        -------
        display : LatentTraversalDisplay
        """
        check_is_fitted(estimator)
        k = estimator.n_components
        dims = _swept_dims(dims, k)
        n_steps = _positive_int(n_steps, "n_steps")
        lo, hi = _extent(extent)
        values = np.linspace(lo, hi, n_steps)
        if X is None:
            base = np.zeros(k, dtype=np.float32)
        else:
            base, y = _base_code(estimator, X, y)
        codes = np.tile(base, (len(dims), n_steps, 1))
        for row, d in enumerate(dims):
            codes[row, :, d] = values
        flat = codes.reshape(-1, k)
        y_rows = None if y is None else np.repeat(np.asarray(y).reshape(-1)[:1], flat.shape[0])
        decoded = _decode(estimator, flat, y_rows).reshape(len(dims), n_steps, -1)
        shape, channels_last = _resolve_image_shape(
            estimator, image_shape, channels_last, decoded.shape[-1]
        )
        display = cls(
            decoded, values, dims, latent_codes=codes,
            image_shape=shape, channels_last=channels_last,
        )
        if title is None:
            where = "0 (the prior mean)" if X is None else "the sample's posterior mean"
            title = f"Latent traversal: other dimensions at {where}"
        return display.plot(ax=ax, value_range=value_range, cmap=cmap, title=title, **kwargs)


def _swept_dims(dims, n_components):
    """The dimensions a traversal sweeps: a list of ints, every dimension for None."""
    if dims is None:
        dims = list(range(n_components))
    elif np.ndim(dims) == 0:
        dims = [dims]
    dims = list(dims)
    if not dims or not all(
        isinstance(d, Integral) and not isinstance(d, bool) and 0 <= d < n_components
        for d in dims
    ):
        raise ValueError(
            f"dims must be latent dimensions in [0, {n_components}) "
            f"(n_components={n_components}); got {dims!r}."
        )
    return [int(d) for d in dims]


def _base_code(estimator, X, y):
    """The posterior mean of the one sample X, and the label to decode with.

    ``y`` as given (its first value); None for an auxiliary-classifier VAE
    becomes the class it predicts for X.
    """
    # A one-row DataFrame stays one (its feature names are checked).
    x = X if hasattr(X, "iloc") and np.ndim(X) == 2 else np.asarray(X)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.shape[0] != 1:
        raise ValueError(
            f"X must be one sample, shape (n_features,) or (1, n_features); got {x.shape}."
        )
    if y is not None:
        y = np.asarray(y).reshape(-1)[:1]
    elif isinstance(estimator, AuxiliaryClassifierVAE):
        y = estimator.predict(x)
    return np.asarray(_encode(estimator, x, y), dtype=np.float32)[0], y
