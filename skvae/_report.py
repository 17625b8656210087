"""The report of ``skvae fit``: every figure as PNG, and ``index.html`` to show them.

:func:`write_figures` draws each figure of :mod:`skvae.plotting` that applies
to a fitted model, one small writer per figure (:data:`FIGURE_WRITERS`, in
the order of the page), all of one width; :func:`describe_model` says what
the page shows of the model (its hyper-parameters, how its likelihood was
chosen, the likelihood of each column of a table); :func:`pca_baseline`
puts PCA with as many components beside the VAE's numbers;
:func:`write_index` writes the page: notes on a fit that did not converge
and on collapsed latent units, a table of contents, the data and model, the
metrics, the baseline, the hyper-parameters, then each figure with its
caption, then the figures not drawn and why.

:mod:`skvae.cli` imports this module only when it draws (matplotlib, torch
and scikit-learn load with it), so that ``skvae --help`` stays fast.
"""

import html
import math
from typing import Callable, NamedTuple

import numpy as np

from . import plotting
from ._schedule import warmup_end

#: Variance threshold of the posterior means for a latent unit to be active.
ACTIVE_THRESHOLD = 0.01
# Latent dimensions swept in latent_traversal.png: the most active ones.
_MAX_TRAVERSAL_DIMS = 10
# Rows shown in outliers.png: the lowest scores of the test set.
_MAX_OUTLIERS_SHOWN = 10
_DPI = 120
#: Width of every figure of the report, in inches (960 pixels at its 120 dpi).
FIGURE_WIDTH = 8.0
# Blank margin round each figure's edge, in inches (constrained layout's pads).
_MARGIN = 0.1


# ------------------------------------------------------------------ pyplot
def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_display(display, path):
    """Save a display's figure as PNG and close it."""
    plt = pyplot()
    try:
        display.figure_.savefig(path, dpi=_DPI)
    finally:
        plt.close(display.figure_)


def grid_shape(n):
    """``(rows, cols)`` with rows * cols == n, as square as divisors allow.

    Examples
    --------
    >>> from skvae._report import grid_shape
    >>> grid_shape(12), grid_shape(16), grid_shape(7)
    ((3, 4), (4, 4), (1, 7))
    """
    cols = next(c for c in range(math.isqrt(n), n + 1) if n % c == 0 and c * c >= n)
    return n // cols, cols


def is_square(n):
    """Whether ``n`` features can be a square grey image (at least 2x2)."""
    side = math.isqrt(n)
    return side >= 2 and side * side == n


# ----------------------------------------------------------------- figures
class _Context(NamedTuple):
    """What the figure writers share: the model, the test data and the look."""

    vae: object
    X_test: object
    y_test: object
    label_name: object
    look: dict  # image_shape and value_range, passed to the displays
    Z: object  # posterior means of X_test
    by_activity: object  # latent dimensions, most active (largest variance) first
    random_state: int
    conditional: bool

    @property
    def n_components(self):
        return self.vae.n_components

    @property
    def drawn_as_images(self):
        """Whether samples are drawn as images (a known shape, or square), not lines."""
        return self.look["image_shape"] != "auto" or is_square(self.X_test.shape[1])


class Figure(NamedTuple):
    """A figure to draw: ``make()`` returns its display."""

    title: str
    caption: str
    make: Callable
    axes_title: object = None  # replaces the display's own axes title
    extra: object = None  # more entries of the figure's record (the KL values)


class Skipped(NamedTuple):
    """A figure that does not apply, and why."""

    title: str
    reason: str


def _latent_scatter(ctx):
    """Labels, or each point's ELBO, colour the codes."""
    vae, X_test = ctx.vae, ctx.X_test
    if ctx.y_test is not None:
        colour, colour_name = ctx.y_test, ctx.label_name or "label"
        coloured = f"coloured by {colour_name}"
    else:
        colour, colour_name = vae.score_samples(X_test), "ELBO per sample (nats)"
        coloured = "coloured by their ELBO (nats; higher is better)"
    k = ctx.n_components
    projected = (
        f"; the {k}-D codes projected on their first two principal components" if k > 2 else ""
    )
    return Figure(
        "Latent space",
        f"Posterior means of the {X_test.shape[0]} test samples, {coloured}{projected}.",
        lambda: plotting.LatentScatterDisplay.from_estimator(
            vae, X_test, colour, label_name=colour_name
        ),
        axes_title="Test-set posterior means",
    )


def _latent_manifold(ctx):
    """A decoded grid over the two most active dimensions."""
    title, k = "Latent manifold", ctx.n_components
    if k < 2:
        return Skipped(title, "a 1-D latent space has no 2-D grid (see the traversal)")
    dims = (0, 1) if k == 2 else tuple(sorted(int(d) for d in ctx.by_activity[:2]))
    others = "" if k == 2 else f" (the two most active of {k} dimensions; the others stay at 0)"
    grid = 15 if ctx.drawn_as_images else 8
    # The range of 99% of the codes, rounded up to a multiple of 0.5.
    extent = math.ceil(2 * float(np.quantile(np.abs(ctx.Z[:, list(dims)]), 0.99))) / 2
    extent = max(extent, 0.5)
    return Figure(
        title,
        f"Decoded means over a {grid} x {grid} grid of z_{dims[0]} (x) and z_{dims[1]} (y) "
        f"in [{-extent:g}, {extent:g}], the range of 99% of the test-set codes{others}.",
        lambda: plotting.LatentManifoldDisplay.from_estimator(
            ctx.vae, grid_size=grid, extent=extent, dims=dims, pad=1, **ctx.look
        ),
        axes_title="Decoded latent grid",
    )


