#!/usr/bin/env python
"""ONNX export of a whole Pipeline: a VAE's against PCA's, in ONNX Runtime and in Python.

One job on real data: ``MinMaxScaler(clip=True)``, then a reduction to
``n_components`` features, then ``LogisticRegression(max_iter=1000)``. Two
pipelines, fitted on the same training rows:

``VAE``
    ``VAETransformer(n_components, max_iter=epochs, random_state=0,
    device="cpu")`` as the reduction (the default MLP and likelihood; a few
    epochs: digits 100, Fashion-MNIST 20, ``--quick`` 10 and 3, so its
    codes classify worse than PCA's), converted by
    ``skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})`` after
    ``import skvae.onnx`` (which registers skvae's converter);
``PCA``
    scikit-learn's reference for the same job: ``PCA(n_components,
    random_state=0)`` in its place, converted the same way by skl2onnx's
    own converters.

Each pipeline runs two ways on the same float32 test rows:

``onnxruntime``
    ``InferenceSession`` of the converted graph (CPU provider, one intra-op
    and one inter-op thread); ``predict`` is ``session.run(["label"], ...)``;
``python``
    the fitted pipeline's own ``predict`` / ``predict_proba``. skvae runs
    inference in zero-padded batches of 1024 rows, so its ``transform`` of
    one row costs about what 1024 rows cost.

Columns, per (data set, model, runtime):

- **export s**: the wall time of ``skl2onnx.to_onnx`` (once). Before the
  first timed export the script exports a small VAE, untimed: the first
  export of a process also pays ~2 s of torch.onnx's one-time set-up
  (printed, and kept in the JSON as ``first_export_s``);
- **ONNX KB**: the size of the serialised graph (``SerializeToString``),
  what ``onnx.save`` writes;
- **accuracy**: of the predicted labels on the test rows;
- **1-row us**: the median wall time, in microseconds, of ``predict`` on
  one row (``--calls`` calls, a different test row each call);
- **rows/s**: the test rows divided by the median wall time of ``predict``
  on the whole test set in one call (``--repeats`` calls);
- **same label**: the share of test rows whose ONNX label equals the
  Python pipeline's; **max abs d proba**: the largest absolute difference
  between ONNX Runtime's probabilities and ``predict_proba`` (float32
  rounding is ~1e-6).

The timed calls are interleaved: each round calls every (model, runtime)
in turn, in an order rotated from round to round, so that a busy moment of
the machine hits all of them alike; the table shows medians. A round makes
one call of each on the whole test set, or ``--block`` (10) one-row calls
of each in a row: a one-row call of ONNX Runtime right after a call of a
Python pipeline (milliseconds of other work through the caches) takes
several times as long as one after its own, so the median over blocks is
the steady latency of each runtime; the median of the first call of each
block ("after the others") is printed and kept in the JSON. The CPU time
that *other* processes took meanwhile is measured (``/proc/stat``) and printed:
on a shared 2-core machine, above ~0.1 core, take the timings as rough.
Everything runs on one thread (torch, BLAS/OpenMP through threadpoolctl,
ONNX Runtime).

Data sets:

``digits``
    scikit-learn's 8 x 8 digits / 16 (1,797 rows of 64 features in
    [0, 1]), split in halves (stratified, seed 0): 898 training, 899 test
    rows; 8 latent dimensions.
``fashion``
    Fashion-MNIST (``skvae.datasets.load_fashion_mnist``, pixels in
    [0, 1]): the first ``--fashion-train`` training images (default 3000)
    and the first ``--fashion-test`` test images (default 2000); 16 latent
    dimensions. Skipped, with a note, when the files are not on disk (no
    download is attempted).

Examples
--------
    python benchmarks/bench_onnx.py --quick                     # smoke test, ~30 s
    python benchmarks/bench_onnx.py                             # ~1 min on one core
    python benchmarks/bench_onnx.py --datasets digits --calls 2000 --repeats 21 --json onnx.json
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch

from _machine import OtherLoad, machine_info

MODELS = ("VAE", "PCA")
RUNTIMES = ("onnxruntime", "python")
#: Latent dimensions (and PCA components) per data set.
N_COMPONENTS = {"digits": 8, "fashion": 16}
#: VAE epochs per data set (default, --quick).
EPOCHS = {"digits": (100, 10), "fashion": (20, 3)}
WARMUP_CALLS = 20


# ------------------------------------------------------------------ threads
def one_thread():
    """torch, BLAS/OpenMP (threadpoolctl): one thread each. Returns the limiter."""
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or inter-op work already started
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=1)


def loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# --------------------------------------------------------------------- data
def load(name, args):
    """``(X_train, y_train, X_test, y_test)``, float32 in [0, 1]; None if missing."""
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = (X / 16).astype(np.float32)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.5, stratify=y, random_state=0
        )
        return X_train, y_train, np.ascontiguousarray(X_test), y_test
    from skvae.datasets import load_fashion_mnist

    try:
        train = load_fashion_mnist("train", download_if_missing=False)
        test = load_fashion_mnist("test", download_if_missing=False)
    except (FileNotFoundError, OSError) as exc:
        print(f"note: Fashion-MNIST skipped, its files are not on disk ({exc})", flush=True)
        return None
    n_train, n_test = args.fashion_train, args.fashion_test
    return (
        np.ascontiguousarray(train.data[:n_train], dtype=np.float32),
        train.target[:n_train],
        np.ascontiguousarray(test.data[:n_test], dtype=np.float32),
        test.target[:n_test],
    )


# ------------------------------------------------------------------- models
def pipeline(model, n_components, epochs):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    from skvae import VAETransformer

    if model == "VAE":
        reduce = VAETransformer(
            n_components=n_components, max_iter=epochs, random_state=0, device="cpu"
        )
    else:
        reduce = PCA(n_components=n_components, random_state=0)  # randomized SVD on 784 pixels
    return Pipeline(
        [
            ("scale", MinMaxScaler(clip=True)),
            ("reduce", reduce),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )


def register_converters():
    """``import skvae.onnx``, which registers skvae's converters with skl2onnx."""
    import skvae.onnx

    return skvae.onnx


