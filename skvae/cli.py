"""The ``skvae`` command: fit a VAE from the shell, list the plugins.

Subcommands
-----------
``skvae fit``
    Fit a :class:`~skvae.VAETransformer` on the scikit-learn digits (the
    default), on a ``.npy`` file or on a ``.csv`` file, report the train and
    test ELBO, and write the model, the metrics and four figures into an
    output folder.
``skvae plugins``
    Print a table of the registered architectures, likelihoods and priors.

Examples
--------
From the shell::

    skvae fit --epochs 50 --out runs/digits
    skvae fit --data X.csv --likelihood gaussian --n-components 8
    skvae plugins
    skvae --version

From Python, :func:`main` takes the argument list and returns the exit code:

>>> from skvae.cli import main
>>> main(["plugins"])  # doctest: +SKIP
0
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

#: Exit status for usage errors and expected failures (as argparse uses).
EXIT_USAGE = 2
PROG = "skvae"

_DEFAULT_HIDDEN_SIZES = (256, 128)
# Test-set samples shown in reconstructions.png.
_N_RECONSTRUCTIONS = 10
# Grid of generated samples in samples.png: (rows, columns) for images, lines.
_SAMPLE_GRID_IMAGES = (4, 8)
_SAMPLE_GRID_LINES = (3, 4)


class CLIError(Exception):
    """An expected failure that is reported as ``skvae: error: <message>``."""


# --------------------------------------------------------------- arguments
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _float_in(low, high, *, low_open, high_open, what):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


_positive_float = _float_in(0.0, math.inf, low_open=True, high_open=True, what="a positive number")
_non_negative_float = _float_in(
    0.0, math.inf, low_open=False, high_open=True, what="a non-negative number"
)
_unit_float = _float_in(0.0, 1.0, low_open=False, high_open=False, what="a number in [0, 1]")
_open_unit_float = _float_in(
    0.0, 1.0, low_open=True, high_open=True, what="a number strictly between 0 and 1"
)


def _hidden_sizes(text):
    parts = [part.strip() for part in text.split(",")]
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        sizes = ()
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive integers such as 256,128; got {text!r}"
        )
    return sizes


def _version():
    from . import __version__

    return __version__


def build_parser():
    """Build the argument parser of the ``skvae`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser, with the subcommands ``fit`` and ``plugins``; each
        subparser sets the ``func`` default to the function that runs it and
        ``parser`` to itself.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Variational autoencoders as scikit-learn transformers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fit = subparsers.add_parser(
        "fit",
        help="fit a VAE and write the model, metrics and figures",
        description=(
            "Fit a VAETransformer, report the train and test ELBO (nats per "
            "sample, higher is better) and write metrics.json, model.joblib, "
            "latent.png, reconstructions.png, samples.png and loss.png into --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = fit.add_argument_group("data")
    data.add_argument(
        "--data",
        default="digits",
        help="'digits' (scikit-learn's digits scaled to [0, 1], with labels) or "
        "a 2-D array in a .npy or .csv file (a non-numeric header row is skipped)",
    )
    data.add_argument(
        "--test-size",
        type=_open_unit_float,
        default=0.2,
        help="share of the samples held out as the test set",
    )
    model = fit.add_argument_group("model")
    model.add_argument(
        "--architecture", default="mlp", help="registered architecture name (see `skvae plugins`)"
    )
    model.add_argument(
        "--likelihood",
        default="auto",
        help="registered likelihood name, or 'auto': bernoulli for data in [0, 1], "
        "else gaussian",
    )
    model.add_argument("--prior", default="normal", help="registered prior name")
    model.add_argument(
        "--n-components", type=_positive_int, default=2, help="size of the latent space"
    )
    model.add_argument(
        "--hidden-sizes",
        type=_hidden_sizes,
        default=None,
        metavar="N[,N...]",
        help="hidden layer widths of the mlp architecture "
        f"(default: {','.join(map(str, _DEFAULT_HIDDEN_SIZES))})",
    )
    training = fit.add_argument_group("training")
    training.add_argument(
        "--epochs", type=_positive_int, default=50, help="number of epochs (max_iter)"
    )
    training.add_argument("--batch-size", type=_positive_int, default=128, help="minibatch size")
    training.add_argument(
        "--learning-rate", type=_positive_float, default=1e-3, help="Adam step size"
    )
    training.add_argument(
        "--beta", type=_non_negative_float, default=1.0, help="weight of the KL term"
    )
    training.add_argument(
        "--kl-warmup",
        type=_unit_float,
        default=0.0,
        help="fraction of the epochs over which beta ramps up from 0",
    )
    training.add_argument(
        "--random-state", type=int, default=0, help="seed of the split and of training"
    )
    training.add_argument(
        "--device", default="auto", help="torch device: 'auto', 'cpu', 'cuda', 'cuda:1', ..."
    )
    output = fit.add_argument_group("output")
    output.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder, created if needed (default: runs/<data name>, "
        "e.g. runs/digits)",
    )
    output.add_argument("--quiet", action="store_true", help="no progress bar and no report")
    fit.set_defaults(func=run_fit, parser=fit)

    plugins = subparsers.add_parser(
        "plugins",
        help="list the registered plugins",
        description="List every registered plugin: kind, name, class and provider.",
    )
    plugins.set_defaults(func=run_plugins, parser=plugins)
    return parser


def main(argv=None):
    """Run the ``skvae`` command.

    Parameters
    ----------
    argv : list of str or None, default=None
        Command-line arguments without the program name; None reads
        ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 2 after an expected error (bad data, a parameter the
        estimator rejects), which is printed as ``skvae: error: <message>``
        on stderr without a traceback; 130 when interrupted.

    Raises
    ------
    SystemExit
        From argparse: status 2 with a usage message for bad arguments,
        status 0 for ``--help`` and ``--version``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "fit" and args.hidden_sizes is not None and args.architecture != "mlp":
        args.parser.error(
            f"--hidden-sizes applies to --architecture mlp only, not {args.architecture!r}"
        )
    try:
        return args.func(args)
    except (CLIError, ValueError, OSError, FloatingPointError) as exc:
        print(f"{PROG}: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _message(exc):
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return f"no such file: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------- data
def load_data(spec):
    """Load the data set named by ``--data``.

    Parameters
    ----------
    spec : str
        ``"digits"`` for :func:`sklearn.datasets.load_digits` scaled to
        [0, 1] (pixel values divided by 16), or the path of a ``.npy`` file
        or of a comma-separated ``.csv`` file (its first row is skipped when
        it is not numeric, i.e. a header) holding a 2-D numeric array.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
        The data.
    y : ndarray of shape (n_samples,) or None
        The labels of the digits; None for files.
    name : str
        A short name of the data set (``"digits"`` or the file stem).

    Raises
    ------
    CLIError
        If the file does not exist, has another extension, cannot be read
        or does not hold a 2-D numeric array.
    """
    if spec == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return (X / 16.0).astype(np.float32), y, "digits"

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise CLIError(f"--data must be 'digits' or a path ending in .npy or .csv; got {spec!r}")
    if not path.is_file():
        raise CLIError(f"data file not found: {spec}")
    try:
        if suffix == ".npy":
            with open(path, "rb") as f:
                if f.read(6) != b"\x93NUMPY":
                    raise CLIError(f"{spec} is not a .npy file (see numpy.save)")
            X = np.load(path, allow_pickle=False)
        else:
            X = _load_csv(path)
    except (ValueError, OSError) as exc:
        raise CLIError(f"cannot read {spec}: {_message(exc)}") from None
    if X.ndim != 2:
        raise CLIError(
            f"{spec} must hold a 2-D array (samples x features); got shape {X.shape}"
        )
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise CLIError(f"{spec} must hold real numbers; got dtype {X.dtype}")
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise CLIError(
            f"{spec} must hold at least 2 samples and 1 feature; got shape {X.shape}"
        )
    return X.astype(np.float32), None, path.stem


def _load_csv(path):
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline()
    try:
        [float(cell) for cell in first.split(",")]
        skiprows = 0
    except ValueError:
        skiprows = 1  # a header
    return np.loadtxt(
        path, delimiter=",", skiprows=skiprows, ndmin=2, dtype=np.float64, encoding="utf-8-sig"
    )


# ---------------------------------------------------------------------- fit
def make_estimator(args):
    """Build the :class:`~skvae.VAETransformer` that ``skvae fit`` trains.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``fit`` arguments.

    Returns
    -------
    vae : VAETransformer
        Unfitted. With ``--architecture mlp`` the architecture is
        ``skvae_plugins.mlp.MLP(hidden_sizes=...)``; any other architecture
        is passed by name.
    """
    from . import VAETransformer

    architecture = args.architecture
    if architecture == "mlp":
        from skvae_plugins.mlp import MLP

        architecture = MLP(hidden_sizes=args.hidden_sizes or _DEFAULT_HIDDEN_SIZES)
    return VAETransformer(
        n_components=args.n_components,
        architecture=architecture,
        likelihood=args.likelihood,
        prior=args.prior,
        beta=args.beta,
        kl_warmup=args.kl_warmup,
        max_iter=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        device=args.device,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
    )


def _check_plugin_names(args):
    """Fail before loading data and training when a plugin name is unknown."""
    from ._registry import resolve_plugin

    resolve_plugin("architecture", args.architecture)
    if args.likelihood != "auto":
        resolve_plugin("likelihood", args.likelihood)
    resolve_plugin("prior", args.prior)


def run_fit(args):
    """Run ``skvae fit``: fit, report and write the outputs.

    Writes into ``args.out``:

    - ``metrics.json``: train and test ELBO, epochs run, fit time, the
      resolved plugins and the per-epoch history;
    - ``model.joblib``: the fitted estimator, saved with :func:`joblib.dump`
      (a pickle: load only files you trust; a safe, shareable format is a
      later addition);
    - ``latent.png``, ``reconstructions.png``, ``samples.png`` and
      ``loss.png``: see :func:`plot_latent`, :func:`plot_reconstructions`,
      :func:`plot_samples` and :func:`plot_history`.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``fit`` arguments.

    Returns
    -------
    status : int
        0.
    """
    import joblib
    from sklearn.model_selection import train_test_split

    _check_plugin_names(args)
    X, y, name = load_data(args.data)
    out = args.out if args.out is not None else Path("runs") / name
    if y is None:
        X_train, X_test = train_test_split(
            X, test_size=args.test_size, random_state=args.random_state
        )
        y_test = None
    else:
        X_train, X_test, _, y_test = train_test_split(
            X, y, test_size=args.test_size, random_state=args.random_state
        )
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    vae = make_estimator(args)
    start = time.perf_counter()
    vae.fit(X_train)
    fit_seconds = time.perf_counter() - start
    train_elbo = vae.score(X_train)
    test_elbo = vae.score(X_test)

    paths = {
        "metrics": out / "metrics.json",
        "model": out / "model.joblib",
        "latent": out / "latent.png",
        "reconstructions": out / "reconstructions.png",
        "samples": out / "samples.png",
        "loss": out / "loss.png",
    }
    metrics = {
        "train_elbo": train_elbo,
        "test_elbo": test_elbo,
        "n_iter": vae.n_iter_,
        "fit_seconds": fit_seconds,
        "n_components": vae.n_components,
        "architecture": repr(vae.architecture_),
        "likelihood": repr(vae.likelihood_),
        "prior": repr(vae.prior_),
        "data": args.data,
        "n_train": int(X_train.shape[0]),
        "n_test": int(X_test.shape[0]),
        "n_features": int(X.shape[1]),
        "skvae_version": _version(),
        "args": {k: _jsonable(v) for k, v in vars(args).items() if k not in ("func", "parser")},
        "history": vae.history_,
    }
    with open(paths["metrics"], "w", encoding="utf-8") as f:
        json.dump(_jsonable(metrics), f, indent=2, allow_nan=False)
        f.write("\n")
    joblib.dump(vae, paths["model"])

    value_range = (float(X_train.min()), float(X_train.max()))
    label_name = "digit" if name == "digits" else None
    plot_latent(vae, X_test, y_test, paths["latent"], label_name=label_name)
    plot_reconstructions(vae, X_test[:_N_RECONSTRUCTIONS], paths["reconstructions"], value_range)
    plot_samples(vae, paths["samples"], value_range, random_state=args.random_state)
    plot_history(vae.history_, paths["loss"])

    if not args.quiet:
        stopped = "" if vae.n_iter_ == args.epochs else " (stopped early: no improvement)"
        print(
            f"Fitted {type(vae).__name__} on {name}: {X_train.shape[0]} train / "
            f"{X_test.shape[0]} test samples of {X.shape[1]} features\n"
            f"  model       {vae.architecture_!r}, {vae.likelihood_!r} likelihood, "
            f"{vae.prior_!r} prior, n_components={vae.n_components}\n"
            f"  train ELBO  {train_elbo:10.3f} nats per sample\n"
            f"  test ELBO   {test_elbo:10.3f} nats per sample (higher is better)\n"
            f"  epochs      {vae.n_iter_} of {args.epochs}{stopped}\n"
            f"  fit time    {fit_seconds:.1f} s\n"
            f"Wrote {', '.join(p.name for p in paths.values())} to {out}"
        )
    return 0


def _jsonable(value):
    """Turn ``value`` into JSON data; non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


# ------------------------------------------------------------------ figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _image_side(n_features):
    """Side of the square image with ``n_features`` pixels, or None."""
    side = math.isqrt(n_features)
    return side if side >= 2 and side * side == n_features else None


def plot_latent(vae, X, y, path, label_name=None):
    """Save a scatter plot of the posterior means of ``X``.

    Parameters
    ----------
    vae : VAETransformer
        Fitted.
    X : ndarray of shape (n_samples, n_features)
        Data to encode (the test set).
    y : ndarray of shape (n_samples,) or None
        Labels that colour the points; without labels the points are
        coloured by their ELBO (:meth:`~skvae.VAETransformer.score_samples`).
    path : path-like
        PNG file to write.
    label_name : str, default=None
        Title of the colour bar for labels (default "label").
    """
    plt = _pyplot()
    Z = vae.transform(X)
    k = Z.shape[1]
    if k > 2 and Z.shape[0] >= 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(Z)
        Z = pca.transform(Z)
        ratio = pca.explained_variance_ratio_
        xlabel = f"PC 1 of z ({ratio[0]:.0%} of variance)"
        ylabel = f"PC 2 of z ({ratio[1]:.0%} of variance)"
        title = f"Test-set posterior means, {k}-D latent space projected by PCA"
    elif k >= 2:
        xlabel, ylabel = "$z_1$", "$z_2$"
        title = "Test-set posterior means"
        Z = Z[:, :2]
    else:
        xlabel, ylabel = "$z_1$", label_name or "label"
        title = "Test-set posterior means (1-D latent space)"

    fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
    try:
        if y is not None:
            classes = np.unique(y)
            codes = np.searchsorted(classes, y)
            n = len(classes)
            cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "viridis", n)
            norm = _boundary_norm(n, cmap)
            if k >= 2:
                points = ax.scatter(
                    Z[:, 0], Z[:, 1], c=codes, cmap=cmap, norm=norm, s=12, alpha=0.8
                )
            else:
                jitter = np.random.RandomState(0).uniform(-0.3, 0.3, size=len(codes))
                points = ax.scatter(Z[:, 0], codes + jitter, c=codes, cmap=cmap, norm=norm, s=12)
                ax.set_yticks(range(n), [str(c) for c in classes])
            bar = fig.colorbar(points, ax=ax, ticks=range(n))
            bar.ax.set_yticklabels([str(c) for c in classes])
            bar.set_label(label_name or "label")
        else:
            elbo = vae.score_samples(X)
            if k >= 2:
                points = ax.scatter(Z[:, 0], Z[:, 1], c=elbo, cmap="viridis", s=12, alpha=0.8)
            else:
                points = ax.scatter(Z[:, 0], elbo, c=elbo, cmap="viridis", s=12)
                ylabel = "ELBO (nats)"
            fig.colorbar(points, ax=ax).set_label("ELBO per sample (nats)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def _boundary_norm(n, cmap):
    from matplotlib.colors import BoundaryNorm

    return BoundaryNorm(np.arange(-0.5, n), cmap.N)


def plot_reconstructions(vae, X, path, value_range=None):
    """Save originals (top row) above their reconstructions (bottom row).

    Reconstructions are ``inverse_transform(transform(X))``: the decoded mean
    of the posterior mean. Samples with a perfect-square number of features
    are shown as grey-scale images, others as line plots.

    Parameters
    ----------
    vae : VAETransformer
        Fitted.
    X : ndarray of shape (n_samples, n_features)
        The samples to show (about 10).
    path : path-like
        PNG file to write.
    value_range : (float, float), default=None
        Colour range of the images and y range of the lines; default: the
        range of ``X``.
    """
    plt = _pyplot()
    X_hat = vae.inverse_transform(vae.transform(X))
    n, n_features = X.shape
    lo, hi = value_range if value_range is not None else (float(X.min()), float(X.max()))
    side = _image_side(n_features)
    fig, axes = plt.subplots(
        2, n, figsize=(1.3 * n + 0.8, 3.2), squeeze=False, layout="constrained"
    )
    try:
        for j in range(n):
            for i, (row, values) in enumerate((("original", X[j]), ("reconstruction", X_hat[j]))):
                ax = axes[i, j]
                _draw(ax, values, side, lo, hi)
                if side is None and i == 1:
                    ax.plot(X[j], color="0.7", lw=0.8, zorder=0)
                if j == 0:
                    ax.set_ylabel(row, fontsize=9)
        fig.suptitle("Test samples (top) and their reconstructions (bottom)")
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def _draw(ax, values, side, lo, hi):
    """Draw one sample: a square grey image when ``side`` is set, else a line."""
    if side is None:
        _line(ax, values, lo, hi)
        return
    ax.imshow(
        values.reshape(side, side), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest"
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _line(ax, values, lo, hi):
    marker = "." if values.shape[0] <= 30 else None
    ax.plot(values, lw=1, marker=marker)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    ax.set_ylim(lo - pad, hi + pad)
    ax.tick_params(labelsize=6)


def plot_samples(vae, path, value_range=None, random_state=0):
    """Save a grid of samples generated by ``vae.sample`` (decoded means).

    Parameters
    ----------
    vae : VAETransformer
        Fitted.
    path : path-like
        PNG file to write.
    value_range : (float, float), default=None
        Colour range of the images and y range of the lines; default: the
        range of the samples.
    random_state : int or None, default=0
        Seed of the draws from the prior.
    """
    plt = _pyplot()
    side = _image_side(vae.n_features_in_)
    rows, cols = _SAMPLE_GRID_IMAGES if side is not None else _SAMPLE_GRID_LINES
    S = vae.sample(rows * cols, random_state=random_state)
    lo, hi = value_range if value_range is not None else (float(S.min()), float(S.max()))
    size = (1.0 * cols + 0.4, 1.0 * rows + 0.6) if side else (2.0 * cols, 1.5 * rows + 0.5)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, layout="constrained")
    try:
        for ax, values in zip(axes.flat, S):
            _draw(ax, values, side, lo, hi)
        fig.suptitle("Samples: decoded means of z ~ p(z)")
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def plot_history(history, path):
    """Save the training curves: loss, reconstruction term and KL per epoch.

    Parameters
    ----------
    history : list of dict
        ``VAETransformer.history_``.
    path : path-like
        PNG file to write.
    """
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    marker = "o" if len(epochs) <= 20 else None
    panels = [
        ("loss", "loss = reconstruction + beta * KL"),
        ("reconstruction", "reconstruction, -log p(x | z)"),
        ("kl", "KL(q(z | x) || p(z))"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    try:
        for ax, (key, title) in zip(axes, panels):
            ax.plot(epochs, [h[key] for h in history], marker=marker, label="train")
            if key == "loss" and any(h.get("val_loss") is not None for h in history):
                val_loss = [h["val_loss"] for h in history]
                ax.plot(epochs, val_loss, marker=marker, label="validation")
                ax.legend()
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel("nats per sample")
            ax.grid(alpha=0.3)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


# ------------------------------------------------------------------ plugins
def run_plugins(args):
    """Run ``skvae plugins``: print every registered plugin as a table.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (unused).

    Returns
    -------
    status : int
        0.
    """
    from . import list_plugins

    rows = [
        (p["kind"], p["name"], f"{p['class'].__module__}.{p['class'].__qualname__}", p["provider"])
        for p in list_plugins()
    ]
    if not rows:
        print(
            "No plugins are registered: install skvae (`pip install -e .` in a "
            "checkout) so that its entry points exist.",
            file=sys.stderr,
        )
        return 0
    header = ("KIND", "NAME", "CLASS", "PROVIDER")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