def _samples(ctx):
    """Samples from the prior (the unknown condition for a conditional model)."""
    grid = (8, 8) if ctx.drawn_as_images else (4, 6)
    condition = " with the unknown condition" if ctx.conditional else ""
    return Figure(
        "Samples",
        f"{grid[0] * grid[1]} samples from the model: decoded means of z ~ p(z){condition}.",
        lambda: plotting.SamplesDisplay.from_estimator(
            ctx.vae, grid_size=grid, random_state=ctx.random_state, **ctx.look
        ),
    )


def _reconstructions(ctx):
    """The first test samples and their reconstructions (given the labels when fitted so)."""
    n_shown = min(10, ctx.X_test.shape[0])
    labels = ctx.y_test if ctx.conditional else None
    return Figure(
        "Reconstructions",
        f"The first {n_shown} test samples (upper row) and their reconstructions, the "
        "decoded posterior means (lower row)"
        + (", both given the labels" if ctx.conditional else "")
        + "; under each reconstruction its squared error, summed over the features "
        "(the units of the PCA baseline's reconstruction error)."
        + _missing_note(ctx),
        lambda: plotting.ReconstructionDisplay.from_estimator(
            ctx.vae, ctx.X_test, labels, n_samples=n_shown, show_errors=True, **ctx.look
        ),
    )


def _missing_note(ctx):
    """A caption's note on missing entries, for a model fitted with missing values."""
    missing = getattr(ctx.vae, "_fitted_missing", lambda: False)()
    return " Missing entries (NaN) are left blank." if missing else ""


def _latent_traversal(ctx):
    """One row per latent dimension (the most active ones), swept from -3 to 3."""
    k = ctx.n_components
    swept = sorted(int(d) for d in ctx.by_activity[:_MAX_TRAVERSAL_DIMS])
    which = (
        "each latent dimension"
        if len(swept) == k
        else f"the {len(swept)} most active of the {k} latent dimensions"
    )
    return Figure(
        "Latent traversal",
        f"Each row sweeps one latent dimension from -3 to 3 ({which}); the others stay "
        "at 0, the prior mean.",
        lambda: plotting.LatentTraversalDisplay.from_estimator(ctx.vae, dims=swept, **ctx.look),
    )


def _training_curves(ctx):
    """The loss and its terms per epoch; beta and the learning rate only when they change."""
    history = ctx.vae.history_
    keys = [
        key
        for key in dict.fromkeys(k for record in history for k in record)
        if key not in ("epoch", "seconds", "val_loss")
        and any(isinstance(r.get(key), (int, float)) for r in history)
        and not (key in ("beta", "learning_rate") and len({r.get(key) for r in history}) == 1)
    ]
    return Figure(
        "Training curves",
        "Per-epoch training loss (the negative ELBO, its KL term weighted by beta) "
        "and its terms: reconstruction, -log p(x | z), and KL(q(z | x) || p(z)), in nats "
        "per sample"
        + ("; beta and the learning rate when they change." if len(keys) > 3 else "."),
        lambda: plotting.TrainingCurvesDisplay.from_estimator(ctx.vae, keys=keys),
    )


def _validation_curve(ctx):
    """The loss on the training and on the held-out rows (``early_stopping``), else no figure."""
    history = ctx.vae.history_
    val = [(r.get("epoch", i + 1), r["val_loss"]) for i, r in enumerate(history)
           if r.get("val_loss") is not None]  # fmt: skip
    if not val:
        return None
    vae = ctx.vae
    # Early stopping compares the epochs after the KL warm-up (beta still ramps before).
    warmup = warmup_end(vae.kl_warmup, vae.max_iter, vae.kl_cycles)
    after_warmup = [pair for pair in val if pair[0] > warmup]
    best_epoch, best = min(after_warmup or val, key=lambda pair: pair[1])
    share = getattr(vae, "validation_fraction", None)
    held_out = f"the {share:.0%} of the training rows held out" if share else "held-out rows"
    return Figure(
        "Validation curve",
        f"The loss (negative ELBO, KL weighted by beta; nats per sample) per epoch on the "
        f"training rows and on {held_out} (early_stopping=True); the lowest validation "
        f"loss{' after the KL warm-up' if after_warmup and warmup else ''}, {best:.3f}, is "
        f"at epoch {best_epoch} (dashed), whose weights the model keeps. A validation "
        "curve rising while the training curve falls is overfitting.",
        lambda: _mark_epoch(
            plotting.TrainingCurvesDisplay.from_estimator(ctx.vae, keys=["loss"]), best_epoch
        ),
        axes_title="Loss on training and validation rows",
    )


def _mark_epoch(display, epoch):
    """A dashed vertical line at ``epoch`` in a one-panel TrainingCurvesDisplay."""
    display.ax_ = display.axes_[0]
    display.ax_.axvline(epoch, color="0.5", linestyle="--", linewidth=1)
    return display


def _kl_per_dimension(ctx):
    """The KL of each latent dimension, for priors that factorise over dimensions."""
    title = "KL per latent dimension"
    try:
        display = plotting.KLPerDimensionDisplay.from_estimator(
            ctx.vae, ctx.X_test, threshold=ACTIVE_THRESHOLD
        )
    except NotImplementedError:
        return Skipped(
            title,
            f"the {ctx.vae.prior_!r} prior gives no KL per dimension (it does not factorise)",
        )
    return Figure(
        title,
        "Mean KL(q(z_j | x) || p(z_j)) of each latent dimension over the test set, in "
        f"nats; active units (variance of the posterior mean > {ACTIVE_THRESHOLD:g}) "
        "are coloured, inactive ones grey.",
        lambda: display,
        extra={"kl": np.asarray(display.kl, dtype=float).tolist()},
    )


