"""The ``skvae`` command: fit a VAE from the shell, sample from it, encode data.

Subcommands
-----------
``skvae fit``
    Fit a :class:`~skvae.VAETransformer` (or, with ``--conditional``, a
    :class:`~skvae.ConditionalVAETransformer`; with ``--outliers``, a
    :class:`~skvae.VAEOutlierDetector`) on a data set of
    :mod:`skvae.datasets` (digits, the default, Fashion-MNIST, MNIST,
    CIFAR-10, texture patches) or on a ``.npy`` or ``.csv`` file; report the
    train and test ELBO, the test log-likelihood (IWAE bound) and the number
    of active latent units beside a PCA baseline; write into an output
    folder the model (``model.skvae``, see :func:`skvae.save`),
    ``metrics.json``, every figure of :mod:`skvae.plotting` that applies,
    as PNG, and ``index.html``, a page that shows them all with the
    hyper-parameters, notes on a fit that did not converge or whose latent
    units collapsed, and a table of contents.
``skvae sample``
    Load a ``.skvae`` model and write generated samples to ``.npy``,
    ``.csv`` or a PNG grid.
``skvae encode``
    Load a ``.skvae`` model and write the posterior means of data.
``skvae score``
    Load a ``.skvae`` model and write the score of each row of data (its
    ELBO or IWAE bound); for a :class:`~skvae.VAEOutlierDetector` (``skvae
    fit --outliers``) also its ``decision_function`` and ``predict``.
``skvae export``
    Load a ``.skvae`` model and write one of its methods (``transform``,
    ``inverse_transform``, a detector's ``decision_function``) as an ONNX
    graph (:mod:`skvae.onnx`; the ``onnx`` extra).
``skvae impute``
    Load a model fitted with missing values (``skvae fit --missing-values
    nan``, or a :class:`~skvae.VAEImputer`) and write data with their
    missing (NaN) entries filled in.
``skvae plugins``
    Print the registered architectures, likelihoods and priors, with the
    distribution that provides each.

``--data`` and ``DATA`` are read by :func:`skvae.datasets.load`, and the
figures and page of ``skvae fit`` are drawn by ``skvae._report``; both are
imported only when a command runs, so that ``skvae --help`` and usage errors
import neither torch nor numpy.

Bad arguments, missing or unreadable files, data that do not fit the model,
unknown plugin or data set names, a model or a number of samples too large
for memory, an output folder that cannot be written (checked before
training) and a model whose outputs are not finite end with
``skvae: error: <message>`` (or argparse's usage message) and exit status 2,
never a traceback. Ctrl-C ends with ``skvae: interrupted`` and exit status
130; ``skvae fit`` writes its outputs into a hidden folder beside ``--out``
and moves them there when all are written, so an interrupted or failed run
leaves ``--out`` as it was.

Examples
--------
From the shell::

    skvae fit --out runs/digits
    skvae fit --data fashion-mnist --n-train 5000 --n-components 8
    skvae fit --data X.csv --likelihood gaussian --n-components 8
    torchrun --standalone --nproc-per-node 2 -m skvae.cli fit --distributed
    skvae sample runs/digits/model.skvae --n 64 --out samples.png
    skvae encode runs/digits/model.skvae X.npy --out codes.csv
    skvae fit --outliers --contamination 0.05 --out runs/outliers
    skvae score runs/outliers/model.skvae new.csv --out scores.csv
    skvae fit --data incomplete.csv --missing-values nan --out runs/incomplete
    skvae impute runs/incomplete/model.skvae incomplete.csv --out filled.csv
    skvae plugins

From Python, :func:`main` takes the argument list and returns the exit code:

>>> from skvae.cli import main
>>> main(["plugins"])  # doctest: +SKIP
0
"""

import argparse
import contextlib
import json
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from pathlib import Path

#: Exit status for usage errors and expected failures (as argparse uses).
EXIT_USAGE = 2
PROG = "skvae"

#: Data sets that ``--data`` names: :data:`skvae.datasets.DATASET_NAMES`, written
#: out here so that ``--help`` and usage errors need not import numpy.
DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "textures")
#: Importance samples of the test log-likelihood (IWAE bound) in metrics.json.
IWAE_K = 100
# Texture patches cut when --n-train does not ask for more.
_TEXTURE_PATCHES = 1000
# What skvae fit writes besides the figures.
_FIT_FILES = ("model.skvae", "metrics.json", "index.html")
_SAMPLE_SUFFIXES = (".npy", ".csv", ".png")
# The most samples a PNG grid holds (more are no longer readable as images).
_MAX_GRID_SAMPLES = 10_000
_FEWER_SAMPLES = "ask for fewer samples with --n"
# Bytes per parameter that training holds at least: the float32 weights,
# their gradients and Adam's two moments.
_TRAINING_BYTES_PER_PARAMETER = 16
#: Devices that ``--device`` takes.
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
_CODE_SUFFIXES = (".npy", ".csv")
#: Scores that ``skvae fit --score-method`` and ``skvae score --method`` take:
#: :data:`skvae._outlier.SCORE_METHODS`, written out here (no torch for --help).
SCORE_METHODS = ("elbo", "iwae", "reconstruction")
#: VAEOutlierDetector's default score_method and contamination, for --help.
DETECTOR_DEFAULTS = {"score_method": "reconstruction", "contamination": "auto"}


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


def _int_list(text, example):
    parts = [part.strip() for part in text.split(",")]
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive integers such as {example}; got {text!r}"
        )
    return values


def _hidden_sizes(text):
    return _int_list(text, "256,128")


def _image_shape(text):
    shape = _int_list(text, "28,28 or 32,32,3")
    if len(shape) not in (2, 3):
        raise argparse.ArgumentTypeError(
            f"must be H,W or H,W,C (height, width, channels), such as 28,28 or 32,32,3; "
            f"got {text!r}"
        )
    return shape if len(shape) == 3 else shape + (1,)


def _device(text):
    if not _DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be auto, cpu, cuda, cuda:N (the GPU of index N) or mps; got {text!r}"
        )
    return text


def _version():
    from . import __version__

    return __version__


class _VersionAction(argparse._VersionAction):
    """``--version``: looks the version up when asked (importlib.metadata is slow to import)."""

    def __call__(self, parser, namespace, values, option_string=None):
        self.version = f"%(prog)s {_version()}"
        super().__call__(parser, namespace, values, option_string)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the layout of descriptions and epilogs; appends real defaults only."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and action.option_strings
            and default is not None
            and default is not False
            and default is not argparse.SUPPRESS
        ):
            text += " (default: %(default)s)"
        return text


def _wrap(text, width=79):
    """Fill each paragraph of a description; keep indented blocks (lists) as they are."""
    blocks = []
    for block in text.split("\n\n"):
        if any(line.startswith("  ") for line in block.splitlines()):
            blocks.append(block)
        else:
            blocks.append(textwrap.fill(" ".join(block.split()), width))
    return "\n\n".join(blocks)


