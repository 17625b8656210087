"""Helpers shared by the gallery examples: data with fallbacks, saving figures.

Not an example itself (its name does not start with ``plot_``). The examples
import it from their own folder, both when run as scripts
(``python examples/plot_quickstart.py``) and when sphinx-gallery runs them
(it runs each example in the examples folder, with that folder on
``sys.path``).

Two environment variables:

- ``SKVAE_QUICK=1`` makes every example run in seconds on small data. The
  tests use it; the figures are then noise, and the gallery never sets it.
- ``SKVAE_EXAMPLES_OUT=folder`` writes each figure as a PNG into
  ``folder/<example name>/``. Without it a script run writes them into
  ``runs/<example name>/`` in the working directory, and a sphinx-gallery run
  writes none (the gallery keeps its own copies of the figures).
"""

import os
import sys
from pathlib import Path

from sklearn.model_selection import train_test_split

from skvae.datasets import load_digits, load_fashion_mnist, load_mnist

#: SKVAE_QUICK=1 makes every example run in seconds on small data.
QUICK = os.environ.get("SKVAE_QUICK", "") not in ("", "0")


def quick(full, small):
    """``small`` in quick mode (the tests), ``full`` otherwise (the gallery)."""
    return small if QUICK else full


def load_data(choice="auto", n_train=None, n_test=None, *, download=False):
    """Images in [0, 1] as rows, from files on the machine, else scikit-learn's digits.

    ``choice`` is the order of preference: ``"auto"`` tries MNIST, then
    Fashion-MNIST; ``"fashion"`` or ``"mnist"`` tries that one; ``"digits"``
    none. A data set is used when :func:`skvae.datasets.load_mnist` or
    :func:`skvae.datasets.load_fashion_mnist` finds its files (Debian's
    ``dataset-fashion-mnist`` package puts Fashion-MNIST in
    /usr/share/datasets); nothing is downloaded unless ``download=True``. When
    none is found, the 8x8 digits that ship with scikit-learn stand in.

    Returns ``title, X_train, y_train, X_test, y_test, class_names, image_shape``.
    """
    loaders = {"mnist": ("MNIST", load_mnist), "fashion": ("Fashion-MNIST", load_fashion_mnist)}
    tried = []
    for key in {"auto": ["mnist", "fashion"], "digits": []}.get(choice, [choice]):
        title, loader = loaders[key]
        try:
            train = loader("train", download_if_missing=download)
            test = loader("test", download_if_missing=download)
        except FileNotFoundError:
            tried.append(title)
            continue
        data = (train.data, train.target, test.data, test.target)
        names, shape = list(train.target_names), (28, 28, 1)
        break
    else:
        title = "scikit-learn's 8x8 digits"
        digits = load_digits()
        X_train, X_test, y_train, y_test = train_test_split(
            digits.data, digits.target, test_size=0.25, stratify=digits.target, random_state=0
        )
        data, names, shape = (X_train, y_train, X_test, y_test), list(range(10)), (8, 8, 1)
    X_train, y_train, X_test, y_test = data
    X_train, y_train = X_train[:n_train], y_train[:n_train]
    X_test, y_test = X_test[:n_test], y_test[:n_test]
    why = f" ({' and '.join(tried)} files not found)" if tried else ""
    print(f"data: {title}{why}: {len(X_train)} train / {len(X_test)} test images of "
          f"{shape[0]}x{shape[1]}")
    return title, X_train, y_train, X_test, y_test, names, shape


def output_folder():
    """Where :func:`save` writes this example's figures, or None (see the module's docstring)."""
    name = Path(sys.argv[0]).stem or "example"
    if os.environ.get("SKVAE_EXAMPLES_OUT"):
        return Path(os.environ["SKVAE_EXAMPLES_OUT"]) / name
    if "sphinx_gallery" in sys.modules:
        return None
    return Path("runs") / name


def save(fig, filename):
    """Write ``fig`` as a PNG into :func:`output_folder`; leave it open for the gallery.

    sphinx-gallery collects the figures still open at the end of each cell,
    so the figure is not closed here.
    """
    folder = output_folder()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        fig.savefig(folder / filename, dpi=110)
        print(f"  wrote {folder / filename}")


def frame_tiles(ax):
    """Grey gaps and a frame around the tiles, so that white patches stand out from the page."""
    ax.set_facecolor("0.55")
    for spine in ax.spines.values():
        spine.set(visible=True, edgecolor="0.55")
