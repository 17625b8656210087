"""The report of ``skvae fit``: every figure as PNG, and ``index.html`` to show them.

:func:`write_figures` draws each figure of :mod:`skvae.plotting` that applies
to a fitted model, one small writer per figure (:data:`FIGURE_WRITERS`, in
the order of the page); :func:`write_index` writes the page: the metrics as a
table, then each figure with its caption, then the figures not drawn and why.

:mod:`skvae.cli` imports this module only when it draws (matplotlib, torch
and scikit-learn load with it), so that ``skvae --help`` stays fast.
"""

import html
import math
from typing import Callable, NamedTuple

import numpy as np

from . import plotting

#: Variance threshold of the posterior means for a latent unit to be active.
ACTIVE_THRESHOLD = 0.01
# Latent dimensions swept in latent_traversal.png: the most active ones.
_MAX_TRAVERSAL_DIMS = 10
# Rows shown in outliers.png: the lowest scores of the test set.
_MAX_OUTLIERS_SHOWN = 10
_DPI = 120


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
        + (", both given the labels." if ctx.conditional else ".")
        + _missing_note(ctx),
        lambda: plotting.ReconstructionDisplay.from_estimator(
            ctx.vae, ctx.X_test, labels, n_samples=n_shown, **ctx.look
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
    reconstructions, the latent traversal, the training curves, the KL per
    latent dimension (for priors that factorise over dimensions) and the
    samples of each class (for a model fitted with labels) and the most
    anomalous test rows (for a :class:`~skvae.VAEOutlierDetector`).

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
    save_display(display, path)


# -------------------------------------------------------------------- page
_CSS = """\
body { font-family: system-ui, sans-serif; max-width: 62em; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; }
td.value { font-variant-numeric: tabular-nums; }
figure { margin: 2.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { margin-top: 0.4em; color: #444; }
code { font-size: 0.95em; }
footer { margin-top: 3em; color: #777; font-size: 0.9em; }
"""


def _metric_rows(metrics):
    """``(name, value)`` rows of the page's metrics table, as text."""

    def number(value, fmt="{:.3f}"):
        return "n/a" if value is None else fmt.format(value)

    n_iter, max_iter = metrics["n_iter"], metrics["max_iter"]
    epochs = f"{n_iter} of {max_iter}" + ("" if n_iter == max_iter else " (stopped early)")
    return [
        ("Data", f"{metrics['data_name']} ({metrics['n_features']} features)"),
        ("Training samples", str(metrics["n_train"])),
        ("Test samples", str(metrics["n_test"])),
        ("Estimator", metrics["estimator"]),
        ("Architecture", metrics["architecture"]),
        ("Likelihood", metrics["likelihood"]),
        ("Prior", metrics["prior"]),
        ("Latent dimensions", str(metrics["n_components"])),
        ("Epochs", epochs),
        ("Fit time", f"{metrics['fit_seconds']:.1f} s"),
        ("Train ELBO (nats per sample)", number(metrics["train_elbo"])),
        ("Test ELBO (nats per sample)", number(metrics["test_elbo"])),
        (
            f"Test log-likelihood, IWAE bound with k={metrics['iwae_k']} (nats per sample)",
            number(metrics["test_log_likelihood"]),
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


def _head(title):
    """The page's opening lines, up to its ``<body>``."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>\n{_CSS}</style>",
        "</head>",
        "<body>",
    ]


def _summary(title, metrics):
    """The heading, a sentence on the run with links to its files, and the metrics table."""
    esc = html.escape
    lines = [
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(metrics['estimator'])} with {esc(str(metrics['n_components']))} latent "
        f"dimensions, fitted on {esc(str(metrics['n_train']))} samples of "
        f"{esc(metrics['data_name'])}. Files: "
        '<a href="model.skvae">model.skvae</a> (read it with <code>skvae.load</code>), '
        '<a href="metrics.json">metrics.json</a>.</p>',
        "<h2>Metrics</h2>",
        '<table id="metrics">',
    ]
    lines += [
        f'<tr><th scope="row">{esc(name)}</th><td class="value">{esc(value)}</td></tr>'
        for name, value in _metric_rows(metrics)
    ]
    lines.append("</table>")
    return lines


def _figure_sections(figures, skipped):
    """Each figure with its number and caption, then the figures not drawn and why."""
    from urllib.parse import quote

    esc = html.escape
    lines = ["<h2>Figures</h2>"]
    for number, figure in enumerate(figures, 1):
        stem = figure["file"].rsplit(".", 1)[0]
        lines += [
            f'<figure id="{esc(stem)}">',
            f'<img src="{esc(quote(figure["file"]))}" alt="{esc(figure["title"])}">',
            f"<figcaption><strong>Figure {number}. {esc(figure['title'])}.</strong> "
            f"{esc(figure['caption'])}</figcaption>",
            "</figure>",
        ]
    if skipped:
        lines += ["<h2>Not drawn</h2>", "<ul>"]
        lines += [
            f"<li>{esc(item['title'])} ({esc(item['file'])}): {esc(item['reason'])}.</li>"
            for item in skipped
        ]
        lines.append("</ul>")
    return lines


def _footer(metrics):
    """The command that made the page and skvae's version; the closing tags."""
    return [
        f"<footer>Made by <code>{html.escape(metrics['command'])}</code> with skvae "
        f"{html.escape(metrics['skvae_version'])}.</footer>",
        "</body>",
        "</html>",
        "",
    ]


def write_index(out, metrics, figures, skipped=()):
    """Write ``index.html``: the metrics as a table and each figure with its caption.

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
    >>> "a&lt;b" in page, 'src="samples.png"' in page
    (True, True)
    """
    title = f"skvae fit: {metrics['data_name']}"
    lines = [
        *_head(title),
        *_summary(title, metrics),
        *_figure_sections(figures, skipped),
        *_footer(metrics),
    ]
    path = out / "index.html"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