def build_parser():
    """Build the argument parser of the ``skvae`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser, with the subcommands ``fit``, ``sample``, ``encode``,
        ``score``, ``impute`` and ``plugins``; each subparser sets the ``func`` default to the
        function that runs it and ``parser`` to itself.

    Examples
    --------
    >>> from skvae.cli import build_parser
    >>> args = build_parser().parse_args(["fit", "--epochs", "3"])
    >>> args.command, args.data, args.epochs, args.func.__name__
    ('fit', 'digits', 3, 'run_fit')
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_wrap(
            "Variational autoencoders as scikit-learn transformers: fit one on a data "
            "set (or an outlier detector, or on data with missing values), sample from "
            "it, encode, score or impute data with it."
        ),
        epilog=_wrap(
            "Run `skvae COMMAND --help` for the options of a command. Errors exit with "
            "status 2 and a message."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in (
        _add_fit_parser,
        _add_sample_parser,
        _add_encode_parser,
        _add_score_parser,
        _add_impute_parser,
        _add_export_parser,
        _add_plugins_parser,
    ):
        add_parser(subparsers)
    return parser


# ------------------------------------------------------------------ skvae fit
_FIT_DESCRIPTION = (
    "Fit a VAE with a progress bar, report the train and test ELBO (nats per "
    "sample, higher is better), the test log-likelihood (IWAE bound, "
    f"k={IWAE_K}) and the active latent units, and write into --out:\n\n"
    "  model.skvae            the fitted model (skvae.load reads it)\n"
    "  metrics.json           the metrics, settings and per-epoch history\n"
    "  latent_scatter.png     test-set posterior means, coloured by label\n"
    "  latent_manifold.png    decoded grid over two latent dimensions\n"
    "  samples.png            samples from the model\n"
    "  reconstructions.png    test samples and their reconstructions\n"
    "  latent_traversal.png   one latent dimension swept at a time\n"
    "  training_curves.png    loss and its terms per epoch\n"
    "  validation_curve.png   training and validation loss (--early-stopping only)\n"
    "  kl_per_dimension.png   KL of each latent dimension, active ones marked\n"
    "  class_conditional.png  samples of each class (--conditional only)\n"
    "  outliers.png           the most anomalous test rows (--outliers only)\n"
    "  index.html             a page with the metrics and every figure\n\n"
    "Beside the VAE's numbers, metrics.json and the page give a baseline: PCA with as "
    "many components, its reconstruction error (squared error per sample, the VAE's "
    "too) and, for data sets with labels, the test accuracy of a logistic regression "
    "on PCA's codes and on the VAE's. The page notes a fit that did not converge and "
    "latent units that collapsed.\n\n"
    "With --outliers the model is a VAEOutlierDetector (scikit-learn's outlier "
    "detector contract) and the metrics add its offset and the share of rows it "
    "predicts as outliers; with --missing-values nan, NaN entries of the data are "
    "missing values.\n\n"
    "A figure that does not apply (a manifold of a 1-D latent space, the KL "
    "per dimension of a prior that does not factorise) is left out and the "
    "page says why."
)
_FIT_EXAMPLES = (
    "examples:\n"
    "  skvae fit                                   # digits: under 30 s on 2 CPU cores\n"
    "  skvae fit --data fashion-mnist --n-train 5000 --n-components 8\n"
    "  skvae fit --data cifar10 --grayscale --n-train 2000 --likelihood gaussian\n"
    "  skvae fit --data mnist --architecture conv --epochs 10\n"
    "  skvae fit --data X.csv --likelihood gaussian --image-shape 16,16\n"
    "  skvae fit --outliers --contamination 0.05 --out runs/outliers\n"
    "  skvae fit --data incomplete.csv --missing-values nan --likelihood gaussian\n"
    "  torchrun --standalone --nproc-per-node 2 -m skvae.cli fit --distributed"
)


def _add_fit_parser(subparsers):
    """``skvae fit``: options in the groups data, model, training and output."""
    fit = subparsers.add_parser(
        "fit",
        help="fit a VAE; write the model, metrics, figures and an HTML page",
        description=_wrap(_FIT_DESCRIPTION),
        epilog=_FIT_EXAMPLES,
        formatter_class=_HelpFormatter,
    )
    _add_fit_data_options(fit.add_argument_group("data"))
    _add_model_options(fit.add_argument_group("model"))
    _add_task_options(fit.add_argument_group("outliers and missing values"))
    training = fit.add_argument_group("training")
    _add_training_options(training)
    _add_hardware_options(training)
    _add_output_options(fit.add_argument_group("output"))
    fit.set_defaults(func=run_fit, parser=fit)


def _add_fit_data_options(group):
    """``--data``, the test split and subset, where data sets are found, ``--image-shape``."""
    group.add_argument(
        "--data",
        default="digits",
        metavar="NAME|FILE",
        help=f"a data set ({', '.join(DATASETS)}) or a 2-D array in a .npy or .csv file "
        "(a non-numeric header row is skipped). fashion-mnist, mnist and cifar10 are "
        "found on disk or downloaded once (see --data-home); textures are patches of "
        "sample photographs that ship with scikit-learn and matplotlib",
    )
    group.add_argument(
        "--test-size",
        type=_open_unit_float,
        metavar="F",
        default=0.2,
        help="share of the samples held out as the test set (fashion-mnist, mnist and "
        "cifar10 keep their own test split)",
    )
    group.add_argument(
        "--n-train",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train on a random subset of N samples (the test set shrinks in "
        "proportion); default: every training sample",
    )
    _add_data_set_options(group)
    group.add_argument(
        "--image-shape",
        type=_image_shape,
        default=None,
        metavar="H,W[,C]",
        help="shape of one sample as an image, rows flattened channel first: passed to "
        "architectures that take image_shape (conv, keras_conv, ...) and used to draw "
        "the figures. Known for the named data sets; for files, a perfect-square number "
        "of features is drawn as a square grey image and others as line plots",
    )


def _add_data_set_options(group):
    """Where the named data sets are found (``fit`` and ``encode``)."""
    group.add_argument(
        "--data-home",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder searched first for the files of fashion-mnist, mnist and cifar10, "
        "and where downloads go (default: $SKVAE_DATA or ~/skvae_data)",
    )
    group.add_argument(
        "--grayscale",
        action="store_true",
        help="cifar10 only: grey images (1024 features) instead of colour (3072)",
    )
    group.add_argument(
        "--no-download",
        action="store_true",
        help="fail instead of downloading a data set that is not found on disk",
    )


def _add_model_options(group):
    """The plugins, the latent size, the hidden layers and ``--conditional``."""
    group.add_argument(
        "--architecture",
        default="mlp",
        metavar="NAME",
        help="registered architecture name (see `skvae plugins`)",
    )
    group.add_argument(
        "--likelihood",
        default="auto",
        metavar="NAME",
        help="registered likelihood name, or 'auto': bernoulli for data in [0, 1], "
        "else gaussian",
    )
    group.add_argument("--prior", default="normal", metavar="NAME", help="registered prior name")
    group.add_argument(
        "--n-components",
        type=_positive_int,
        default=2,
        metavar="K",
        help="size of the latent space",
    )
    group.add_argument(
        "--hidden-sizes",
        type=_hidden_sizes,
        default=None,
        metavar="N[,N...]",
        help="hidden layer widths, for architectures that take hidden_sizes (mlp: "
        "256,128 unless given; ladder)",
    )
    group.add_argument(
        "--conditional",
        action="store_true",
        help="fit a ConditionalVAETransformer on the labels of a named data set "
        "(adds class_conditional.png)",
    )


def _contamination(text):
    """``--contamination``: "auto" or a share of the training rows in (0, 0.5]."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= 0.5:  # also refuses NaN
        raise argparse.ArgumentTypeError(
            f"must be 'auto' or a number in (0, 0.5], the expected share of outliers "
            f"in the training data; got {text!r}"
        )
    return value


def _add_task_options(group):
    """``--outliers`` with its detector's options, and ``--missing-values``."""
    group.add_argument(
        "--outliers",
        action="store_true",
        help="fit a VAEOutlierDetector: metrics.json gains its offset and the share of "
        "train and test rows predicted as outliers, the page the most anomalous test "
        "rows (outliers.png); `skvae score` then writes decision_function and predict",
    )
    group.add_argument(
        "--contamination",
        type=_contamination,
        default=None,
        metavar="auto|F",
        help="--outliers only: expected share F of outliers in the training data, in "
        "(0, 0.5] (the offset is that quantile of the training scores), or 'auto' "
        "(Tukey's lower fence of the training scores); default: "
        f"{DETECTOR_DEFAULTS['contamination']}",
    )
    group.add_argument(
        "--score-method",
        choices=SCORE_METHODS,
        default=None,
        help="--outliers only: the score that ranks rows: the ELBO, the importance-"
        "weighted bound (128 draws) or the reconstruction term, E_q[log p(x | z)]; "
        f"default: {DETECTOR_DEFAULTS['score_method']}",
    )
    group.add_argument(
        "--missing-values",
        choices=("nan",),
        default=None,
        help="'nan': NaN entries of the data (empty or 'nan' fields of a .csv) are "
        "missing values; the model is fitted on the observed entries (MIWAE) and "
        "`skvae impute` fills them in. Default: NaN is an error",
    )


def _add_training_options(group):
    """What is optimised and how: epochs, batches, step size, beta and the seed."""
    group.add_argument(
        "--epochs", type=_positive_int, default=50, metavar="N", help="number of epochs (max_iter)"
    )
    group.add_argument(
        "--batch-size", type=_positive_int, default=128, metavar="N", help="minibatch size"
    )
    group.add_argument(
        "--learning-rate", type=_positive_float, default=1e-3, metavar="LR", help="Adam step size"
    )
    group.add_argument(
        "--beta",
        type=_non_negative_float,
        default=1.0,
        metavar="BETA",
        help="weight of the KL term",
    )
    group.add_argument(
        "--kl-warmup",
        type=_unit_float,
        metavar="F",
        default=0.0,
        help="fraction of the epochs over which beta ramps up from 0",
    )
    group.add_argument(
        "--early-stopping",
        action="store_true",
        help="hold out --validation-fraction of the training rows, stop when their loss "
        "no longer improves and keep the best epoch's weights; the page then shows the "
        "validation curve (validation_curve.png)",
    )
    group.add_argument(
        "--validation-fraction",
        type=_open_unit_float,
        default=None,
        metavar="F",
        help="--early-stopping only: share of the training rows held out (default: 0.1)",
    )
    group.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the split, the subsets, training and the figures",
    )