def export(pipe, X):
    """``(serialised ONNX bytes, seconds)`` of ``skl2onnx.to_onnx`` on the fitted pipeline."""
    from skl2onnx import to_onnx

    register_converters()

    start = time.perf_counter()
    onx = to_onnx(pipe, X[:1].astype(np.float32), options={"zipmap": False})
    seconds = time.perf_counter() - start
    return onx.SerializeToString(), seconds


def session(onnx_bytes):
    """An ONNX Runtime session on the CPU with one intra-op and one inter-op thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(
        onnx_bytes, options, providers=["CPUExecutionProvider"]
    )


def warm_up_exporter(X, n_components):
    """Export a small VAE pipeline, untimed: torch.onnx's one-time set-up. Returns seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch: not converged
        pipe = pipeline("VAE", n_components, epochs=1).fit(X[:256], np.arange(256) % 2)
    return export(pipe, X)[1]


# -------------------------------------------------------------- measurement
def interleaved(predictors, make_input, rounds, block=1):
    """Call every predictor ``block`` times a round, in rotated order: {key: [seconds, ...]}.

    Round ``i`` calls each predictor on ``make_input(i * block + j)``,
    ``j = 0 .. block - 1``, one predictor after the other; the first
    predictor of round ``i`` is ``keys[i % len(keys)]``.
    """
    keys = list(predictors)
    times = {key: [] for key in keys}
    for i in range(rounds):
        inputs = [make_input(i * block + j) for j in range(block)]
        shift = i % len(keys)
        for key in keys[shift:] + keys[:shift]:
            fn = predictors[key]
            for X in inputs:
                start = time.perf_counter()
                fn(X)
                times[key].append(time.perf_counter() - start)
    return times


