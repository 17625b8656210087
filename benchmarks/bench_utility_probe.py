#!/usr/bin/env python
"""Where does a generator's utility come from? Probes for ``bench_synthetic.py``.

On statsmodels' fair table, classifiers learn more from TVAE's synthetic rows
than from the real training rows themselves (benchmarks/README.md,
``bench_synthetic.py``). This script asks why, on the same splits and
metrics as ``bench_synthetic.py`` (``_tables``), with two probes:

``jitter``
    The real training rows with Gaussian noise added to their float columns
    (``scale`` times each column's standard deviation; fair's ``age``,
    ``yrs_married`` and ``children`` hold a few coded values each), scored
    by TSTR and efficacy like a synthetic table. TVAE models float columns
    as continuous, with a noise scale per mode, so its rows carry such
    noise; skvae's ``likelihood="auto"`` models a column of a few coded
    values as categorical and returns those values. If noise alone lifts
    the real rows' TSTR to TVAE's, the lift is augmentation, not a better
    model of the table.
``continuous``
    skvae with its benchmark settings, but with the float columns modelled as
    TVAE models them, continuous (``"gaussian"`` in a ``ColumnLikelihood``
    with ``remainder="auto"``: every other column as ``likelihood="auto"``
    models it), sampled with
    ``decode="draw"`` and ``"mean"``, against ``likelihood="auto"``: the
    four metrics of ``bench_synthetic.py``. Does TVAE's treatment buy its
    utility, and at what cost in fidelity?
``conditional``
    The table as p(label) p(rest | label): a ``ConditionalVAETransformer``
    with skvae's benchmark settings fitted on the other columns with the
    label column as ``y`` (``label_dropout`` 0.2, its default, and 0),
    sampled with labels drawn from ``class_prior_`` (the training
    proportions), against the joint ``likelihood="auto"`` model: the four
    metrics. Does modelling the label apart, as a class-conditional
    synthesizer does, train better classifiers?
``classifiers``
    Each of the CTGAN paper's efficacy classifiers on its own (macro F1,
    accuracy and the share of test rows predicted as the rarest class),
    trained on the real rows, on TVAE's rows (with ``--sdv-python``) and on
    skvae's (``bench_synthetic.SKVAE_SETTINGS``).

Examples
--------
    python benchmarks/bench_utility_probe.py --seeds 5 --probes jitter
    nice -n 5 python benchmarks/bench_utility_probe.py --seeds 5 --probes continuous
    nice -n 5 python benchmarks/bench_utility_probe.py --seeds 10 --probes conditional
    nice -n 5 python benchmarks/bench_utility_probe.py --seeds 3 --probes classifiers \\
        --sdv-python /tmp/sdvenv/bin/python
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _tables  # noqa: E402
import bench_synthetic  # noqa: E402

PROBES = ("jitter", "continuous", "conditional", "classifiers")
JITTER_SCALES = (0.0, 0.1, 0.25, 0.5)


def jittered(frame, scale, seed):
    """``frame`` with N(0, (scale * std)^2) noise added to each float column."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for col in frame.columns:
        if frame[col].dtype.kind == "f":
            out[col] = frame[col] + rng.normal(0.0, scale * frame[col].std(), len(frame))
    return out


def jitter_probe(dataset, seeds, scales):
    """``{scale: [(TSTR, efficacy, tree F1), ...]}`` of the jittered real training rows.

    One tuple per seed; ``tree F1`` is the macro F1 of the efficacy's
    decision tree alone.
    """
    frame, target = _tables.load_table(dataset)
    results = {}
    for seed in seeds:
        train, test = _tables.split_table(frame, target, seed)
        for scale in scales:
            rows = jittered(train, scale, seed)
            by_classifier = _tables.efficacy_by_classifier(rows, test, target, seed)
            scores = (_tables.tstr_accuracy(rows, test, target, seed),
                      float(np.mean([s["f1"] for s in by_classifier.values()])),
                      by_classifier["tree"]["f1"])
            results.setdefault(scale, []).append(scores)
            print(f"  {dataset} seed={seed} jitter={scale}: TSTR {scores[0]:.3f} "
                  f"efficacy {scores[1]:.3f} tree F1 {scores[2]:.3f}", file=sys.stderr,
                  flush=True)
    return results