def _add_hardware_options(group):
    """Where and how fast training runs: device, precision, compilation, threads, processes."""
    group.add_argument(
        "--device",
        type=_device,
        default="auto",
        metavar="DEVICE",
        help="torch device: 'auto' (a GPU when there is one, else the CPU), 'cpu', "
        "'cuda', 'cuda:N' (the GPU of index N) or 'mps'",
    )
    group.add_argument(
        "--precision",
        choices=("float32", "bf16-mixed"),
        default="float32",
        help="arithmetic of training: 'bf16-mixed' runs the forward passes under "
        "bfloat16 autocast (fast on GPUs with bfloat16 tensor cores)",
    )
    group.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=False,
        choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        help="compile the training step with torch.compile (optionally naming its mode; "
        "'reduce-overhead' replays it as CUDA graphs on a GPU)",
    )
    _add_threads_option(group)
    group.add_argument(
        "--distributed",
        action="store_const",
        const=True,
        default="auto",
        help="train data-parallel over the processes of torchrun (torch.distributed "
        "with DistributedDataParallel: NCCL on GPUs, one GPU per process, gloo on "
        "CPUs); each process trains on its shard of the data with batch-size / "
        "processes rows per step, and rank 0 alone writes the outputs. Without it, "
        "a fit launched by torchrun is data-parallel all the same; with it, a fit "
        "outside torchrun is an error. E.g. `torchrun --standalone --nproc-per-node 2 "
        "-m skvae.cli fit --distributed`; on N machines, `torchrun --nnodes N "
        "--node-rank I --nproc-per-node G --rdzv-backend c10d --rdzv-endpoint "
        "HOST:PORT -m skvae.cli fit --distributed` on each",
    )


def _add_threads_option(group):
    """``--threads``: torch's CPU threads (``fit``, ``score`` and ``impute``)."""
    group.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="CPU threads of torch (default: torch's own choice, one per core); "
        "on a machine shared with other busy processes, 1 avoids torch's "
        "slowdown when it has more threads than free cores",
    )