def _class_conditional(ctx):
    """Samples of each class, for a model fitted with labels (else not a figure)."""
    if not hasattr(ctx.vae, "classes_"):
        return None
    return Figure(
        "Samples of each class",
        f"Each row is one of the {len(ctx.vae.classes_)} classes; each column decodes one "
        "z ~ p(z) with every class, so a column keeps one style.",
        lambda: plotting.ClassConditionalDisplay.from_estimator(
            ctx.vae, n_samples=8, random_state=ctx.random_state, **ctx.look
        ),
    )


def _outliers(ctx):
    """A detector's most anomalous test rows with their per-feature errors (else no figure)."""
    vae = ctx.vae
    if not (hasattr(vae, "offset_") and hasattr(vae, "reconstruction_errors")):
        return None
    title = "Most anomalous test rows"
    n_shown = min(_MAX_OUTLIERS_SHOWN, ctx.X_test.shape[0])
    image_shape = ctx.look["image_shape"] if ctx.drawn_as_images else None
    try:
        display = plotting.OutlierDisplay.from_estimator(
            vae, ctx.X_test, n_samples=n_shown, image_shape=image_shape
        )
    except (ValueError, NotImplementedError) as exc:  # a ladder, a plugin's likelihood
        return Skipped(title, f"no per-feature errors for this model ({exc})")
    scores = vae.score_samples(ctx.X_test)
    n_flagged = int(np.sum(scores < vae.offset_))
    method = {"elbo": "the ELBO", "iwae": "the IWAE bound", "reconstruction":
              "the reconstruction term"}.get(vae.score_method, vae.score_method)
    where = (
        "each row (upper) and its per-pixel error as a heat overlay (lower)"
        if display.image_shape is not None
        else "one line per row, one column per feature"
    )
    return Figure(
        title,
        f"The {n_shown} test rows with the lowest score ({method}), most anomalous "
        f"first, labelled with their index in the test set and their score (nats; the "
        f"detector's offset is {vae.offset_:.1f}: {n_flagged} of the {len(scores)} test "
        f"rows score below it and are predicted outliers): {where}. The error of a "
        "feature is its expected negative log-likelihood E_q[-log p(x_j | z)], in nats: "
        "what the model fails to explain." + _missing_note(ctx),
        lambda: display,
        axes_title=f"The {n_shown} most anomalous test rows and their per-feature errors",
    )


#: The figures ``skvae fit`` may draw, in the order of the page, with their
#: writers: ``writer(context)`` returns a :class:`Figure`, a :class:`Skipped`
#: (listed on the page as not drawn) or None (not a figure of this model).
FIGURE_WRITERS = (
    ("latent_scatter.png", _latent_scatter),
    ("latent_manifold.png", _latent_manifold),
    ("samples.png", _samples),
    ("reconstructions.png", _reconstructions),
    ("latent_traversal.png", _latent_traversal),
    ("training_curves.png", _training_curves),
    ("validation_curve.png", _validation_curve),
    ("kl_per_dimension.png", _kl_per_dimension),
    ("class_conditional.png", _class_conditional),
    ("outliers.png", _outliers),
)
#: The files of the figures, in the order of the page.
FIGURE_FILES = tuple(file for file, _ in FIGURE_WRITERS)


def write_figures(
    vae,
    out,
    X_test,
    y_test=None,
    *,
    label_name=None,
    image_shape=None,
    value_range=None,
    random_state=0,
    conditional=False,
):
    """Draw every figure of :mod:`skvae.plotting` that applies, as PNG files in ``out``.

    The figures of :data:`FIGURE_WRITERS`, in its order: the latent scatter
    plot, the latent manifold (with two or more latent dimensions), samples,
    reconstructions (each with its squared error), the latent traversal, the
    training curves, the validation curve (for a fit with
    ``early_stopping=True``), the KL per latent dimension (for priors that
    factorise over dimensions), the samples of each class (for a model
    fitted with labels) and the most anomalous test rows (for a
    :class:`~skvae.VAEOutlierDetector`). Every figure is saved
    :data:`FIGURE_WIDTH` inches wide (see :func:`fit_width`), so that the
    page shows them at one scale.

    With more than two latent dimensions, the manifold varies the two most
    active ones (largest variance of the test-set posterior means) and the
    traversal sweeps at most the 10 most active ones. The manifold's grid
    spans the range that holds 99% of the test-set codes in its dimensions.
    A figure of :data:`FIGURE_FILES` that is not drawn is removed from
    ``out`` if an earlier run left it there, so that the folder holds the
    figures of this run only.

    Parameters
    ----------
    vae : VAETransformer or ConditionalVAETransformer
        Fitted.
    out : pathlib.Path
        Existing folder.
    X_test : ndarray of shape (n_samples, n_features)
        Held-out data: encoded for the scatter plot and the KL, its first 10
        rows reconstructed.
    y_test : ndarray of shape (n_samples,), default=None
        Labels that colour the scatter plot; without labels the points are
        coloured by their ELBO.
    label_name : str, default=None
        What the labels are ("digit").
    image_shape : (int, int, int) or None, default=None
        Shape of one sample; None lets the displays decide ("auto").
    value_range : (float, float), default=None
        Values shown black and white; None: [0, 1] for data in it.
    random_state : int, default=0
        Seed of the generated samples.
    conditional : bool, default=False
        Whether ``vae`` was fitted with ``y_test``'s labels (reconstructions
        use them).

    Returns
    -------
    figures : list of dict
        Drawn: ``file``, ``title``, ``caption`` (and ``kl`` for the KL chart,
        the values drawn).
    skipped : list of dict
        Not drawn: ``file``, ``title``, ``reason``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skvae import VAETransformer
    >>> from skvae.datasets import load
    >>> from skvae._report import write_figures
    >>> X = load("digits").X[:300]
    >>> vae = VAETransformer(n_components=1, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     figures, skipped = write_figures(vae, pathlib.Path(tmp), X[:50])
    >>> [s["file"] for s in skipped]
    ['latent_manifold.png']
    """
    pyplot()
    Z = np.asarray(vae.transform(X_test), dtype=float)
    look = {"image_shape": "auto" if image_shape is None else tuple(image_shape)}
    look["value_range"] = value_range
    by_activity = np.argsort(-np.var(Z, axis=0), kind="stable")
    ctx = _Context(
        vae, X_test, y_test, label_name, look, Z, by_activity, random_state, conditional
    )
    figures, skipped = [], []
    for file, writer in FIGURE_WRITERS:
        figure = writer(ctx)
        if isinstance(figure, Skipped):
            skipped.append({"file": file, "title": figure.title, "reason": figure.reason})
        elif figure is not None:
            _draw(figure, out / file)
            record = {"file": file, "title": figure.title, "caption": figure.caption}
            figures.append({**record, **(figure.extra or {})})
    _remove_stale_figures(out, {figure["file"] for figure in figures})
    return figures, skipped