def floats_continuous(train):
    """TVAE's treatment of the float columns, "auto"'s of the rest: a ``ColumnLikelihood``.

    "gaussian" for the float columns; every other column gets what
    ``likelihood="auto"`` gives it (``remainder="auto"``).
    """
    from skvae_plugins.columns import ColumnLikelihood

    floats = [c for c in train.columns if train[c].dtype.kind == "f"]
    return ColumnLikelihood([("gaussian", floats)], remainder="auto")


def score_tables(tables, test, target, seed, results):
    """Add the four metrics of each ``{name: synthetic frame}`` to ``results[name]``."""
    for name, synthetic in tables.items():
        scores = bench_synthetic.evaluate(synthetic, test, target, seed)
        results.setdefault(name, []).append(scores)
        print(f"  seed={seed} {name}: "
              + " ".join(f"{m} {scores[m]:.3f}" for m in bench_synthetic.QUALITY_METRICS),
              file=sys.stderr, flush=True)


def scored_probe(dataset, seeds, make_tables):
    """``{name: [scores, ...]}`` of the tables ``make_tables(train, target, seed, settings)``.

    On each seed's split, with ``settings`` the benchmark's skvae settings of
    ``dataset``; each table is scored against the test rows (:func:`score_tables`).
    """
    frame, target = _tables.load_table(dataset)
    settings = bench_synthetic.SKVAE_SETTINGS[dataset]
    results = {}
    for seed in seeds:
        train, test = _tables.split_table(frame, target, seed)
        score_tables(make_tables(train, target, seed, settings), test, target, seed, results)
    return results


def continuous_tables(train, target, seed, settings):
    """skvae's rows with continuous float columns (both decodes), and with "auto"."""
    tables = {f"auto, {settings['decode']}": bench_synthetic.fit_skvae(train, seed, settings)[0]}
    model = bench_synthetic.skvae_estimator(settings, seed)
    model.set_params(likelihood=floats_continuous(train)).fit(train)
    for decode in ("draw", "mean"):
        tables[f"float columns gaussian, {decode}"] = model.sample(
            len(train), random_state=seed, decode=decode)
    return tables


def conditional_rows(train, target, seed, settings, label_dropout):
    """Synthetic rows of a ``ConditionalVAETransformer``: labels from ``class_prior_``.

    It takes the parameters of the benchmark's ``VAETransformer``, with
    ``likelihood="columns"`` (each column's likelihood from its dtype, as
    "auto" gives it, also for a frame of numbers alone).
    """
    from skvae import ConditionalVAETransformer

    params = bench_synthetic.skvae_estimator(settings, seed).get_params(deep=False)
    conditional = ConditionalVAETransformer(**dict(params, likelihood="columns",
                                                   label_dropout=label_dropout))
    conditional.fit(train.drop(columns=target), train[target].to_numpy())
    rng = np.random.default_rng(seed)
    labels = rng.choice(conditional.classes_, size=len(train), p=conditional.class_prior_)
    rows = conditional.sample(len(train), random_state=seed, y=labels,
                              decode=settings["decode"])
    rows[target] = labels
    return _tables.cast_like(rows[list(train.columns)], train)


def conditional_tables(train, target, seed, settings):
    """p(label) p(rest | label) with both label dropouts, and the joint "auto" model."""
    tables = {"joint (the benchmark's)": bench_synthetic.fit_skvae(train, seed, settings)[0]}
    for dropout in (0.2, 0.0):
        tables[f"conditional, label_dropout={dropout}"] = conditional_rows(
            train, target, seed, settings, dropout)
    return tables