def _add_output_options(group):
    """``--out`` and ``--quiet``."""
    group.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder, created if needed (default: runs/<data name>, "
        "e.g. runs/digits)",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar and no report")


# -------------------------------------------------- skvae sample, encode, plugins
def _add_sample_parser(subparsers):
    """``skvae sample MODEL``: how many samples, where, which seed, class and shape."""
    sample = subparsers.add_parser(
        "sample",
        help="write samples of a saved model (.npy, .csv or a PNG grid)",
        description=_wrap(
            "Load MODEL with skvae.load, draw --n samples z ~ p(z), decode them and "
            "write them: one row per sample to a .npy or .csv file, or as a grid of "
            "images (or line plots) to a .png file."
        ),
        epilog=(
            "examples:\n"
            "  skvae sample runs/digits/model.skvae --n 64 --out samples.png\n"
            "  skvae sample model.skvae --n 1000 --random-state 0 --out samples.csv\n"
            "  skvae sample cvae.skvae --label 3 --out threes.png   # a conditional model"
        ),
        formatter_class=_HelpFormatter,
    )
    sample.add_argument("model", type=Path, metavar="MODEL", help="a .skvae file (skvae fit)")
    sample.add_argument(
        "--n", type=_positive_int, default=16, metavar="N", help="number of samples"
    )
    sample.add_argument(
        "--out",
        type=Path,
        default=Path("samples.npy"),
        metavar="FILE",
        help="where to write: .npy, .csv (one sample per row) or .png (a grid)",
    )
    sample.add_argument(
        "--random-state",
        type=int,
        default=None,
        metavar="SEED",
        help="seed of the draws (default: new draws at every run)",
    )
    sample.add_argument(
        "--decode",
        choices=("mean", "draw"),
        default="mean",
        help="write the mean of p(x | z), or one draw x ~ p(x | z)",
    )
    sample.add_argument(
        "--label",
        default=None,
        help="for a conditional model: the class to generate (default: the unknown "
        "condition)",
    )
    sample.add_argument(
        "--image-shape",
        type=_image_shape,
        default=None,
        metavar="H,W[,C]",
        help=".png only: shape of one sample as an image (default: from the "
        "architecture, else square grey images when the number of features is a "
        "perfect square, else line plots)",
    )
    sample.set_defaults(func=run_sample, parser=sample)


def _add_encode_parser(subparsers):
    """``skvae encode MODEL DATA``: the data, where the codes go, where data sets are found."""
    encode = subparsers.add_parser(
        "encode",
        help="write the posterior means of data under a saved model",
        description=_wrap(
            "Load MODEL with skvae.load and DATA, and write the posterior means "
            "transform(DATA), one row of n_components values per sample."
        ),
        epilog=(
            "examples:\n"
            "  skvae encode runs/digits/model.skvae digits --out codes.npy\n"
            "  skvae encode model.skvae X.csv --out codes.csv"
        ),
        formatter_class=_HelpFormatter,
    )
    _add_model_and_data(encode)
    encode.add_argument(
        "--out",
        type=Path,
        default=Path("codes.npy"),
        metavar="FILE",
        help="where to write: .npy or .csv",
    )
    _add_data_set_options(encode.add_argument_group("data sets"))
    encode.set_defaults(func=run_encode, parser=encode)


def _add_model_and_data(parser, data_help=""):
    """The positional arguments MODEL and DATA of ``encode``, ``score`` and ``impute``."""
    parser.add_argument("model", type=Path, metavar="MODEL", help="a .skvae file (skvae fit)")
    parser.add_argument(
        "data",
        metavar="DATA",
        help="a .npy or .csv file with the model's number of features, or a data set "
        f"name ({', '.join(DATASETS)}): all its samples (textures: "
        f"{_TEXTURE_PATCHES} patches, random state 0)" + data_help,
    )


def _add_score_parser(subparsers):
    """``skvae score MODEL DATA``: the score, its draws, where the scores go."""
    score = subparsers.add_parser(
        "score",
        help="write the score of each row of data under a saved model (and an outlier "
        "detector's decisions)",
        description=_wrap(
            "Load MODEL with skvae.load and DATA, and write one line per row of DATA: "
            "score_samples, in nats, higher meaning more likely, more normal (the "
            "ELBO, the IWAE bound, or a detector's score method); for a VAEOutlierDetector (skvae fit --outliers) also "
            "decision_function (score minus the detector's offset, negative for "
            "outliers) and predict (+1 inlier, -1 outlier), both from the detector's "
            "own score. A .csv gets a header line naming the columns; a .npy a 2-D "
            "float64 array with the same columns. A conditional model scores under the "
            "unknown condition."
        ),
        epilog=(
            "examples:\n"
            "  skvae score runs/digits/model.skvae digits --out scores.csv\n"
            "  skvae score model.skvae X.npy --method iwae --n-importance 1000 --out ll.npy\n"
            "  skvae score runs/outliers/model.skvae new.csv --out decisions.csv"
        ),
        formatter_class=_HelpFormatter,
    )
    _add_model_and_data(score, "; with NaN entries for a model fitted with missing values")
    score.add_argument(
        "--out",
        type=Path,
        default=Path("scores.csv"),
        metavar="FILE",
        help="where to write: .csv (with a header line) or .npy",
    )
    score.add_argument(
        "--method",
        choices=SCORE_METHODS,
        default=None,
        help="the score: the ELBO, the importance-weighted bound (IWAE) or, for a "
        "VAEOutlierDetector, the reconstruction term; default: the model's own (a "
        "detector's score method, else elbo)",
    )
    score.add_argument(
        "--n-importance",
        type=_positive_int,
        default=None,
        metavar="K",
        help="draws of z per row; default: the model's own (16 for elbo; for iwae 1000, "
        "or a detector's 128)",
    )
    _add_threads_option(score)
    _add_data_set_options(score.add_argument_group("data sets"))
    score.set_defaults(func=run_score, parser=score)


def _add_impute_parser(subparsers):
    """``skvae impute MODEL DATA``: where the completed data go, the draws per row."""
    impute = subparsers.add_parser(
        "impute",
        help="fill the missing (NaN) entries of data with a saved model",
        description=_wrap(
            "Load MODEL, a model fitted with missing values (skvae fit --missing-values "
            "nan, or a VAEImputer), and DATA, and write DATA with each missing entry "
            "(NaN in a .npy; empty or 'nan' in a .csv) filled with its importance-"
            "weighted conditional mean E[x_missing | x_observed] (MIWAE); observed "
            "entries are written unchanged. A VAEImputer writes what its transform "
            "returns (with its indicator columns when it adds them)."
        ),
        epilog=(
            "examples:\n"
            "  skvae fit --data incomplete.csv --missing-values nan --likelihood gaussian "
            "--out runs/incomplete\n"
            "  skvae impute runs/incomplete/model.skvae incomplete.csv --out filled.csv"
        ),
        formatter_class=_HelpFormatter,
    )
    _add_model_and_data(impute, ", NaN at the missing entries")
    impute.add_argument(
        "--out",
        type=Path,
        default=Path("filled.csv"),
        metavar="FILE",
        help="where to write: .csv or .npy (float32, one row per row of DATA)",
    )
    impute.add_argument(
        "--n-importance",
        type=_positive_int,
        default=None,
        metavar="K",
        help="draws of z per row of the conditional mean; default: the model's own "
        "(1000, or a VAEImputer's n_impute_draws)",
    )
    _add_threads_option(impute)
    _add_data_set_options(impute.add_argument_group("data sets"))
    impute.set_defaults(func=run_impute, parser=impute)


def _add_export_parser(subparsers):
    """``skvae export MODEL --format onnx --out FILE``: what to export, and where."""
    export = subparsers.add_parser(
        "export",
        help="write a saved model's encoder, decoder or detector as an ONNX graph",
        description=_wrap(
            "Load MODEL with skvae.load and write one of its methods as an ONNX graph "
            "with a dynamic batch dimension, which ONNX Runtime runs with the model's "
            "results (float32): the encoder (transform: input X, output Z), the decoder "
            "(inverse_transform: input Z, output X) or, for an outlier detector, "
            "decision_function (input X, outputs label and scores). Needs the onnx "
            'extra: pip install "skvae[onnx]". To convert a whole Pipeline, use '
            "skl2onnx.to_onnx after import skvae.onnx (docs/deployment.md)."
        ),
        epilog=(
            "examples:\n"
            "  skvae export runs/digits/model.skvae --out encoder.onnx\n"
            "  skvae export model.skvae --method inverse_transform --out decoder.onnx\n"
            "  skvae export detector.skvae --method decision_function --out detector.onnx"
        ),
        formatter_class=_HelpFormatter,
    )
    export.add_argument("model", type=Path, metavar="MODEL", help="a .skvae file (skvae fit)")
    export.add_argument(
        "--format", choices=("onnx",), default="onnx", help="the format to write"
    )
    export.add_argument(
        "--out", type=Path, default=Path("model.onnx"), metavar="FILE",
        help="where to write: a .onnx file",
    )
    export.add_argument(
        "--method",
        choices=("transform", "inverse_transform", "decision_function"),
        default="transform",
        help="the method the graph computes",
    )
    export.add_argument(
        "--log-var", action="store_true",
        help="with --method transform: also output the posterior log-variance (log_var)",
    )
    export.add_argument(
        "--conditions", action="store_true",
        help="for a conditional model: a second input C, the one-hot label (else the "
        "unknown label, as transform(X) uses)",
    )
    export.add_argument(
        "--opset", type=_positive_int, default=None, metavar="N",
        help="the ONNX opset, 18 or newer (default: 18)",
    )
    export.set_defaults(func=run_export, parser=export)


def _add_plugins_parser(subparsers):
    """``skvae plugins``: no options."""
    plugins = subparsers.add_parser(
        "plugins",
        help="list the registered plugins and where they come from",
        description=_wrap(
            "List every registered plugin: its kind, its name (what --architecture, "
            "--likelihood and --prior take), the distribution and version that "
            "provides it, its entry point and its class."
        ),
        formatter_class=_HelpFormatter,
    )
    plugins.set_defaults(func=run_plugins, parser=plugins)


# ------------------------------------------------------------------- main
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
        0 on success, 2 after an expected error (a missing or unreadable
        file, a model file that cannot be loaded, data that do not fit the
        model, an unknown plugin or data set, a parameter the estimator
        rejects), which is printed as ``skvae: error: <message>`` on stderr
        without a traceback; 130 when interrupted.

    Raises
    ------
    SystemExit
        From argparse: status 2 with a usage message for bad arguments,
        status 0 for ``--help`` and ``--version``.

    Examples
    --------
    >>> from skvae.cli import main
    >>> main(["encode", "no-such-model.skvae", "digits"])  # doctest: +SKIP
    skvae: error: model file not found: no-such-model.skvae
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args._command = "skvae " + shlex.join(argv)
    _check_option_combinations(args)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except (CLIError, ValueError, OSError, FloatingPointError) as exc:
        print(f"{PROG}: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(
            f"{PROG}: error: out of memory; use smaller data, --n, --hidden-sizes or "
            "--n-components",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _check_option_combinations(args):
    """Usage errors (argparse's message, status 2) for options that do not go together."""
    if args.command == "fit":
        if args.grayscale and args.data != "cifar10":
            args.parser.error(f"--grayscale applies to --data cifar10 only, not {args.data!r}")
        if args.conditional and args.data not in DATASETS:
            args.parser.error(
                "--conditional needs labels: use a data set name "
                f"({', '.join(DATASETS)}), not a file"
            )
        _check_outlier_options(args)
        if args.validation_fraction is not None and not args.early_stopping:
            args.parser.error("--validation-fraction applies to --early-stopping only")
    elif args.command in ("encode", "score", "impute") and args.grayscale and args.data != "cifar10":
        args.parser.error(f"--grayscale applies to cifar10 only, not {args.data!r}")


def _check_outlier_options(args):
    """``--contamination`` and ``--score-method`` need ``--outliers``, which takes no labels."""
    if args.outliers and args.conditional:
        args.parser.error(
            "--outliers fits a VAEOutlierDetector, which takes no labels: drop "
            "--conditional (or --outliers)"
        )
    for option, value in (("--contamination", args.contamination),
                          ("--score-method", args.score_method)):
        if value is not None and not args.outliers:
            args.parser.error(f"{option} applies to --outliers only")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Print a warning as ``skvae: warning: <message>`` (no source line)."""
    print(f"{PROG}: warning: {message}", file=sys.stderr if file is None else file)


def _message(exc):
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return f"no such file: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return _without_backtrace(str(exc)) or type(exc).__name__


def _without_backtrace(text):
    """``text`` without the C++ backtrace that torch's errors carry (no traceback, ever)."""
    start = text.find("\nException raised from ")
    if start < 0:
        return text
    end = text.find("\n\"", start)  # a message that quotes torch's error goes on after it
    rest = text[end + 1 :] if end >= 0 else ""
    return text[:start].rstrip() + rest


# ---------------------------------------------------------------------- fit
def make_estimator(args, image_shape=None):
    """Build the estimator that ``skvae fit`` trains.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``fit`` arguments.
    image_shape : (int, int, int) or None, default=None
        Shape of one sample, passed to architectures that take
        ``image_shape`` (conv, keras_conv, ...).

    Returns
    -------
    vae : VAETransformer, ConditionalVAETransformer or VAEOutlierDetector
        Unfitted: a VAEOutlierDetector with ``--outliers`` (given
        ``contamination`` and ``score_method``), a
        ConditionalVAETransformer with ``--conditional``; with
        ``--missing-values nan``, ``missing_values=np.nan``. The
        architecture is an instance of the registered class, given
        ``hidden_sizes=args.hidden_sizes`` and ``image_shape`` when it
        takes them.

    Raises
    ------
    CLIError
        If ``--hidden-sizes`` was given to an architecture that takes no
        ``hidden_sizes``.

    Examples
    --------
    >>> from skvae.cli import build_parser, make_estimator
    >>> args = build_parser().parse_args(["fit", "--architecture", "conv"])
    >>> make_estimator(args, image_shape=(8, 8, 1)).architecture
    Conv(image_shape=(8, 8, 1))
    """
    from ._registry import get_registry

    cls = get_registry().get("architecture", args.architecture)
    accepted = cls._get_param_names()
    options = {}
    if args.hidden_sizes is not None:
        if "hidden_sizes" not in accepted:
            raise CLIError(
                f"--hidden-sizes does not apply to --architecture {args.architecture!r}, "
                "which takes no hidden_sizes"
            )
        options["hidden_sizes"] = args.hidden_sizes
    if image_shape is not None and "image_shape" in accepted:
        options["image_shape"] = tuple(image_shape)
    return _estimator_class(args)(
        n_components=args.n_components,
        architecture=cls(**options),
        likelihood=args.likelihood,
        prior=args.prior,
        beta=args.beta,
        kl_warmup=args.kl_warmup,
        max_iter=args.epochs,
        early_stopping=args.early_stopping,
        **({} if args.validation_fraction is None
           else {"validation_fraction": args.validation_fraction}),
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
        **_task_parameters(args),
    )


def _estimator_class(args):
    """The class that ``skvae fit`` trains: detector, conditional model or plain VAE."""
    from . import ConditionalVAETransformer, VAEOutlierDetector, VAETransformer

    if args.outliers:
        return VAEOutlierDetector
    return ConditionalVAETransformer if args.conditional else VAETransformer


def _task_parameters(args):
    """The estimator's parameters of ``--outliers`` and ``--missing-values``."""
    import numpy as np

    parameters = {}
    if args.outliers:  # the detector's own defaults, unless given
        for name in ("contamination", "score_method"):
            if getattr(args, name) is not None:
                parameters[name] = getattr(args, name)
    if args.missing_values == "nan":
        parameters["missing_values"] = np.nan
    return parameters


def _check_plugin_names(args):
    """Fail before loading data and training when a plugin name is unknown."""
    from ._registry import resolve_plugin

    resolve_plugin("architecture", args.architecture)
    if args.likelihood != "auto":
        resolve_plugin("likelihood", args.likelihood)
    resolve_plugin("prior", args.prior)


def _check_device(device):
    """Fail before loading data when ``--device`` names a device this machine lacks."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CLIError(
                f"--device {device}: CUDA is not available on this machine; use --device "
                "cpu, or auto (a GPU when there is one)"
            )
        count = torch.cuda.device_count()
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise CLIError(
                f"--device {device}: this machine has {count} GPU(s), cuda:0 to "
                f"cuda:{count - 1}; use one of them"
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        raise CLIError(
            "--device mps: MPS (Apple GPUs) is not available on this machine; use "
            "--device cpu, or auto"
        )


def _available_memory():
    """Bytes of memory this process can still take, or None when unknown.

    Linux's ``MemAvailable``, lowered to what a cgroup memory limit leaves;
    elsewhere, the physical memory.
    """
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, OSError, ValueError):
            return None
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text())
            available = min(available, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return available


def _parameter_count(vae, X, n_classes=0):
    """Parameters of the network ``vae.fit(X)`` builds, counted without allocating them.

    The architecture is built on torch's meta device (shapes, no memory).
    None when that fails: ``fit`` then builds the real network and reports
    its own errors.
    """
    import numpy as np
    import torch

    from ._registry import resolve_plugin

    likelihood = vae.likelihood
    if isinstance(likelihood, str) and likelihood == "auto":  # as fit resolves it
        in_unit = np.nanmin(X) >= 0.0 and np.nanmax(X) <= 1.0
        likelihood = "bernoulli" if in_unit else "gaussian"
    n_features = X.shape[1]
    try:
        architecture = resolve_plugin("architecture", vae.architecture)
        plugin = resolve_plugin("likelihood", likelihood)
        n_outputs = plugin.n_params(n_features)
        with torch.device("meta"):
            net = architecture.build_conditional(
                n_features=plugin.n_inputs(n_features),
                n_components=vae.n_components,
                n_outputs=n_outputs,
                encoder_conditions=n_classes,
                decoder_conditions=n_classes,
            )
        return sum(p.numel() for p in net.parameters())
    except Exception:  # noqa: BLE001 - a plugin that cannot be built on the meta device
        return None


def _check_model_size(vae, X, n_classes=0):
    """Refuse a network that cannot fit in memory, before ``fit`` tries to allocate it."""
    import torch

    from .datasets import _size

    n_params = _parameter_count(vae, X, n_classes)
    if n_params is None:
        return
    need = n_params * _TRAINING_BYTES_PER_PARAMETER
    device = vae.device
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        index = int(device.partition(":")[2] or torch.cuda.current_device())
        where, available = f"GPU cuda:{index}", torch.cuda.mem_get_info(index)[0]
        need_host = n_params * 4  # the weights are built on the CPU first
    else:
        where, available, need_host = "this machine", _available_memory(), 0
    host = _available_memory()
    if (available is not None and need > available) or (
        host is not None and need_host > host
    ):
        raise CLIError(
            f"the model would have {n_params:,} parameters ({vae.architecture!r}, "
            f"n_components={vae.n_components}, {X.shape[1]} features): training it needs "
            f"at least {_size(need)} ({_TRAINING_BYTES_PER_PARAMETER} bytes per parameter "
            f"for the weights, their gradients and Adam's moments) but {where} has "
            f"{_size(available)} available; use smaller --hidden-sizes or --n-components"
        )


def _is_allocation_error(exc):
    """Whether ``exc`` is torch's or numpy's 'out of memory'."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        marker in text
        for marker in ("can't allocate memory", "DefaultCPUAllocator", "out of memory")
    )


@contextlib.contextmanager
def _out_of_memory_is_an_error(advice):
    """Turn an allocation failure inside the block into a :class:`CLIError`."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not _is_allocation_error(exc):
            raise
        first_line = (str(exc).strip().splitlines() or ["MemoryError"])[0]
        raise CLIError(f"out of memory ({first_line}); {advice}") from None


class _Staging:
    """The folder that ``skvae fit`` writes into, moved onto ``--out`` when complete.

    A hidden sibling of ``out``, made (with any missing parents) before
    training, so that an unwritable ``--out`` fails at once. :meth:`commit`
    moves its files into ``out``; :meth:`discard` removes it and the parents
    it made, leaving ``out`` as it was: either nothing new or a complete run
    lands there, even on Ctrl-C.
    """

    def __init__(self, out):
        self.out = out
        self._made = []  # parent folders made here, deepest last
        if out.exists() and not out.is_dir():
            raise CLIError(f"--out {out} exists and is not a folder; choose a folder")
        try:
            for parent in reversed(out.absolute().parents):
                if not parent.exists():
                    parent.mkdir()
                    self._made.append(parent)
            name = f".{out.name}.skvae-partial-{os.getpid()}-{secrets.token_hex(4)}"
            self.path = out.parent / name
            self.path.mkdir()
            self._made.append(self.path)
            # Writable? (root ignores permission bits; a full disk shows only when writing.)
            with open(self.path / ".probe", "wb") as f:
                f.write(b"0" * 4096)
            (self.path / ".probe").unlink()
            if out.is_dir():
                with open(out / f".{self.path.name}.probe", "wb"):
                    pass
                (out / f".{self.path.name}.probe").unlink()
        except OSError as exc:
            self.discard()
            raise CLIError(
                f"--out {out} is not writable ({_message(exc)}); choose a folder you can "
                "write to with --out"
            ) from None

    def commit(self):
        """Move the files written into ``out``, with Ctrl-C held until done."""
        from ._report import FIGURE_FILES

        with _interrupts_deferred():
            if not self.out.exists():
                self.path.rename(self.out)
            else:
                written = {p.name for p in self.path.iterdir()}
                for name in FIGURE_FILES:  # left by an earlier run into the same folder
                    if name not in written and (self.out / name).is_file():
                        (self.out / name).unlink()
                for name in sorted(written, key=lambda n: n == "index.html"):  # the page last
                    os.replace(self.path / name, self.out / name)
                self.path.rmdir()
            self._made.clear()

    def discard(self):
        """Remove the folder and the parents made for it (if still empty)."""
        for folder in reversed(self._made):
            if folder == getattr(self, "path", None):
                shutil.rmtree(folder, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        self._made.clear()


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def run_fit(args):
    """Run ``skvae fit``: fit, report and write the outputs.

    Writes into ``args.out`` (default ``runs/<data name>``):

    - ``model.skvae``: the fitted estimator, written by :func:`skvae.save`;
    - ``metrics.json``: train and test ELBO, the test log-likelihood (IWAE
      bound with :data:`IWAE_K` samples), the active units, the KL of each
      latent dimension, the PCA baseline
      (:func:`skvae._report.pca_baseline`), the message of the fit's
      ConvergenceWarning (``convergence_warning``, None when it converged),
      epochs run, fit time, the resolved plugins, the estimator's
      hyper-parameters and how its likelihood was chosen
      (:func:`skvae._report.describe_model`), the arguments, the figures
      drawn and skipped and the per-epoch history;
    - the figures of :func:`skvae._report.write_figures`, as PNG;
    - ``index.html``: see :func:`skvae._report.write_index`.

    Before loading data: the device must exist and ``args.out`` must be
    writable (a hidden sibling folder is made there, which receives the
    outputs); before training: the network must fit in memory (its
    parameters counted on torch's meta device). When every output is
    written they are moved onto ``args.out`` (Ctrl-C held meanwhile); files
    of ``args.out`` that are no outputs stay. An error or Ctrl-C removes the
    hidden folder instead, leaving ``args.out`` as it was.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``fit`` arguments.

    Returns
    -------
    status : int
        0.

    Examples
    --------
    >>> from skvae.cli import main
    >>> main(["fit", "--epochs", "2", "--out", "runs/quick", "--quiet"])  # doctest: +SKIP
    0
    """
    with _torch_threads(args.threads):
        return _fit_and_write(args)


@contextlib.contextmanager
def _torch_threads(n):
    """torch's CPU threads set to ``n`` (None: unchanged) inside the block."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fit_and_write(args):
    """Check the plugins and the device, make the output folder, fit and write.

    On any failure (Ctrl-C included) the hidden output folder is removed.
    """
    from . import datasets, distributed as dp

    _check_plugin_names(args)
    _check_device(args.device)
    # Under torchrun: start the process group and take this process's GPU
    # before the model is built; None on a single process.
    distributed = getattr(args, "distributed", "auto")
    data_parallel = dp.setup(distributed, args.device)
    out = args.out
    if out is None:
        out = Path("runs") / datasets.data_name(args.data, args.grayscale)
    # Only the writer (rank 0) writes; it makes its folder before anything is trained.
    staging = _Staging(out) if data_parallel is None or data_parallel.is_writer else None
    try:
        _fit_into(args, distributed, data_parallel, staging)
    except BaseException:
        if staging is not None:
            staging.discard()
        raise
    return 0


def _fit_into(args, distributed, data_parallel, staging):
    """Load the data, fit, and write the outputs into ``staging`` (then onto ``--out``)."""
    from . import _report, datasets, save

    data = _load_fit_data(args, data_parallel)
    _check_missing_entries(args, data)
    image_shape = _fit_image_shape(args, data)
    X_train, X_test, y_train, y_test = datasets.split(
        data, test_size=args.test_size, n_train=args.n_train, random_state=args.random_state
    )
    vae = make_estimator(args, image_shape)
    fit_seconds, not_converged = _train(args, vae, X_train, y_train, distributed, data_parallel)
    if staging is None:
        return  # the same model as rank 0's, which writes the outputs
    save(vae, staging.path / "model.skvae")
    scores = _scores(vae, X_train, X_test, y_train, y_test, args.conditional)
    scores.update(_task_scores(vae, X_train, X_test))
    scores["convergence_warning"] = not_converged
    scores["baseline"] = _report.pca_baseline(
        vae, X_train, X_test, y_train, y_test,
        conditional=args.conditional, random_state=args.random_state,
    )  # fmt: skip
    figures, skipped = _report.write_figures(
        vae,
        staging.path,
        X_test,
        y_test,
        label_name=data.label_name,
        image_shape=image_shape,
        value_range=_value_range(X_train),
        random_state=args.random_state,
        conditional=args.conditional,
    )
    kl = next((f.pop("kl") for f in figures if "kl" in f), None)
    run = {**scores, "kl_per_dimension": kl}
    run.update(_settings(args, vae, data, image_shape, X_train, X_test, fit_seconds))
    run.update(
        figures=[f["file"] for f in figures],
        figures_skipped={s["file"]: s["reason"] for s in skipped},
        history=vae.history_,
    )
    metrics = _jsonable(run)
    with open(staging.path / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, allow_nan=False)
        f.write("\n")
    _report.write_index(staging.path, metrics, figures, skipped)
    staging.commit()
    for item in skipped:
        print(f"{PROG}: note: {item['file']} not drawn: {item['reason']}", file=sys.stderr)
    if not args.quiet:
        _print_summary(vae, run, staging.out, len(figures))


def _check_missing_entries(args, data):
    """Refuse NaN entries (before training) unless ``--missing-values nan``."""
    import numpy as np

    arrays = [X for X in (data.X, data.X_test) if X is not None]
    n_missing = sum(int(np.isnan(X).sum()) for X in arrays)
    if n_missing and args.missing_values is None:
        raise CLIError(
            f"{args.data} has {n_missing} missing (NaN) entries; fit on the observed "
            "entries with --missing-values nan"
        )


def _load_fit_data(args, data_parallel):
    """The data of ``--data``: downloaded by one process, read from its cache by the others."""
    from . import datasets, distributed as dp

    n_patches = _TEXTURE_PATCHES
    if args.n_train is not None:  # enough texture patches for --n-train and its test set
        n_patches = max(n_patches, math.ceil(args.n_train / (1 - args.test_size)) + 1)
    with dp.rank_zero_first(data_parallel):  # one download, then the cache
        return datasets.load(
            args.data,
            data_home=args.data_home,
            grayscale=args.grayscale,
            download_if_missing=not args.no_download,
            n_patches=n_patches,
            random_state=args.random_state,
        )


def _fit_image_shape(args, data):
    """``--image-shape`` (which must hold a sample's features), else the data set's own."""
    if args.image_shape is None:
        return data.image_shape
    n_features = data.X.shape[1]
    if math.prod(args.image_shape) != n_features:
        raise CLIError(
            f"--image-shape {','.join(map(str, args.image_shape))} holds "
            f"{math.prod(args.image_shape)} values but the data have {n_features} "
            "features per sample"
        )
    return args.image_shape


def _train(args, vae, X_train, y_train, distributed, data_parallel):
    """Fit ``vae`` (data-parallel under torchrun) once it is known to fit in memory.

    Returns the seconds that fitting took and the message of the fit's
    ConvergenceWarning (None when it converged). The warnings of the fit
    are issued again afterwards, under the filters in force.
    """
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    from . import distributed as dp

    n_classes = len(np.unique(y_train)) if args.conditional else 0
    _check_model_size(vae, X_train, n_classes)
    labels = (y_train,) if args.conditional else ()
    start = time.perf_counter()
    with _out_of_memory_is_an_error(
        "use smaller --hidden-sizes, --n-components or --batch-size"
    ), dp.data_parallel(distributed if data_parallel is not None else False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)  # even if shown before
            vae.fit(X_train, *labels)
    seconds = time.perf_counter() - start
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return seconds, (messages[-1] if messages else None)


def _scores(vae, X_train, X_test, y_train, y_test, conditional):
    """The first entries of metrics.json: ELBOs, the IWAE bound and the active units."""
    import numpy as np

    from ._report import ACTIVE_THRESHOLD

    train_labels = {"y": y_train} if conditional else {}
    test_labels = {"y": y_test} if conditional else {}
    # The ELBO whatever the model's own score (a detector's score_method).
    train_elbo = float(np.mean(vae.score_samples(X_train, **train_labels, method="elbo")))
    test_elbo = float(np.mean(vae.score_samples(X_test, **test_labels, method="elbo")))
    try:
        test_iwae = float(
            np.mean(vae.score_samples(X_test, **test_labels, method="iwae", n_importance=IWAE_K))
        )
    except NotImplementedError:  # a plugin without the IWAE weights
        test_iwae = None
    variances = np.var(vae.transform(X_test), axis=0)
    return {
        "train_elbo": train_elbo,
        "test_elbo": test_elbo,
        "test_log_likelihood": test_iwae,
        "iwae_k": IWAE_K,
        "active_units": int((variances > ACTIVE_THRESHOLD).sum()),
        "active_units_threshold": ACTIVE_THRESHOLD,
        "latent_variance": variances.tolist(),
    }


def _task_scores(vae, X_train, X_test):
    """Entries of metrics.json for a detector (its offset, the rows it flags) and missing values.

    Nothing for a VAETransformer fitted on complete data.
    """
    import numpy as np

    scores = {}
    if hasattr(vae, "offset_"):
        train, test = vae.decision_function(X_train), vae.decision_function(X_test)
        scores.update(
            score_method=vae.score_method,
            contamination=vae.contamination,
            offset=vae.offset_,
            train_outlier_share=float(np.mean(train < 0)),
            test_outlier_share=float(np.mean(test < 0)),
        )
    if vae._fitted_missing():
        scores.update(
            train_missing_share=float(np.mean(np.isnan(X_train))),
            test_missing_share=float(np.mean(np.isnan(X_test))),
        )
    return scores


def _value_range(X_train):
    """The values drawn black and white: None for data in [0, 1] (or constant data)."""
    import numpy as np

    lo, hi = float(np.nanmin(X_train)), float(np.nanmax(X_train))
    return None if (0.0 <= lo and hi <= 1.0) or not hi > lo else (lo, hi)


def _settings(args, vae, data, image_shape, X_train, X_test, fit_seconds):
    """The entries of metrics.json that describe the run: training, model, data, command.

    With :func:`skvae._report.describe_model`'s ``params`` (the estimator's
    hyper-parameters), ``likelihood_choice`` and ``columns``.
    """
    from ._report import describe_model

    return {
        **describe_model(vae),
        "n_iter": vae.n_iter_,
        "max_iter": args.epochs,
        "fit_seconds": fit_seconds,
        "estimator": type(vae).__name__,
        "n_components": vae.n_components,
        "architecture": repr(vae.architecture_),
        "likelihood": repr(vae.likelihood_),
        "prior": repr(vae.prior_),
        "data": args.data,
        "data_name": data.name,
        "image_shape": image_shape,
        "n_train": int(X_train.shape[0]),
        "n_test": int(X_test.shape[0]),
        "n_features": int(X_train.shape[1]),
        "skvae_version": _version(),
        "command": args._command,
        "args": {
            k: _jsonable(v)
            for k, v in vars(args).items()
            if k not in ("func", "parser") and not k.startswith("_")
        },
    }


def _print_summary(vae, run, out, n_figures):
    """The report of ``skvae fit`` on stdout: data, model, scores, epochs and the files."""
    n_iter, max_iter = vae.n_iter_, run["max_iter"]
    stopped = "" if n_iter == max_iter else " (stopped early: no improvement)"
    iwae = run["test_log_likelihood"]
    iwae = "n/a" if iwae is None else f"{iwae:10.3f}"
    print(
        f"Fitted {type(vae).__name__} on {run['data_name']}: {run['n_train']} train / "
        f"{run['n_test']} test samples of {run['n_features']} features\n"
        f"  model       {vae.architecture_!r}, {vae.likelihood_!r} likelihood, "
        f"{vae.prior_!r} prior, n_components={vae.n_components}\n"
        f"  train ELBO  {run['train_elbo']:10.3f} nats per sample\n"
        f"  test ELBO   {run['test_elbo']:10.3f} nats per sample (higher is better)\n"
        f"  test log p  {iwae} nats per sample (IWAE bound, k={IWAE_K})\n"
        f"  active      {run['active_units']} of {vae.n_components} latent units\n"
        f"  epochs      {n_iter} of {max_iter}{stopped}\n"
        f"  fit time    {run['fit_seconds']:.1f} s\n"
        + _baseline_summary(run)
        + _task_summary(run)
        + f"Wrote {', '.join(_FIT_FILES)} and {n_figures} figures to {out}\n"
        f"Open {out / 'index.html'} in a browser to see them."
    )


def _baseline_summary(run):
    """Lines of the summary on the PCA baseline ('' without one)."""
    base = run.get("baseline")
    if not base:
        return ""
    err = base["reconstruction_error"]
    lines = (
        f"  PCA         {base['n_components']} components: test reconstruction error "
        f"{err['pca']['test']:.3f}, VAE {err['vae']['test']:.3f} (squared error per sample)\n"
    )
    if base["accuracy"]:
        acc = base["accuracy"]
        lines += (
            f"              test accuracy of a logistic regression on the codes: PCA "
            f"{acc['pca']:.1%}, VAE {acc['vae']:.1%}\n"
        )
    return lines


def _task_summary(run):
    """Lines of the summary on a detector's outliers and on missing entries ('' if none)."""
    lines = ""
    if "offset" in run:
        lines += (
            f"  offset      {run['offset']:10.3f} ({run['score_method']} score, "
            f"contamination {run['contamination']})\n"
            f"  outliers    {run['train_outlier_share']:.1%} of train, "
            f"{run['test_outlier_share']:.1%} of test rows (score below the offset)\n"
        )
    if "train_missing_share" in run:
        lines += (
            f"  missing     {run['train_missing_share']:.1%} of train, "
            f"{run['test_missing_share']:.1%} of test entries (not scored)\n"
        )
    return lines


def _jsonable(value):
    """Turn ``value`` into JSON data; non-finite floats become None."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
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


# ------------------------------------------------------------ sample, encode
def load_model(path):
    """Load a ``.skvae`` model file for ``skvae sample``, ``encode``, ``score`` and ``impute``.

    Parameters
    ----------
    path : pathlib.Path
        A file written by :func:`skvae.save` (``skvae fit`` writes
        ``model.skvae``).

    Returns
    -------
    estimator : VAETransformer or a subclass
        Any skvae estimator (ConditionalVAETransformer, VAEOutlierDetector,
        VAEImputer, ...), loaded on the CPU.

    Raises
    ------
    CLIError
        If the file does not exist or is a folder.
    skvae.ModelFileError
        If it is no model file or cannot be loaded (a ValueError).

    Examples
    --------
    >>> from skvae.cli import CLIError, load_model
    >>> try:
    ...     load_model("missing.skvae")
    ... except CLIError as exc:
    ...     print(exc)
    model file not found: missing.skvae
    """
    from . import load

    path = Path(path)
    if not path.exists():
        raise CLIError(f"model file not found: {path}")
    if not path.is_file():
        raise CLIError(f"model file {path} is not a file")
    return load(path)


def _check_out_suffix(path, suffixes, option="--out"):
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise CLIError(
            f"{option} must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}; got {str(path)!r}"
        )
    if path.exists() and path.is_dir():
        raise CLIError(f"{option} {path} is a folder")
    try:  # writable? before the model is loaded and run
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise CLIError(
            f"{option} {path} is not writable ({_message(exc)}); choose a file in a folder "
            f"you can write to with {option}"
        ) from None
    return suffix


def _write_rows(path, suffix, array):
    """Write a 2-D float array to ``.npy`` or ``.csv`` (exact float32 round trip)."""
    import numpy as np

    if suffix == ".npy":
        np.save(path, array)
    else:
        np.savetxt(path, array, delimiter=",", fmt="%.9g")


def _check_sample_size(n, n_features, suffix):
    """Refuse ``--n`` samples that memory (or a PNG grid) cannot hold, before drawing any."""
    import numpy as np

    from .datasets import _size

    if suffix == ".png" and n > _MAX_GRID_SAMPLES:
        raise CLIError(
            f"--n {n}: a .png grid holds at most {_MAX_GRID_SAMPLES} samples; write more "
            "to a .npy or .csv file"
        )
    need = n * n_features * np.dtype(np.float32).itemsize
    available = _available_memory()
    if available is not None and need > available:
        most = available // (n_features * np.dtype(np.float32).itemsize)
        raise CLIError(
            f"--n {n} samples of {n_features} features need {_size(need)} of memory "
            f"(float32) but {_size(available)} is available: at most {most} samples fit "
            "here; ask for fewer with --n (runs with other --random-state values draw more)"
        )


def _check_finite(array, what, model):
    """Refuse to write NaN or infinite outputs of a broken model."""
    import numpy as np

    if not np.isfinite(array).all():
        raise CLIError(
            f"the model produced non-finite {what} (NaN or infinity); {model} is broken "
            "(did its training diverge?): fit it again, e.g. with a smaller "
            "--learning-rate. Nothing was written"
        )


def _label_of(vae, text):
    """The class of ``vae.classes_`` whose text is ``text``."""
    classes = getattr(vae, "classes_", None)
    if classes is None:
        raise CLIError(
            f"--label is for conditional models; this {type(vae).__name__} takes no labels"
        )
    for value in classes:
        if str(value) == text:
            return value
    raise CLIError(
        f"--label {text!r} is not a class of the model; its classes are "
        + ", ".join(repr(str(c)) for c in classes)
    )


def run_sample(args):
    """Run ``skvae sample``: write samples of a saved model.

    ``.npy`` and ``.csv`` files get ``vae.sample(n, random_state, decode=...)``
    (float32; the CSV with 9 significant digits, which reads back exactly);
    a ``.png`` gets the same samples drawn by
    :class:`~skvae.plotting.SamplesDisplay` on a grid of ``rows x cols == n``
    (at most 10000). ``n`` samples that do not fit in the available memory
    are refused before any is drawn, and so are samples that are not finite
    (nothing is written).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``sample`` arguments.

    Returns
    -------
    status : int
        0.

    Examples
    --------
    >>> from skvae.cli import main
    >>> main(["sample", "runs/digits/model.skvae", "--out", "s.png"])  # doctest: +SKIP
    0
    """
    suffix = _check_out_suffix(args.out, _SAMPLE_SUFFIXES)
    if args.image_shape is not None and suffix != ".png":
        raise CLIError("--image-shape applies to a .png --out only")
    vae = load_model(args.model)
    labels = {} if args.label is None else {"y": _label_of(vae, args.label)}
    if args.image_shape is not None and math.prod(args.image_shape) != vae.n_features_in_:
        raise CLIError(
            f"--image-shape {','.join(map(str, args.image_shape))} holds "
            f"{math.prod(args.image_shape)} values but the model's samples have "
            f"{vae.n_features_in_} features"
        )
    _check_sample_size(args.n, vae.n_features_in_, suffix)
    if suffix == ".png":
        _write_sample_grid(args, vae, labels)
    else:
        with _out_of_memory_is_an_error(_FEWER_SAMPLES):
            samples = vae.sample(
                args.n, random_state=args.random_state, decode=args.decode, **labels
            )
        _check_finite(samples, "samples", args.model)
        _write_rows(args.out, suffix, samples)
    print(f"Wrote {args.n} samples to {args.out}", file=sys.stderr)
    return 0


def _write_sample_grid(args, vae, labels):
    """Draw ``args.n`` samples on a grid as square as divisors allow; save it as PNG."""
    from . import _report
    from .plotting import SamplesDisplay

    _report.pyplot()
    with _out_of_memory_is_an_error(_FEWER_SAMPLES):
        display = SamplesDisplay.from_estimator(
            vae,
            grid_size=_report.grid_shape(args.n),
            random_state=args.random_state,
            decode=args.decode,
            image_shape="auto" if args.image_shape is None else args.image_shape,
            **labels,
        )
    try:
        _check_finite(display.samples, "samples", args.model)
    except CLIError:
        _report.pyplot().close(display.figure_)
        raise
    _report.save_display(display, args.out)


def run_encode(args):
    """Run ``skvae encode``: write the posterior means of data under a saved model.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``encode`` arguments.

    Returns
    -------
    status : int
        0.

    Raises
    ------
    CLIError
        If the data do not have the model's number of features, or the
        posterior means are not finite (nothing is written).

    Examples
    --------
    >>> from skvae.cli import main
    >>> main(["encode", "runs/digits/model.skvae", "digits"])  # doctest: +SKIP
    0
    """
    import numpy as np

    suffix = _check_out_suffix(args.out, _CODE_SUFFIXES)
    vae = load_model(args.model)
    X = _load_model_data(args, vae)
    # A VAEImputer's transform completes the data; its codes are encode's.
    encode = vae.encode if hasattr(vae, "n_impute_draws") else vae.transform
    codes = np.asarray(encode(X), dtype=np.float32)
    _check_finite(codes, "posterior means", args.model)
    _write_rows(args.out, suffix, codes)
    print(
        f"Wrote the {codes.shape[1]}-D posterior means of {codes.shape[0]} samples to {args.out}",
        file=sys.stderr,
    )
    return 0


def _load_model_data(args, vae):
    """The samples of ``args.data`` (all of them), which must have the model's features."""
    from . import datasets

    data = datasets.load(
        args.data,
        data_home=args.data_home,
        grayscale=args.grayscale,
        download_if_missing=not args.no_download,
        test_split=False,
    )
    if data.X.shape[1] != vae.n_features_in_:
        raise CLIError(
            f"{args.data} has {data.X.shape[1]} features per sample but the model "
            f"{args.model} was fitted on {vae.n_features_in_}"
        )
    return data.X


# -------------------------------------------------------------- score, impute
_SCORE_ADVICE = "score fewer rows at a time, or use a smaller --n-importance"


def run_score(args):
    """Run ``skvae score``: write the score of each row of data under a saved model.

    The columns are ``score_samples`` (``--method`` and ``--n-importance``,
    else the model's own score) and, for a
    :class:`~skvae.VAEOutlierDetector`, ``decision_function`` and
    ``predict`` as the detector computes them (its own score minus
    ``offset_``; -1 where that is negative, else +1). A ``.csv`` gets a
    header line with the column names and values that read back exactly
    (17 significant digits); a ``.npy`` a float64 array of shape
    ``(n_rows, n_columns)``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``score`` arguments.

    Returns
    -------
    status : int
        0.

    Raises
    ------
    CLIError
        If the data do not have the model's number of features, the method
        does not apply to the model, or the scores are not finite (nothing
        is written). Data outside the likelihood's domain raise the
        estimator's ValueError (also an error of the command).

    Examples
    --------
    >>> from skvae.cli import main
    >>> main(["score", "runs/digits/model.skvae", "digits"])  # doctest: +SKIP
    0
    """
    suffix = _check_out_suffix(args.out, _CODE_SUFFIXES)
    vae = load_model(args.model)
    if args.method == "reconstruction" and not hasattr(vae, "offset_"):
        raise CLIError(
            f"--method reconstruction is the score of a VAEOutlierDetector (skvae fit "
            f"--outliers); {args.model} holds a {type(vae).__name__}: use elbo or iwae"
        )
    X = _load_model_data(args, vae)
    with _out_of_memory_is_an_error(_SCORE_ADVICE), _torch_threads(args.threads):
        columns = _score_columns(args, vae, X)
    _check_finite(columns["score_samples"], "scores", args.model)
    _write_columns(args.out, suffix, columns)
    print(
        f"Wrote {', '.join(columns)} of {X.shape[0]} samples to {args.out}", file=sys.stderr
    )
    return 0


def _score_columns(args, vae, X):
    """``{"score_samples": ...}``, plus ``decision_function`` and ``predict`` for a detector."""
    import numpy as np

    options = {"method": args.method, "n_importance": args.n_importance}
    options = {key: value for key, value in options.items() if value is not None}
    columns = {"score_samples": vae.score_samples(X, **options)}
    if not hasattr(vae, "offset_"):
        return columns
    own = args.method in (None, vae.score_method) and args.n_importance is None
    if not own:
        print(
            f"{PROG}: note: decision_function and predict come from the detector's own "
            f"score ({vae.score_method!r}, offset_ {vae.offset_:.6g}), not from "
            "--method and --n-importance",
            file=sys.stderr,
        )
    scores = columns["score_samples"] if own else vae.score_samples(X)
    decision = scores - vae.offset_
    columns["decision_function"] = decision
    columns["predict"] = np.where(decision < 0, -1, 1)
    return columns


def _write_columns(path, suffix, columns):
    """Named 1-D columns to a ``.csv`` with a header line, or a 2-D float64 ``.npy``."""
    import numpy as np

    table = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns.values()])
    if suffix == ".npy":
        np.save(path, table)
    else:
        fmt = ["%d" if np.asarray(c).dtype.kind in "iu" else "%.17g" for c in columns.values()]
        np.savetxt(path, table, delimiter=",", fmt=fmt, header=",".join(columns), comments="")