def _remove_stale_figures(out, drawn):
    """Remove the figures of ``out`` not in ``drawn``: left by an earlier run into it."""
    for name in FIGURE_FILES:
        if name not in drawn and (out / name).is_file():
            (out / name).unlink()


def _draw(figure, path):
    """Make the figure's display, set its axes title, save it as PNG and close it."""
    display = figure.make()
    if figure.axes_title is not None:
        display.ax_.set_title(figure.axes_title)
    fit_width(display.figure_)
    save_display(display, path)


def fit_width(fig, width=FIGURE_WIDTH):
    """Give ``fig`` the width ``width`` (inches): the report's figures share one scale.

    A wider figure shrinks with its aspect kept (its text keeps its size in
    points, so it reads as in the other figures); a narrower one widens to
    ``width`` at the same height (the layout spreads out; fixed-aspect
    images stay centred). A constrained layout gets a margin of 0.1 inch
    round the edge.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from skvae._report import fit_width
    >>> [fit_width(Figure(figsize=size)).get_size_inches().tolist()
    ...  for size in [(16, 4), (4, 3)]]
    [[8.0, 2.0], [8.0, 3.0]]
    """
    w, h = fig.get_size_inches()
    fig.set_size_inches(width, h * width / w if w > width else h)
    engine = fig.get_layout_engine()
    if engine is not None and "w_pad" in engine.get():  # constrained: a margin round the edge
        engine.set(w_pad=_MARGIN, h_pad=_MARGIN)
    return fig


# ------------------------------------------------------ model and baseline
#: Likelihood plugins that are densities of continuous data: their ELBO and
#: IWAE bound are in the units of PCA's (probabilistic PCA's) log-likelihood.
CONTINUOUS_LIKELIHOODS = ("gaussian", "laplace", "student_t", "continuous_bernoulli")


def describe_model(vae):
    """What the page says of a fitted model: its hyper-parameters and its likelihood.

    Parameters
    ----------
    vae : VAETransformer or a subclass
        Fitted.

    Returns
    -------
    description : dict
        ``params``: ``{name: repr(value)}`` of ``vae.get_params(deep=False)``;
        ``params_at_default``: the names of those whose value is the
        class's default (by their repr);
        ``likelihood_choice``: how the likelihood was chosen (by
        ``likelihood="auto"`` and why, or given); ``columns``: for a model
        fitted on a table, a list of ``{"name", "dtype", "kind",
        "likelihood"}``, one per column (``table_schema_``), else None.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAETransformer
    >>> from skvae._report import describe_model
    >>> X = np.random.RandomState(0).normal(size=(50, 3))
    >>> vae = VAETransformer(beta=0.5, max_iter=1, random_state=0).fit(X)
    >>> description = describe_model(vae)
    >>> description["params"]["beta"], description["params"]["likelihood"]
    ('0.5', "'auto'")
    >>> description["likelihood_choice"]
    "chosen by likelihood='auto': some training values lie outside [0, 1]"
    """
    params = {name: repr(value) for name, value in vae.get_params(deep=False).items()}
    defaults = {name: repr(value) for name, value in type(vae)().get_params(deep=False).items()}
    schema = getattr(vae, "table_schema_", None)
    columns = None
    if schema is not None:
        columns = [
            {"name": str(c.name), "dtype": c.dtype, "kind": c.kind, "likelihood": c.likelihood}
            for c in schema.columns
        ]
    return {
        "params": params,
        "params_at_default": [name for name in params if defaults.get(name) == params[name]],
        "likelihood_choice": _likelihood_choice(vae, schema),
        "columns": columns,
    }


def _likelihood_choice(vae, schema):
    """How the fitted likelihood came about, in a few words."""
    spec = vae.likelihood
    if not (isinstance(spec, str) and spec == "auto"):
        return f"given: likelihood={spec!r}"
    if schema is not None:
        return "chosen by likelihood='auto' for each column of the table (see Columns)"
    if getattr(vae.likelihood_, "name", None) == "bernoulli":
        return "chosen by likelihood='auto': every training value lies in [0, 1]"
    return "chosen by likelihood='auto': some training values lie outside [0, 1]"


