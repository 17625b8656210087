"""Helpers shared by the seed examples: data with fallbacks, saving figures.

The examples import this module from their own folder (``python examples/...``).
"""

import os

import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from skvae.datasets import load_digits, load_fashion_mnist, load_mnist

#: SKVAE_QUICK=1 makes every example run in seconds on small data.
QUICK = os.environ.get("SKVAE_QUICK", "") not in ("", "0")


def load_data(choice, n_train=None, n_test=None):
    """Images in [0, 1] as rows: MNIST, else Fashion-MNIST, else scikit-learn's digits."""
    loaders = {"mnist": ("MNIST", load_mnist), "fashion": ("Fashion-MNIST", load_fashion_mnist)}
    tried = []
    for key in {"auto": ["mnist", "fashion"], "digits": []}.get(choice, [choice]):
        title, loader = loaders[key]
        try:  # "auto" uses files already there; a named data set is downloaded if missing
            train = loader("train", download_if_missing=choice != "auto")
            test = loader("test", download_if_missing=choice != "auto")
        except FileNotFoundError:
            if choice != "auto":
                raise
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


def save(fig, path):
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"  wrote {path}")


def frame_tiles(ax):
    """Grey gaps and a frame around the tiles, so that white patches stand out from the page."""
    ax.set_facecolor("0.55")
    for spine in ax.spines.values():
        spine.set(visible=True, edgecolor="0.55")