def run_impute(args):
    """Run ``skvae impute``: fill the missing entries of data with a saved model.

    A :class:`~skvae.VAEImputer` writes ``transform(DATA)``; any other
    model fitted with ``missing_values=np.nan`` writes DATA with each NaN
    replaced by the importance-weighted conditional mean of the entry
    given the row's observed entries (``--n-importance`` draws), the
    observed entries unchanged.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``impute`` arguments.

    Returns
    -------
    status : int
        0.

    Raises
    ------
    CLIError
        If the model was fitted without missing values (it cannot impute:
        the message says what to fit), the data do not have its number of
        features, or the imputed values are not finite (nothing is written).

    Examples
    --------
    >>> from skvae.cli import main
    >>> main(["impute", "runs/X/model.skvae", "X.csv", "--out", "filled.csv"])  # doctest: +SKIP
    0
    """
    import numpy as np

    suffix = _check_out_suffix(args.out, _CODE_SUFFIXES)
    vae = load_model(args.model)
    _check_imputes(vae, args.model)
    X = _load_model_data(args, vae)
    with _out_of_memory_is_an_error(_SCORE_ADVICE), _torch_threads(args.threads):
        filled = _fill_missing(vae, X, args.n_importance)
    _check_finite(filled, "imputed values", args.model)
    _write_rows(args.out, suffix, filled)
    print(
        f"Filled {int(np.isnan(X).sum())} missing entries of {X.shape[0]} samples; wrote "
        f"{filled.shape[0]} x {filled.shape[1]} values to {args.out}",
        file=sys.stderr,
    )
    return 0