def pca_baseline(vae, X_train, X_test, y_train=None, y_test=None, *, conditional=False,
                 random_state=0):
    """PCA with as many components as the VAE's latent dimensions, on the same split.

    What a number of the VAE means next to the simplest linear model:

    - reconstruction error of the VAE (``inverse_transform(transform(X))``,
      given the labels for a conditional model) and of PCA, on the training
      and the test set, in one unit: the squared error summed over the
      features (the observed ones, with missing entries), averaged over the
      rows. PCA sees missing entries as the training means;
    - with labels: the test accuracy of a logistic regression (features
      standardised) trained on the training rows' codes, on the VAE's
      posterior means (a conditional model's without labels, the unknown
      condition) vs on PCA's scores, beside the accuracy of always
      predicting the most frequent training class;
    - for a likelihood that is a density of continuous data
      (:data:`CONTINUOUS_LIKELIHOODS`): the test log-likelihood of
      probabilistic PCA (``PCA.score``), in nats per sample like the VAE's
      ELBO and IWAE bound. A discrete likelihood (Bernoulli, categorical,
      Poisson) has nats that a density cannot be compared with.

    Parameters
    ----------
    vae : VAETransformer or a subclass
        Fitted on ``X_train``.
    X_train, X_test : ndarray of shape (n_samples, n_features)
        The VAE's training and test data (NaN for missing entries).
    y_train, y_test : ndarray of shape (n_samples,), default=None
        Labels; the accuracies need both, with at least two classes.
    conditional : bool, default=False
        Whether ``vae`` was fitted with the labels (it reconstructs with them).
    random_state : int, default=0
        Seed of PCA's randomised solver (large data) and of the regression.

    Returns
    -------
    baseline : dict or None
        ``n_components`` (PCA's: the VAE's, at most ``min(n_samples,
        n_features)``), ``conditional`` (as given), ``reconstruction_error`` (``{"vae": {"train",
        "test"}, "pca": {"train", "test"}}``), ``accuracy`` (``{"vae",
        "pca", "chance"}`` or None) and ``pca_test_log_likelihood`` (float
        or None). None for a model fitted on a table (a DataFrame), whose
        columns PCA cannot take as they are.

    Examples
    --------
    >>> from skvae import VAETransformer
    >>> from skvae.datasets import load_digits
    >>> from skvae._report import pca_baseline
    >>> X, y = load_digits(return_X_y=True)
    >>> vae = VAETransformer(n_components=4, max_iter=5, random_state=0).fit(X[:300])
    >>> b = pca_baseline(vae, X[:300], X[300:400], y[:300], y[300:400])
    >>> b["n_components"], sorted(b["reconstruction_error"]), sorted(b["accuracy"])
    (4, ['pca', 'vae'], ['chance', 'pca', 'vae'])
    """
    if getattr(vae, "table_schema_", None) is not None:
        return None
    X_train, X_test = (_as_float(X) for X in (X_train, X_test))
    k = min(vae.n_components, *X_train.shape)
    pca, fill = _fit_pca(X_train, k, random_state)
    parts = {"train": (X_train, y_train), "test": (X_test, y_test)}
    errors = {
        "vae": {
            part: _reconstruction_error(X, _vae_reconstruction(vae, X, y if conditional else None))
            for part, (X, y) in parts.items()
        },
        "pca": {
            part: _reconstruction_error(X, pca.inverse_transform(pca.transform(fill(X))))
            for part, (X, _) in parts.items()
        },
    }
    accuracy = None
    if y_train is not None and y_test is not None and len(np.unique(y_train)) > 1:
        codes = {
            "vae": (vae.transform(X_train), vae.transform(X_test)),
            "pca": (pca.transform(fill(X_train)), pca.transform(fill(X_test))),
        }
        accuracy = _accuracies(codes, y_train, y_test, random_state)
    continuous = getattr(vae.likelihood_, "name", None) in CONTINUOUS_LIKELIHOODS
    missing = bool(np.isnan(X_train).any() or np.isnan(X_test).any())
    log_likelihood = float(pca.score(X_test)) if continuous and not missing else None
    return {
        "n_components": int(k),
        "conditional": bool(conditional),
        "reconstruction_error": errors,
        "accuracy": accuracy,
        "pca_test_log_likelihood": log_likelihood,
    }


def _as_float(X):
    """X as a float array: float32 kept (large image data), anything else as float64."""
    X = np.asarray(X)
    return X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)


def _fit_pca(X_train, k, random_state):
    """PCA fitted on ``X_train`` (missing entries as the column means), and the filling."""
    from sklearn.decomposition import PCA

    means = np.nanmean(X_train, axis=0)
    means = np.where(np.isnan(means), 0.0, means).astype(X_train.dtype)  # an empty column: 0

    def fill(X):
        missing = np.isnan(X)
        return np.where(missing, means, X) if missing.any() else X

    return PCA(n_components=k, random_state=random_state).fit(fill(X_train)), fill


def _vae_reconstruction(vae, X, y):
    """Decoded posterior means of X (given the labels y, unless None)."""
    if y is None:
        return vae.inverse_transform(vae.transform(X))
    return vae.inverse_transform(vae.transform(X, y), y)


def _reconstruction_error(X, X_hat):
    """Squared error summed over the observed features, averaged over the rows."""
    squared = (X - np.asarray(X_hat, dtype=X.dtype)) ** 2
    return float(np.mean(np.nansum(squared, axis=1, dtype=np.float64)))


def _accuracies(codes, y_train, y_test, random_state):
    """Test accuracy on each model's codes, and of predicting the most frequent class."""
    accuracy = {
        name: _code_accuracy(train, test, y_train, y_test, random_state)
        for name, (train, test) in codes.items()
    }
    values, counts = np.unique(y_train, return_counts=True)
    accuracy["chance"] = float(np.mean(np.asarray(y_test) == values[np.argmax(counts)]))
    return accuracy