def run_dataset(name, data, args, log):
    """Fit, export and time both pipelines on one data set: a list of result rows."""
    X_train, y_train, X_test, y_test = data
    n_components = args.n_components or N_COMPONENTS[name]
    epochs = args.epochs or EPOCHS[name][1 if args.quick else 0]
    log(
        f"\n{name}: {len(X_train)} training, {len(X_test)} test rows of "
        f"{X_train.shape[1]} features; n_components={n_components}, VAE {epochs} epochs"
    )

    pipes, sessions, info = {}, {}, {}
    for model in MODELS:
        pipe = pipeline(model, n_components, epochs)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a VAE stopped after a few epochs warns
            pipe.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        onnx_bytes, export_s = export(pipe, X_train)
        start = time.perf_counter()
        sess = session(onnx_bytes)
        session_s = time.perf_counter() - start
        pipes[model], sessions[model] = pipe, sess
        info[model] = {
            "fit_s": fit_s,
            "export_s": export_s,
            "onnx_bytes": len(onnx_bytes),
            "session_s": session_s,
        }
        log(
            f"  {model}: fit {fit_s:.2f} s, export {export_s:.2f} s, "
            f"{len(onnx_bytes) / 1024:.1f} KB, session {session_s * 1000:.0f} ms"
        )

    # Agreement of the whole test set, and the check that "label" is the output.
    agreement = {}
    for model in MODELS:
        names = [o.name for o in sessions[model].get_outputs()]
        labels, proba = sessions[model].run(["label", "probabilities"], {"X": X_test})
        py_labels = pipes[model].predict(X_test)
        py_proba = pipes[model].predict_proba(X_test)
        agreement[model] = {
            "outputs": names,
            "same_label": float(np.mean(labels.ravel() == py_labels)),
            "disagreeing_rows": int(np.sum(labels.ravel() != py_labels)),
            "max_abs_diff_proba": float(np.max(np.abs(proba - py_proba))),
            "accuracy_onnx": float(np.mean(labels.ravel() == y_test)),
            "accuracy_python": float(np.mean(py_labels == y_test)),
        }

    predictors = {}
    for model in MODELS:
        predictors[(model, "onnxruntime")] = (
            lambda X, s=sessions[model]: s.run(["label"], {"X": X})[0]
        )
        predictors[(model, "python")] = pipes[model].predict

    def one_row(i):
        j = i % len(X_test)
        return X_test[j : j + 1]

    # Warm-up, untimed: a few single rows and one whole test set each.
    interleaved(predictors, one_row, 1, WARMUP_CALLS)
    interleaved(predictors, lambda i: X_test, 1)

    block = min(args.block, args.calls)
    rounds = -(-args.calls // block)
    with OtherLoad() as load_latency:
        latency = interleaved(predictors, one_row, rounds, block)
    with OtherLoad() as load_throughput:
        whole = interleaved(predictors, lambda i: X_test, args.repeats)
    # The first call of each block follows another runtime's calls.
    after_others = {key: times[::block] for key, times in latency.items()}
    log(
        f"  timed {rounds} rounds of {block} one-row calls and {args.repeats} whole-set "
        f"rounds; other processes: {load_latency.cores or 0:.2f} and "
        f"{load_throughput.cores or 0:.2f} cores on average"
    )
    log(
        "  1-row us, median of all calls / of the first call of each block (right after "
        "the other runtimes): "
        + ", ".join(
            f"{m} {r} {1e6 * statistics.median(latency[(m, r)]):,.0f} / "
            f"{1e6 * statistics.median(after_others[(m, r)]):,.0f}"
            for m in MODELS
            for r in RUNTIMES
        )
    )

    rows = []
    for model in MODELS:
        for runtime in RUNTIMES:
            key = (model, runtime)
            onnx = runtime == "onnxruntime"
            whole_s = statistics.median(whole[key])
            rows.append(
                {
                    "dataset": name,
                    "model": model,
                    "runtime": runtime,
                    "n_train": len(X_train),
                    "n_test": len(X_test),
                    "n_features": int(X_train.shape[1]),
                    "n_components": n_components,
                    "epochs": epochs if model == "VAE" else None,
                    "fit_s": info[model]["fit_s"],
                    "export_s": info[model]["export_s"] if onnx else None,
                    "onnx_kb": info[model]["onnx_bytes"] / 1024 if onnx else None,
                    "session_s": info[model]["session_s"] if onnx else None,
                    "accuracy": agreement[model]["accuracy_onnx" if onnx else "accuracy_python"],
                    "latency_us": 1e6 * statistics.median(latency[key]),
                    "latency_us_p10_p90": [
                        1e6 * float(np.percentile(latency[key], q)) for q in (10, 90)
                    ],
                    "latency_us_after_others": 1e6 * statistics.median(after_others[key]),
                    "latency_block": block,
                    "whole_s": whole_s,
                    "whole_s_all": whole[key],
                    "rows_per_s": len(X_test) / whole_s,
                    "same_label": agreement[model]["same_label"] if onnx else None,
                    "disagreeing_rows": agreement[model]["disagreeing_rows"] if onnx else None,
                    "max_abs_diff_proba": (
                        agreement[model]["max_abs_diff_proba"] if onnx else None
                    ),
                    "other_load_cores": [load_latency.cores, load_throughput.cores],
                }
            )
    return rows


# ------------------------------------------------------------------ table
def markdown_table(rows):
    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = [
        "| data set | model | runtime | export s | ONNX KB | accuracy | 1-row us "
        "| rows/s | same label | max abs d proba |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['runtime']} | {cell(r['export_s'], '.2f')} "
            f"| {cell(r['onnx_kb'], '.1f')} | {r['accuracy']:.3f} | {r['latency_us']:,.0f} "
            f"| {r['rows_per_s']:,.0f} | {cell(r['same_label'], '.4f')} "
            f"| {cell(r['max_abs_diff_proba'], '.1e')} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["digits", "fashion"], choices=["digits", "fashion"]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer epochs (digits 10, fashion 3), 1000/500 Fashion-MNIST rows, "
        "100 one-row calls, 3 repeats",
    )
    parser.add_argument(
        "--repeats", type=int, default=None,
        help="whole-test-set calls per runtime (default 15; quick 3)",
    )
    parser.add_argument(
        "--calls", type=int, default=None,
        help="one-row calls per runtime (default 1000; quick 100)",
    )
    parser.add_argument(
        "--block",
        type=int,
        default=10,
        help="one-row calls of a runtime in a row before the next runtime's (default 10)",
    )
    parser.add_argument(
        "--epochs", type=int, default=None,
        help="VAE epochs (default: digits 100, fashion 20; quick 10 and 3)",
    )
    parser.add_argument(
        "--n-components",
        type=int,
        default=None,
        help="latent dimensions and PCA components (default: digits 8, fashion 16)",
    )
    parser.add_argument(
        "--fashion-train", type=int, default=None,
        help="Fashion-MNIST training rows (3000; quick 1000)",
    )
    parser.add_argument(
        "--fashion-test", type=int, default=None, help="Fashion-MNIST test rows (2000; quick 500)"
    )
    parser.add_argument("--json", metavar="PATH", default=None, help="also write results as JSON")
    args = parser.parse_args(argv)
    defaults = {
        "repeats": (15, 3),
        "calls": (1000, 100),
        "fashion_train": (3000, 1000),
        "fashion_test": (2000, 500),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    positive = ("repeats", "calls", "block", "fashion_train", "fashion_test", "epochs",
                "n_components")
    for name in positive:
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    limiter = one_thread()  # kept alive: the limits last while it does
    t_start = time.perf_counter()

    import onnx
    import onnxruntime
    import skl2onnx

    skvae_onnx = register_converters()

    machine = {
        **machine_info("cpu"),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "skl2onnx": skl2onnx.__version__,
        "skvae_onnx_default_opset": skvae_onnx.DEFAULT_OPSET,
        "loadavg_start": loadavg(),
        "threadpoolctl": limiter is not None,
    }
    print(
        f"platform={machine['platform']} cpus={machine['cpu_count']} "
        f"python={machine['python']} torch={machine['torch']} sklearn={machine['sklearn']} "
        f"onnxruntime={machine['onnxruntime']} skl2onnx={machine['skl2onnx']} "
        f"onnx={machine['onnx']}\nthreads: 1 (torch {torch.get_num_threads()}, "
        f"threadpoolctl {'yes' if limiter is not None else 'not installed'}, onnxruntime 1+1); "
        f"loadavg(1, 5, 15 min)={machine['loadavg_start']}",
        flush=True,
    )

    def log(message):
        print(message, flush=True)

    datasets = {}
    for name in args.datasets:
        data = load(name, args)
        if data is not None:
            datasets[name] = data
    if not datasets:
        print("no data set to run", file=sys.stderr)
        return 2

    first = next(iter(datasets.values()))[0]
    first_export_s = warm_up_exporter(first, 2)
    log(
        "untimed warm-up export of a small VAE pipeline (torch.onnx set-up): "
        f"{first_export_s:.2f} s"
    )

    rows = []
    for name, data in datasets.items():
        rows += run_dataset(name, data, args, log)

    total_s = time.perf_counter() - t_start
    table = markdown_table(rows)
    print(
        f"\nMedians: 1-row us over {args.calls} calls of predict on one row (interleaved "
        f"blocks of {min(args.block, args.calls)}); "
        f"rows/s from {args.repeats} interleaved calls on the whole test set. "
        f"same label, max abs d proba: ONNX Runtime against the Python pipeline.\n"
    )
    print(table)
    loads = [c for r in rows for c in r["other_load_cores"] if c is not None]
    if loads and max(loads) > 0.1:
        print(
            f"\n(!) other processes kept up to {max(loads):.2f} cores busy during the timed "
            "calls: the timings are rough"
        )
    disagree = [r for r in rows if r["same_label"] is not None and r["same_label"] < 1]
    for r in disagree:
        print(
            f"(!) {r['dataset']} {r['model']}: {r['disagreeing_rows']} test rows get another "
            f"label from ONNX Runtime (max abs d proba {r['max_abs_diff_proba']:.1e})"
        )
    print(f"total {total_s:.0f} s; loadavg at the end: {loadavg()}")

    if args.json:
        payload = {
            "args": vars(args),
            "machine": machine,
            "first_export_s": first_export_s,
            "total_s": total_s,
            "rows": rows,
            "table": table,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