def _check_imputes(vae, model):
    """Refuse a model fitted without missing values: it cannot impute."""
    if not (hasattr(vae, "_fitted_missing") and vae._fitted_missing()):
        raise CLIError(
            f"{model} holds a {type(vae).__name__} fitted without missing values, which "
            "cannot impute: fit a model on data with missing (NaN) entries, with `skvae "
            "fit --data FILE --missing-values nan` or skvae.VAEImputer in Python"
        )


def _fill_missing(vae, X, n_importance):
    """``X`` completed by ``vae``: a VAEImputer's transform, else the conditional means."""
    import numpy as np

    if hasattr(vae, "n_impute_draws"):  # a VAEImputer
        if n_importance is not None:
            vae.set_params(n_impute_draws=n_importance)
        return np.asarray(vae.transform(X), dtype=np.float32)
    options = {} if n_importance is None else {"n_importance": n_importance}
    return np.asarray(vae._complete(X, **options), dtype=np.float32)


# ------------------------------------------------------------------ plugins
def plugin_table():
    """Rows of ``skvae plugins``: every registered plugin and where it comes from.

    Returns
    -------
    rows : list of tuple of str
        ``(kind, name, distribution, entry point, class)``; the distribution
        is ``"name version"``, or ``"(run time)"`` for a plugin registered
        with :func:`skvae.register_plugin`.

    Examples
    --------
    >>> from skvae.cli import plugin_table
    >>> [row for row in plugin_table() if row[1] == "mlp"][0][:2]
    ('architecture', 'mlp')
    """
    from . import list_plugins
    from ._registry import get_registry

    registry = get_registry()
    rows = []
    for plugin in list_plugins():
        origin = registry.origin(plugin["kind"], plugin["name"])
        if origin["distribution"]:
            distribution = f"{origin['distribution']} {origin['version'] or ''}".strip()
        else:
            distribution = "(run time)"
        cls = plugin["class"]
        rows.append(
            (
                plugin["kind"],
                plugin["name"],
                distribution,
                origin["entry_point"] or "-",
                f"{cls.__module__}.{cls.__qualname__}",
            )
        )
    return rows