def _code_accuracy(Z_train, Z_test, y_train, y_test, random_state):
    """Test accuracy of a logistic regression on standardised codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=1000, random_state=random_state)
    )
    return float(model.fit(Z_train, y_train).score(Z_test, y_test))


# -------------------------------------------------------------------- page
_CSS = """\
body { font-family: system-ui, sans-serif; max-width: 62em; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; max-width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
thead th { border-bottom: 2px solid #bbb; }
td.value { font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
details { margin: 0.8em 0; }
summary { cursor: pointer; color: #444; }
nav ol { margin: 0.3em 0; }
nav > ol > li { margin: 0.15em 0; }
.note { border-left: 4px solid #d9822b; background: #fdf5ec; padding: 0.5em 1em;
        margin: 1em 0; }
figure { margin: 2.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { margin-top: 0.4em; color: #444; }
code { font-size: 0.95em; overflow-wrap: anywhere; }
footer { margin-top: 3em; color: #777; font-size: 0.9em; }
"""
_esc = html.escape


class _Section(NamedTuple):
    """A section of the page: its id (the table of contents links to it), heading, body."""

    id: str
    heading: str
    lines: list
    entries: tuple = ()  # (id, title) of its parts, listed under it in the contents


def _number(value, fmt="{:.3f}"):
    return "n/a" if value is None else fmt.format(value)


def _value_rows(rows):
    """``<tr>`` lines of ``(name, value)`` pairs, both escaped."""
    return [
        f'<tr><th scope="row">{_esc(name)}</th><td class="value">{_esc(value)}</td></tr>'
        for name, value in rows
    ]


def _table(rows, table_id=None, header=None):
    """A table of ``(name, value)`` rows (or of longer rows under ``header``)."""
    lines = [f'<table id="{table_id}">' if table_id else "<table>"]
    if header is not None:
        cells = "".join(f'<th scope="col">{_esc(h)}</th>' for h in header)
        lines.append(f"<thead><tr>{cells}</tr></thead>")
        lines += [
            f'<tr><th scope="row">{_esc(row[0])}</th>'
            + "".join(f'<td class="value num">{_esc(v)}</td>' for v in row[1:])
            + "</tr>"
            for row in rows
        ]
    else:
        lines += _value_rows(rows)
    return [*lines, "</table>"]


def _notes(metrics):
    """The warnings a reader must see first: no convergence, collapsed latent units."""
    notes = []
    message = metrics.get("convergence_warning")
    if message:
        notes.append(
            f"<strong>Training did not converge.</strong> {_esc(message)} With "
            "<code>skvae fit</code>: raise <code>--epochs</code>."
        )
    n, active = metrics["n_components"], metrics["active_units"]
    if active < n:
        notes.append(_collapse_note(n, active, metrics["active_units_threshold"]))
    return [f'<p class="note">{note}</p>' for note in notes]


def _collapse_note(n, active, threshold):
    """The note on inactive (collapsed) latent units."""
    inactive = n - active
    if active == 0:
        which = f"None of the {n} latent units is active"
        uses = "the codes carry almost nothing about the input"
    else:
        which = f"{inactive} of the {n} latent units {'is' if inactive == 1 else 'are'} inactive"
        uses = f"the model uses {active} of its {n} dimensions"
    return (
        f"<strong>Latent units collapsed.</strong> {which}: the variance of "
        f"{'their' if inactive > 1 else 'its'} posterior means over the test set is at "
        f"most {threshold:g}, so {'they carry' if inactive > 1 else 'it carries'} almost "
        f"no information about the input (posterior collapse) and {uses}. Fewer latent "
        "dimensions would do as well; a KL warm-up (<code>--kl-warmup</code>, "
        "<code>kl_warmup</code>), free bits (<code>free_bits</code>) or more epochs "
        "may bring more units into use."
    )


def _likelihood_text(metrics):
    choice = metrics.get("likelihood_choice")
    return metrics["likelihood"] + (f" ({choice})" if choice else "")


def _model_section(metrics):
    """The data (shape and split) and the model: estimator, plugins, latent size."""
    n_features = metrics["n_features"]
    rows = [
        ("Data", metrics["data_name"]),
        ("Training set", f"{metrics['n_train']} rows × {n_features} features"),
        ("Test set", f"{metrics['n_test']} rows × {n_features} features"),
    ]
    if metrics.get("image_shape"):
        rows.append(("One row as an image", " × ".join(map(str, metrics["image_shape"]))
                     + " (height × width × channels)"))  # fmt: skip
    rows += [
        ("Estimator", metrics["estimator"]),
        ("Architecture", metrics["architecture"]),
        ("Likelihood", _likelihood_text(metrics)),
        ("Prior", metrics["prior"]),
        ("Latent dimensions", str(metrics["n_components"])),
    ]
    lines = _table(rows, "model-table")
    columns = metrics.get("columns")
    if columns:
        lines += [
            '<h3 id="columns">Columns</h3>',
            "<p>The likelihood of each column of the table "
            "(<code>table_schema_</code>).</p>",
            *_table(
                [(c["name"], c["dtype"], c["kind"], c["likelihood"]) for c in columns],
                "columns-table",
                header=("column", "dtype", "kind", "likelihood"),
            ),
        ]
    return _Section("model", "Data and model", lines)


def _metric_rows(metrics):
    """``(name, value)`` rows of the page's metrics table, as text."""
    n_iter, max_iter = metrics["n_iter"], metrics["max_iter"]
    epochs = f"{n_iter} of {max_iter}" + ("" if n_iter == max_iter else " (stopped early)")
    return [
        ("Epochs", epochs),
        ("Fit time", f"{metrics['fit_seconds']:.1f} s"),
        ("Train ELBO (nats per sample)", _number(metrics["train_elbo"])),
        ("Test ELBO (nats per sample)", _number(metrics["test_elbo"])),
        (
            f"Test log-likelihood, IWAE bound with k={metrics['iwae_k']} (nats per sample)",
            _number(metrics["test_log_likelihood"]),
        ),
        (
            "Active latent units",
            f"{metrics['active_units']} of {metrics['n_components']} (variance of the "
            f"posterior mean > {metrics['active_units_threshold']:g})",
        ),
        *_task_rows(metrics),
    ]


def _task_rows(metrics):
    """Rows of a detector's offset and flagged shares, and of the missing entries."""
    rows = []
    if "offset" in metrics:
        rows += [
            ("Outlier score", f"{metrics['score_method']} (contamination "
                              f"{metrics['contamination']})"),
            ("Offset (decision_function = score - offset)", f"{metrics['offset']:.3f}"),
            ("Training rows predicted outliers", f"{metrics['train_outlier_share']:.1%}"),
            ("Test rows predicted outliers", f"{metrics['test_outlier_share']:.1%}"),
        ]
    if "train_missing_share" in metrics:
        rows += [
            ("Missing entries, training set", f"{metrics['train_missing_share']:.1%}"),
            ("Missing entries, test set", f"{metrics['test_missing_share']:.1%}"),
        ]
    return rows


def _metrics_section(metrics):
    lines = [
        "<p>ELBO and log-likelihood: higher is better. The IWAE bound is the tighter "
        "estimate of the test log-likelihood; the Baseline section says what the "
        "numbers are worth.</p>",
        *_table(_metric_rows(metrics), "metrics-table"),
    ]
    return _Section("metrics", "Metrics", lines)


def _baseline_section(metrics):
    """The VAE beside PCA with as many components (see :func:`pca_baseline`)."""
    base = metrics.get("baseline")
    if not base:
        return None
    k, err = base["n_components"], base["reconstruction_error"]
    rows = [(f"Reconstruction error, {name} set", _number(err["vae"][part]),
             _number(err["pca"][part]))
            for name, part in (("training", "train"), ("test", "test"))]  # fmt: skip
    accuracy = base.get("accuracy")
    if accuracy:
        rows.append((
            "Test accuracy of a logistic regression on the codes "
            f"(predicting the most frequent class: {accuracy['chance']:.1%})",
            f"{accuracy['vae']:.1%}", f"{accuracy['pca']:.1%}",
        ))  # fmt: skip
    ll = base.get("pca_test_log_likelihood")
    if ll is not None:
        rows.append(("Test log-likelihood (nats per sample; VAE: IWAE bound)",
                     _number(metrics["test_log_likelihood"]), _number(ll)))  # fmt: skip
    lines = [
        f"<p>PCA with {k} components, fitted on the same training rows, tested on the "
        "same test rows. Reconstruction error: squared error summed over the features"
        + (" (the observed ones; PCA sees missing entries as the training means)"
           if "train_missing_share" in metrics else "")
        + ", averaged over the rows; lower is better. The VAE reconstructs a row as the "
        "decoded mean of its posterior mean.</p>",
        *_table(rows, "baseline-table", header=("", "VAE", "PCA")),
        f"<p>{_esc(_baseline_remark(metrics, base))}</p>",
    ]
    return _Section("baseline", f"Baseline: PCA with {k} components", lines)


def _baseline_remark(metrics, base):
    """What the table leaves out: the accuracy without labels, the nats without a density."""
    remarks = []
    if not base.get("accuracy"):
        remarks.append("No labels: no accuracy of the codes.")
    else:
        remarks.append(
            "The accuracy says how much of the label the codes keep (a logistic regression, "
            "features standardised, trained on the training rows' codes)."
        )
    if base.get("conditional"):
        remarks.append(
            "The conditional VAE reconstructs each row given its label, and its codes "
            "are encoded without labels (the unknown condition): a model that leaves the "
            "label to its condition keeps less of it in z, so a lower accuracy than PCA's "
            "is what it aims for."
        )
    if base.get("pca_test_log_likelihood") is None:
        if "train_missing_share" in metrics:
            remarks.append("No log-likelihood of PCA on data with missing entries.")
        else:
            remarks.append(
                f"No log-likelihood of PCA: the {metrics['likelihood']} likelihood gives "
                "nats of a discrete distribution, which the nats of a density of "
                "continuous data (probabilistic PCA) cannot be compared with."
            )
    else:
        remarks.append(
            "Log-likelihoods: probabilistic PCA's exact value beside the VAE's lower bound, "
            "both densities of the same data."
        )
    return " ".join(remarks)


def _params_section(metrics):
    """The estimator's parameters: those set for the run, then (folded) the defaults."""
    params = metrics.get("params")
    if not params:
        return None
    at_default = set(metrics.get("params_at_default") or ())
    given = sorted((k, v) for k, v in params.items() if k not in at_default)
    default = sorted((k, v) for k, v in params.items() if k in at_default)
    lines = [
        f"<p>The parameters of {_esc(metrics['estimator'])} "
        "(<code>get_params(deep=False)</code>), as Python reads them: "
        f"{len(given)} set for this run, {len(default)} at their defaults.</p>",
        *_table(given, "hyper-parameters-table"),
    ]
    if default:
        lines += [
            "<details>",
            f"<summary>The {len(default)} parameters at their defaults</summary>",
            *_table(default, "default-parameters-table"),
            "</details>",
        ]
    return _Section("hyper-parameters", "Hyper-parameters", lines)


def _figures_section(figures):
    """Each figure with its number and caption."""
    from urllib.parse import quote

    lines, entries = [], []
    for number, figure in enumerate(figures, 1):
        stem = figure["file"].rsplit(".", 1)[0]
        entries.append((stem, figure["title"]))
        lines += [
            f'<figure id="{_esc(stem)}">',
            f'<img src="{_esc(quote(figure["file"]))}" alt="{_esc(figure["title"])}">',
            f"<figcaption><strong>Figure {number}. {_esc(figure['title'])}.</strong> "
            f"{_esc(figure['caption'])}</figcaption>",
            "</figure>",
        ]
    return _Section("figures", "Figures", lines, tuple(entries))


def _skipped_section(skipped):
    if not skipped:
        return None
    lines = ["<ul>"]
    lines += [
        f"<li>{_esc(item['title'])} ({_esc(item['file'])}): {_esc(item['reason'])}.</li>"
        for item in skipped
    ]
    return _Section("not-drawn", "Not drawn", [*lines, "</ul>"])


def _contents(sections):
    """The table of contents: a link to each section and to each figure."""
    lines = ['<nav id="contents" aria-label="Contents">', "<h2>Contents</h2>", "<ol>"]
    for section in sections:
        link = f'<a href="#{section.id}">{_esc(section.heading)}</a>'
        if section.entries:
            items = "".join(
                f'<li><a href="#{_esc(i)}">{_esc(title)}</a></li>' for i, title in section.entries
            )
            link += f"<ol>{items}</ol>"
        lines.append(f"<li>{link}</li>")
    return [*lines, "</ol>", "</nav>"]


def _head(title):
    """The page's opening lines, up to its ``<body>``."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<style>\n{_CSS}</style>",
        "</head>",
        "<body>",
    ]


def _intro(title, metrics):
    """The heading and a sentence on the run with links to its files."""
    return [
        f"<h1>{_esc(title)}</h1>",
        f"<p>{_esc(metrics['estimator'])} with {_esc(str(metrics['n_components']))} latent "
        f"dimensions, fitted on {_esc(str(metrics['n_train']))} samples of "
        f"{_esc(metrics['data_name'])}. Files: "
        '<a href="model.skvae">model.skvae</a> (read it with <code>skvae.load</code>), '
        '<a href="metrics.json">metrics.json</a>.</p>',
    ]


def _footer(metrics):
    """The command that made the page and skvae's version; the closing tags."""
    return [
        f"<footer>Made by <code>{_esc(metrics['command'])}</code> with skvae "
        f"{_esc(metrics['skvae_version'])}.</footer>",
        "</body>",
        "</html>",
        "",
    ]


def write_index(out, metrics, figures, skipped=()):
    """Write ``index.html``: notes, contents, the numbers, then each figure.

    The page opens with a note for each warning of the run (training that
    did not converge, from ``metrics["convergence_warning"]``; latent units
    that collapsed, fewer active units than latent dimensions) and a table
    of contents that links to each section and figure. Then the data and
    the model (the data's shape, the likelihood and how it was chosen, the
    likelihood of each column of a table), the metrics, the PCA baseline
    (``metrics["baseline"]``, see :func:`pca_baseline`), the
    hyper-parameters (``metrics["params"]``), the figures with their
    captions and the figures not drawn. Entries of ``metrics`` that a
    section needs and that are missing leave that section out.

    A static page with relative links only (the folder can be moved or
    served as it is); every text from the run is HTML-escaped.

    Parameters
    ----------
    out : pathlib.Path
        The output folder, holding the figures.
    metrics : dict
        The contents of ``metrics.json``.
    figures : list of dict
        ``file``, ``title`` and ``caption`` of each figure, in page order.
    skipped : list of dict, default=()
        ``file``, ``title`` and ``reason`` of figures not drawn.

    Returns
    -------
    path : pathlib.Path
        ``out / "index.html"``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from skvae._report import write_index
    >>> metrics = dict(data_name="a<b", n_features=3, n_train=8, n_test=2,
    ...     estimator="VAETransformer", architecture="MLP()", likelihood="Gaussian()",
    ...     prior="Normal()", n_components=2, n_iter=1, max_iter=1, fit_seconds=0.1,
    ...     train_elbo=-1.0, test_elbo=-2.0, test_log_likelihood=None, iwae_k=100,
    ...     active_units=1, active_units_threshold=0.01, skvae_version="0", command="skvae fit")
    >>> figures = [{"file": "samples.png", "title": "Samples", "caption": "z ~ p(z)"}]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     page = write_index(pathlib.Path(tmp), metrics, figures).read_text()
    >>> "a&lt;b" in page, 'src="samples.png"' in page, 'href="#samples"' in page
    (True, True, True)
    >>> "Latent units collapsed" in page  # 1 active unit of 2
    True
    """
    title = f"skvae fit: {metrics['data_name']}"
    notes = _notes(metrics)
    sections = [
        _Section("notes", "Notes", notes) if notes else None,
        _model_section(metrics),
        _metrics_section(metrics),
        _baseline_section(metrics),
        _params_section(metrics),
        _figures_section(figures) if figures else None,
        _skipped_section(skipped),
    ]
    sections = [s for s in sections if s is not None]
    lines = [*_head(title), *_intro(title, metrics), *_contents(sections)]
    for section in sections:
        lines += [f'<section id="{section.id}">', f"<h2>{_esc(section.heading)}</h2>",
                  *section.lines, "</section>"]  # fmt: skip
    lines += _footer(metrics)
    path = out / "index.html"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
