#!/usr/bin/env python
"""Benchmark semi-supervised ``skvae.AuxiliaryClassifierVAE`` (model M2) against scikit-learn.

Protocol (issue 14, "few labels"). For each data set, seed and label fraction:

1. draw a training part and a test part (seeded);
2. keep the labels of a fraction (1 %, 5 %, 10 %) of the training rows, drawn
   stratified by class from the seed (at least one row per class), and set
   the others to -1 (scikit-learn's mark of an unlabelled row). Every method
   gets the same labelled rows;
3. fit each method on the training part, score its accuracy on the test
   part (rows no method saw). Nothing is tuned on the test rows: the
   baselines run with scikit-learn's defaults, and the VAE's settings
   (:data:`M2_CANDIDATES`, picked per data set in :func:`m2_settings`)
   were chosen with ``--select``, which scores the candidates on a
   validation split of the LABELLED training rows only (a third of them,
   stratified, their labels hidden from the fit) at 5 % labels, seed 0.

Data sets:

``digits``
    scikit-learn's 8x8 digits (1797 x 64) divided by 16 to [0, 1];
    70 % / 30 % stratified split per seed.
``fashion``
    Fashion-MNIST (784 pixels in [0, 1], read by ``skvae.datasets``):
    ``--fashion-train`` rows (10,000) drawn from its training set and
    ``--fashion-test`` rows (2,000) from its test set, anew for each seed.
``penguins``, ``anes96``, ``fair``, ``breast_cancer``, ``wine``
    Real mixed tables (``_tables.load_table``: numeric, boolean and
    categorical columns; the label is the column ``bench_synthetic.py``
    predicts: species, vote, affair, diagnosis, cultivar); 70 % / 30 %
    stratified split per seed. skvae fits the DataFrame as it is
    (``likelihood="columns"``: each column's likelihood from its dtype,
    numbers standardised inside the model); the scikit-learn methods get it
    through :func:`table_encoder` (numbers standardised, categories one-hot),
    fitted on all training rows.

Methods:

``logreg``
    ``LogisticRegression(max_iter=1000)`` on the labelled rows alone.
``self_training``
    ``SelfTrainingClassifier(LogisticRegression(max_iter=1000))`` (threshold
    0.75, scikit-learn's default).
``spreading_rbf``
    ``LabelSpreading()``: scikit-learn's defaults (rbf kernel, gamma=20).
    It builds a dense n x n kernel: skipped above ``--max-rbf-rows`` training
    rows (5,000; 10,000 rows take about 2.4 GB in float64, several copies).
``spreading_knn``
    ``LabelSpreading(kernel="knn")`` (n_neighbors=7, the default).
``m2``
    ``AuxiliaryClassifierVAE`` trained on all training rows, the unlabelled
    ones marked -1 (the label marginalised, docs/semi_supervised.md), with
    ``classifier_weight = 0.1 * n_train`` (Kingma et al.'s alpha) and the
    settings of :func:`m2_settings`.
``m1_m2``
    Kingma et al.'s stacked model: ``VAETransformer`` (M1, unsupervised, on
    all training rows) then ``StandardScaler`` then a Gaussian
    ``AuxiliaryClassifierVAE`` (M2) on the codes, as one ``Pipeline``.

The table gives, per data set, label fraction and method, the median
accuracy over seeds (the best of each row in bold) and the median seconds
of a fit and a prediction.

Examples
--------
    python benchmarks/bench_semi_supervised.py --quick               # smoke test, minutes
    nice -n 10 python benchmarks/bench_semi_supervised.py --seeds 3  # the README table
    python benchmarks/bench_semi_supervised.py --datasets digits --json semi.json
    python benchmarks/bench_semi_supervised.py --datasets fashion --seeds 1 --first-seed 1 \
        --json fashion1.json                                       # one seed per process
    python benchmarks/bench_semi_supervised.py --merge fashion0.json fashion1.json
    nice -n 10 python benchmarks/bench_semi_supervised.py --select --datasets fashion \
        --fashion-train 3000 --fashion-test 1000                  # choose the M2 settings
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings

import numpy as np

IMAGES = ("digits", "fashion")
TABLES = ("penguins", "anes96", "fair", "breast_cancer", "wine")
DATASETS = IMAGES + TABLES
FRACTIONS = (0.01, 0.05, 0.10)
METHODS = ("logreg", "self_training", "spreading_rbf", "spreading_knn", "m2", "m1_m2")


# ------------------------------------------------------------------- data
def load_dataset(name, seed, *, fashion_train=10000, fashion_test=2000):
    """Return ``(X_train, y_train, X_test, y_test)``: float32 in [0, 1], or DataFrames."""
    if name in TABLES:
        return load_table_split(name, seed)
    if name == "fashion":
        from skvae.datasets import load_fashion_mnist

        rng = np.random.default_rng(seed)
        X_tr, y_tr = load_fashion_mnist("train", return_X_y=True)
        X_te, y_te = load_fashion_mnist("test", return_X_y=True)
        i = rng.choice(len(X_tr), size=fashion_train, replace=False)
        j = rng.choice(len(X_te), size=fashion_test, replace=False)
        return (np.asarray(X_tr[i], np.float32), y_tr[i],
                np.asarray(X_te[j], np.float32), y_te[j])
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        (X / 16).astype(np.float32), y, test_size=0.3, random_state=seed, stratify=y
    )
    return X_tr, y_tr, X_te, y_te


def load_table_split(name, seed):
    """A table's stratified 70 % / 30 % split: frames without the label, labels as codes.

    The labels are the codes 0, 1, ... of the label column's categories:
    scikit-learn's semi-supervised classifiers take numbers with -1 only.
    """
    import pandas as pd

    import _tables

    frame, target = _tables.load_table(name)
    frame[target] = pd.Categorical(frame[target]).codes.astype(np.int64)
    train, test = _tables.split_table(frame, target, seed)
    return train, train.pop(target).to_numpy(), test, test.pop(target).to_numpy()


def table_encoder(X):
    """scikit-learn's view of a table: numbers standardised, the other columns one-hot."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if X[c].dtype.kind in "iuf"]
    other = [c for c in X.columns if c not in numeric]
    return ColumnTransformer([
        ("numbers", StandardScaler(), numeric),
        ("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), other),
    ])


def hide_labels(y, fraction, seed):
    """``y`` with all but ``fraction`` of its rows (stratified, >= 1 per class) set to -1."""
    from sklearn.model_selection import train_test_split

    n_classes = len(np.unique(y))
    n_labelled = max(n_classes, int(round(fraction * len(y))))
    index = np.arange(len(y))
    labelled, _ = train_test_split(
        index, train_size=n_labelled, stratify=y, random_state=seed
    )
    y_semi = np.full_like(y, -1)
    y_semi[labelled] = y[labelled]
    return y_semi


# ---------------------------------------------------------------- methods
#: The AuxiliaryClassifierVAE settings that ``--select`` compares (besides
#: ``classifier_weight = 0.1 * n_train``, Kingma et al.'s alpha). A small
#: code with beta=2 pushes the class into the decoder's label part; with the
#: label at the encoder too (q(z | x, y), what a fit with unlabelled rows
#: builds) a larger code with beta=1 may leave it there as well.
M2_CANDIDATES = {
    "z4_beta2": dict(n_components=4, beta=2.0),
    "z8_beta1": dict(n_components=8, beta=1.0),
    "z16_beta1": dict(n_components=16, beta=1.0),
}

#: The candidate of M2_CANDIDATES each data set uses, chosen by ``--select``
#: on held-out labelled training rows (5 % labels, seed 0; ties go to the
#: first candidate). Validation accuracy of z4_beta2 / z8_beta1 / z16_beta1:
#: digits (1257 training rows; 42 labels fit, 21 held out) 0.857 / 0.810 /
#: 0.810; Fashion-MNIST (3,000 training rows; 100 labels fit, 50 held out)
#: 0.740 / 0.740 / 0.720. The tables, at 10 % labels (5 % leaves 1-2 held-out
#: rows per class on the small ones; 3 December 2026): penguins (15 labels fit,
#: 8 held out) 1.000 / 1.000 / 1.000; anes96 (44, 22) 0.864 / 0.864 / 0.864;
#: fair (297, 149) 0.705 / 0.718 / 0.725; breast_cancer (27, 13) 0.846 / 0.923 /
#: 0.923; wine (8, 4) 1.000 / 1.000 / 1.000.
M2_CHOICE = {"digits": "z4_beta2", "fashion": "z4_beta2", "penguins": "z4_beta2",
             "anes96": "z4_beta2", "fair": "z16_beta1", "breast_cancer": "z8_beta1",
             "wine": "z4_beta2"}

#: Epochs of an M2 fit per data set (fixed: about 2,000 steps of 64 rows; the
#: tables' training parts have 233, 660, 4456, 398 and 124 rows).
M2_EPOCHS = {"digits": 100, "fashion": 40, "penguins": 500, "anes96": 200, "fair": 30,
             "breast_cancer": 300, "wine": 1000}


def m2_settings(dataset, n_train, seed, quick, candidate=None):
    """The AuxiliaryClassifierVAE settings: ``candidate`` (default: the data set's choice).

    A table is read as one whatever its dtypes (``likelihood="columns"``).
    """
    epochs = M2_EPOCHS[dataset]
    return dict(
        **M2_CANDIDATES[candidate or M2_CHOICE[dataset]],
        **({"likelihood": "columns"} if dataset in TABLES else {}),
        classifier_weight=0.1 * n_train,
        batch_size=64,
        max_iter=max(2, epochs // 10) if quick else epochs,
        random_state=seed,
    )


def make_method(method, dataset, n_train, seed, quick):
    """The estimator of ``method``; fit(X, y_semi) then predict(X_test)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

    baselines = {
        "logreg": lambda: LogisticRegression(max_iter=1000),
        "self_training": lambda: SelfTrainingClassifier(LogisticRegression(max_iter=1000)),
        "spreading_rbf": LabelSpreading,
        "spreading_knn": lambda: LabelSpreading(kernel="knn"),
    }
    if method in baselines:
        classifier = baselines[method]()
        if method == "logreg":
            classifier = LabelledOnly(classifier)
        return TableClassifier(classifier) if dataset in TABLES else classifier
    from skvae import AuxiliaryClassifierVAE, VAETransformer

    settings = m2_settings(dataset, n_train, seed, quick)
    if method == "m2":
        return AuxiliaryClassifierVAE(**settings)
    m1 = VAETransformer(
        n_components=32, batch_size=128, max_iter=settings["max_iter"], random_state=seed,
        **({"likelihood": "columns"} if dataset in TABLES else {}),
    )
    m2 = AuxiliaryClassifierVAE(**{**settings, "likelihood": "gaussian"})
    return make_pipeline(m1, StandardScaler(), m2)


class TableClassifier:
    """A scikit-learn classifier on :func:`table_encoder`'s view of a frame.

    The encoder is fitted on every training row (labelled or not: it uses no
    label), then the classifier on its view with the labels (-1 included).
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        self.encoder = table_encoder(X).fit(X)
        self.estimator.fit(self.encoder.transform(X), y)
        return self

    def predict(self, X):
        return self.estimator.predict(self.encoder.transform(X))


class LabelledOnly:
    """A classifier fitted on the rows whose label is not -1."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        keep = y != -1
        self.estimator.fit(X[keep], y[keep])
        return self

    def predict(self, X):
        return self.estimator.predict(X)


def run_case(dataset, data, fraction, seed, methods, args):
    """Fit and score every method on one (data set, seed, fraction)."""
    X_tr, y_tr, X_te, y_te = data
    y_semi = hide_labels(y_tr, fraction, seed)
    results = []
    for method in methods:
        if method == "spreading_rbf" and len(X_tr) > args.max_rbf_rows:
            continue
        estimator = make_method(method, dataset, len(X_tr), seed, args.quick)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings of the baselines and VAEs
            estimator.fit(X_tr, y_semi)
            accuracy = float(np.mean(estimator.predict(X_te) == y_te))
        seconds = time.perf_counter() - t0
        results.append({
            "dataset": dataset, "fraction": fraction, "seed": seed, "method": method,
            "n_labelled": int(np.sum(y_semi != -1)), "accuracy": accuracy, "seconds": seconds,
        })
        print(
            f"  {dataset:8s} labels={fraction:.0%} seed={seed} {method:14s} "
            f"acc={accuracy:.3f} ({seconds:.1f} s)",
            file=sys.stderr, flush=True,
        )
    return results


def validation_split(y_semi, seed):
    """Split the labelled rows: ``(y_fit, held_out)`` for choosing settings.

    A third of the labelled rows (stratified, at least one per class) are
    held out: ``y_fit`` marks them -1 (they stay in the fit as unlabelled
    rows) and ``held_out`` indexes them. Test rows play no part.
    """
    from sklearn.model_selection import train_test_split

    labelled = np.flatnonzero(y_semi != -1)
    n_classes = len(np.unique(y_semi[labelled]))
    n_held = max(n_classes, int(round(len(labelled) / 3)))
    _, held_out = train_test_split(
        labelled, test_size=n_held, stratify=y_semi[labelled], random_state=seed
    )
    y_fit = y_semi.copy()
    y_fit[held_out] = -1
    return y_fit, held_out


def select_m2(dataset, data, fraction, seed, args):
    """Score every M2 candidate on held-out labelled training rows; print the table."""
    from skvae import AuxiliaryClassifierVAE

    X_tr, y_tr, _, _ = data  # the test part is not used
    y_semi = hide_labels(y_tr, fraction, seed)
    y_fit, held_out = validation_split(y_semi, seed)
    rows = []
    for name in M2_CANDIDATES:
        settings = m2_settings(dataset, len(X_tr), seed, args.quick, candidate=name)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AuxiliaryClassifierVAE(**settings).fit(X_tr, y_fit)
        held_rows = X_tr.iloc[held_out] if hasattr(X_tr, "iloc") else X_tr[held_out]
        accuracy = float(np.mean(model.predict(held_rows) == y_semi[held_out]))
        rows.append((name, accuracy, time.perf_counter() - t0))
        print(f"  select {dataset} labels={fraction:.0%} {name:10s} "
              f"validation acc={accuracy:.3f} ({rows[-1][2]:.0f} s)", file=sys.stderr, flush=True)
    print(f"\n{dataset}, {fraction:.0%} labels, seed {seed}: validation accuracy on "
          f"{len(held_out)} held-out labelled training rows (fit on the other "
          f"{int(np.sum(y_fit != -1))} labels)\n")
    print("| candidate | settings | validation accuracy | s |\n|---|---|---|---|")
    for name, accuracy, seconds in rows:
        print(f"| {name} | {M2_CANDIDATES[name]} | {accuracy:.3f} | {seconds:.0f} |")
    return rows


def markdown_table(results, methods):
    """Median accuracy over seeds, one row per (data set, fraction); the best in bold."""
    cases = []
    for r in results:
        key = (r["dataset"], r["fraction"])
        if key not in cases:
            cases.append(key)
    head = ["data set", "labels"] + list(methods) + [f"s {m}" for m in methods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dataset, fraction in cases:
        accuracy, seconds = [], []
        for m in methods:
            runs = [r for r in results
                    if (r["dataset"], r["fraction"], r["method"]) == (dataset, fraction, m)]
            accuracy.append(statistics.median(r["accuracy"] for r in runs) if runs else None)
            seconds.append(statistics.median(r["seconds"] for r in runs) if runs else None)
        best = max(v for v in accuracy if v is not None)
        n_labelled = next(r["n_labelled"] for r in results
                          if (r["dataset"], r["fraction"]) == (dataset, fraction))
        row = [dataset, f"{fraction:.0%} ({n_labelled})"]
        row += ["" if v is None else (f"**{v:.3f}**" if v == best else f"{v:.3f}")
                for v in accuracy]
        row += ["" if v is None else f"{v:.1f}" for v in seconds]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first seed: --seeds seeds from it (to split a run over "
                             "processes; --merge puts their --json files together)")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="print the table of these --json files' runs together, and exit")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--fashion-train", type=int, default=10000)
    parser.add_argument("--fashion-test", type=int, default=2000)
    parser.add_argument("--max-rbf-rows", type=int, default=5000,
                        help="skip LabelSpreading's dense rbf kernel above this many rows")
    parser.add_argument(
        "--quick", action="store_true",
        help="one seed, 2000 + 500 Fashion-MNIST rows, a tenth of the VAE epochs",
    )
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS threads (default 1)")
    parser.add_argument("--json", help="also write the per-run results to this file")
    parser.add_argument(
        "--select", action="store_true",
        help="choose M2's settings instead: score M2_CANDIDATES on held-out labelled "
             "training rows (5 %% labels unless --fractions says otherwise; seed 0)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.fashion_train, args.fashion_test = 1, 2000, 500
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.merge:
        results = []
        for path in args.merge:
            with open(path) as f:
                results += json.load(f)["results"]
        methods = [m for m in METHODS if any(r["method"] == m for r in results)]
        seeds = sorted({r["seed"] for r in results})
        print(markdown_table(results, methods))
        print(f"\nMedian accuracy over seeds {seeds} (in brackets: labelled rows).")
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    if args.select:
        for dataset in args.datasets:
            data = load_dataset(dataset, 0, fashion_train=args.fashion_train,
                                fashion_test=args.fashion_test)
            fractions = args.fractions if args.fractions != list(FRACTIONS) else [0.05]
            for fraction in fractions:
                select_m2(dataset, data, fraction, 0, args)
        return
    results = []
    t0 = time.perf_counter()
    for dataset in args.datasets:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            data = load_dataset(dataset, seed, fashion_train=args.fashion_train,
                                fashion_test=args.fashion_test)
            for fraction in args.fractions:
                results += run_case(dataset, data, fraction, seed, args.methods, args)
    print(markdown_table(results, args.methods))
    print(
        f"\nMedian accuracy over {args.seeds} seed(s) (in brackets: labelled rows); "
        f"{time.perf_counter() - t0:.0f} s in all; torch threads {args.threads}; "
        f"{os.cpu_count()} CPUs."
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