def run_export(args):
    """Run ``skvae export``: write a saved model's method as an ONNX graph.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``export`` arguments.

    Returns
    -------
    status : int
        0.

    Raises
    ------
    CLIError
        If ``--out`` does not end in ``.onnx`` or cannot be written, or the
        onnx extra is not installed (the message says what to install).
    ValueError
        If the model or method does not export (skvae.onnx.to_onnx says
        why); reported as ``skvae: error: ...``.

    Examples
    --------
    >>> from skvae.cli import main
    >>> main(["export", "runs/digits/model.skvae", "--out", "encoder.onnx"])  # doctest: +SKIP
    0
    """
    if args.out.suffix.lower() != ".onnx":
        raise CLIError(f"--out must end in .onnx; got {str(args.out)!r}")
    _check_out_suffix(args.out, (".onnx",))  # a writable file, not a folder
    vae = load_model(args.model)
    try:
        from . import onnx as skvae_onnx

        model = skvae_onnx.to_onnx(
            vae, args.method, log_var=args.log_var, conditions=args.conditions,
            target_opset=args.opset,
        )
    except ImportError as exc:  # the onnx extra is missing; the message names it
        raise CLIError(_message(exc)) from None
    data = model.SerializeToString()
    fd, tmp = tempfile.mkstemp(prefix=f".{args.out.name}.", suffix=".tmp", dir=args.out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    inputs = ", ".join(i.name for i in model.graph.input)
    outputs = ", ".join(o.name for o in model.graph.output)
    print(
        f"Wrote {type(vae).__name__}.{args.method} as ONNX (opset "
        f"{model.opset_import[0].version}; inputs {inputs}; outputs {outputs}; a dynamic "
        f"batch dimension) to {args.out}",
        file=sys.stderr,
    )
    return 0


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

    Examples
    --------
    >>> from skvae.cli import main
    >>> main(["plugins"])  # doctest: +ELLIPSIS
    KIND  NAME  DISTRIBUTION  ENTRY-POINT  CLASS
    ...
    architecture  mlp  skvae ...  mlp  skvae_plugins.mlp.MLP
    ...
    0
    """
    rows = plugin_table()
    if not rows:
        print(
            "No plugins are registered: install skvae (`pip install -e .` in a "
            "checkout) so that its entry points exist.",
            file=sys.stderr,
        )
        return 0
    header = ("KIND", "NAME", "DISTRIBUTION", "ENTRY-POINT", "CLASS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