def classifier_probe(dataset, seeds, sdv_python):
    """``{method: [{classifier: scores}, ...]}`` for the real, skvae's and TVAE's rows."""
    frame, target = _tables.load_table(dataset)
    results = {}
    for seed in seeds:
        train, test = _tables.split_table(frame, target, seed)
        tables = {"real": train}
        tables["skvae"] = bench_synthetic.fit_skvae(
            train, seed, bench_synthetic.SKVAE_SETTINGS[dataset])[0]
        if sdv_python:
            tables["tvae"] = bench_synthetic.run_sdv(sdv_python, train, seed, ["tvae"], 1)[
                "tvae"][0]
        for method, rows in tables.items():
            scores = _tables.efficacy_by_classifier(rows, test, target, seed)
            results.setdefault(method, []).append(scores)
            print(f"  {dataset} seed={seed} {method:5s} "
                  + " ".join(f"{name}: F1 {s['f1']:.3f} acc {s['accuracy']:.3f} "
                             f"rare {s['minority_share']:.3f}" for name, s in scores.items()),
                  file=sys.stderr, flush=True)
    return results


def jitter_table(results):
    """Markdown: the means over the seeds of each jitter scale."""
    lines = ["| noise on the float columns (x std) | TSTR | efficacy | tree's F1 |",
             "|---|---|---|---|"]
    for scale, runs in results.items():
        tstr, efficacy, tree = np.mean(runs, axis=0)
        lines.append(f"| {scale} | {tstr:.3f} | {efficacy:.3f} | {tree:.3f} |")
    return "\n".join(lines)


def continuous_table(results):
    """Markdown: the four metrics of each way, medians over the seeds."""
    metrics = bench_synthetic.QUALITY_METRICS
    lines = ["| skvae's rows | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, runs in results.items():
        lines.append(f"| {name} | "
                     + " | ".join(f"{np.median([r[m] for r in runs]):.3f}" for m in metrics)
                     + " |")
    return "\n".join(lines)


def classifier_table(results):
    """Markdown: each classifier's macro F1, accuracy and rare-class share, means over seeds."""
    names = list(results["real"][0])
    lines = ["| rows | " + " | ".join(f"{n}: F1 / acc / rare" for n in names)
             + " | efficacy |", "|---" * (len(names) + 2) + "|"]
    for method, runs in results.items():
        cells = [" / ".join(f"{np.mean([r[n][k] for r in runs]):.3f}"
                            for k in ("f1", "accuracy", "minority_share")) for n in names]
        efficacy = np.mean([np.mean([r[n]["f1"] for n in names]) for r in runs])
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {efficacy:.3f} |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=_tables.DATASETS, default="fair")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--probes", nargs="+", choices=PROBES, default=list(PROBES))
    parser.add_argument("--sdv-python", help="a Python with SDV installed (TVAE's rows in "
                        "the classifiers probe); without it TVAE is skipped")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    warnings.filterwarnings("ignore")  # scikit-learn's convergence warnings at 50 iterations
    t0 = time.perf_counter()
    seeds = range(args.seeds)
    if "jitter" in args.probes:
        print(f"**{args.dataset}: the real training rows with noise on their float columns** "
              f"(means over {args.seeds} seeds)\n")
        print(jitter_table(jitter_probe(args.dataset, seeds, JITTER_SCALES)) + "\n")
    if {"continuous", "conditional", "classifiers"} & set(args.probes) and (
            bench_synthetic.table_mode_problem()):
        sys.exit("the continuous, conditional and classifiers probes need skvae's table mode")
    if "continuous" in args.probes:
        print(f"**{args.dataset}: skvae with its float columns continuous** (medians over "
              f"{args.seeds} seeds)\n")
        print(continuous_table(scored_probe(args.dataset, seeds, continuous_tables)) + "\n")
    if "conditional" in args.probes:
        print(f"**{args.dataset}: the label modelled apart, p(label) p(rest | label)** "
              f"(medians over {args.seeds} seeds)\n")
        print(continuous_table(scored_probe(args.dataset, seeds, conditional_tables)) + "\n")
    if "classifiers" in args.probes:
        print(f"**{args.dataset}: the efficacy classifiers one by one** (means over "
              f"{args.seeds} seeds; rare: the share of test rows predicted as the rarest "
              "class)\n")
        print(classifier_table(classifier_probe(args.dataset, seeds, args.sdv_python)) + "\n")
    print(f"{time.perf_counter() - t0:.0f} s in all; 1 thread; {os.cpu_count()} CPUs.")


if __name__ == "__main__":
    main()
