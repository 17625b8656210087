#!/usr/bin/env python
"""Per-step overhead of skvae's training step over the lean hand-written loop.

On a model so small that a step is mostly Python and operator dispatch
(64 features, one hidden layer of 32, latent 4, batch 128, one thread), the
difference between skvae's epoch and the lean loop's epoch, divided by the
number of steps, is what skvae adds to every step: Python calls, the
log-variance clamp, the epoch's loss bookkeeping. Epochs of the two run
alternately (skvae through ``partial_fit``, one epoch per call, timed by
``history_``), so that the machine's drifts hit both alike; the first two
epochs of each are dropped.

``--first lean`` times a second lean loop (seed 1) in skvae's place: the
noise floor of the comparison on the machine at hand.

``--data digits`` takes scikit-learn's 1,797 digits (64 features in [0, 1]),
repeated to ``--rows`` rows when more are asked for (26,955 = 15 copies).

``--profile`` then runs one more epoch of each under :mod:`torch.profiler`
and prints, side by side, the number of aten operator calls per training
step (every call, nested ones included: ``aten::linear`` and the
``aten::addmm`` inside it count as two), the operators whose counts differ,
and the self CPU milliseconds of the costliest operators. skvae's epoch is a
``partial_fit`` call: its per-epoch work (the finiteness check of the
weights, the check of the final model on 32 rows, the one host read) is
counted too, spread over the epoch's steps.

Examples
--------
    python benchmarks/bench_step_overhead.py
    python benchmarks/bench_step_overhead.py --epochs 30 --features 784 --hidden 512,256
    python benchmarks/bench_step_overhead.py --data fashion-mnist --rows 20000 \
        --hidden 512,256 --latent 16 --threads 2 --epochs 10 --first lean
    python benchmarks/bench_step_overhead.py --data digits --rows 26955 --batch-size 32 \
        --epochs 21 --profile
"""

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fit  # noqa: E402  (the same lean loop and skvae set-up)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=25600, help="rows (digits: repeated up to this many)"
    )
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", default="32", help="hidden sizes, comma-separated")
    parser.add_argument("--latent", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--data",
        choices=("random", "fashion-mnist", "digits"),
        default="random",
        help="random binary rows (default), the first --rows Fashion-MNIST images, or "
        "scikit-learn's digits / 16 repeated to --rows rows",
    )
    parser.add_argument(
        "--first",
        choices=("skvae", "lean"),
        default="skvae",
        help="what is timed against the lean loop: skvae, or a second lean loop (noise floor)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile one more epoch of each with torch.profiler and print the aten "
        "operator calls per step and the self CPU milliseconds side by side",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    bench_fit.HIDDEN = tuple(int(h) for h in args.hidden.split(","))
    bench_fit.N_COMPONENTS = args.latent
    bench_fit.BATCH_SIZE = args.batch_size
    if args.data == "fashion-mnist":
        X = np.ascontiguousarray(bench_fit.load_fashion_mnist()[0][: args.rows])
    elif args.data == "digits":
        X = load_digits_rows(args.rows)
    else:
        X = (np.random.RandomState(0).rand(args.rows, args.features) > 0.5).astype(np.float32)
    args.rows, args.features = X.shape
    steps = -(-args.rows // args.batch_size)
    device = torch.device("cpu")
    if args.first == "skvae":
        first = bench_fit.SkvaeEpochs(X, device, 0)
    else:
        first = bench_fit.LeanLoop(X, device, 1)
    lean = bench_fit.LeanLoop(X, device, 0)
    a, b = [], []
    for epoch in range(args.epochs):  # alternate which of the two goes first
        if epoch % 2:
            b.append(lean.epoch()[0])
            a.append(first.epoch()[0])
        else:
            a.append(first.epoch()[0])
            b.append(lean.epoch()[0])
    a, b = a[2:], b[2:]
    us = 1e6 / steps
    print(
        f"{args.rows} x {args.features}, hidden {bench_fit.HIDDEN}, latent {args.latent}, "
        f"batch {args.batch_size} ({steps} steps/epoch), {args.threads} thread(s), "
        f"{len(a)} epochs each, torch {torch.__version__}"
    )
    name = "skvae" if args.first == "skvae" else "lean#2"
    print(f"{name:<6} us/step: min {min(a) * us:8.1f}  median {statistics.median(a) * us:8.1f}")
    print(f"lean   us/step: min {min(b) * us:8.1f}  median {statistics.median(b) * us:8.1f}")
    print(
        f"overhead us/step: {(min(a) - min(b)) * us:+.1f} (min), "
        f"{(statistics.median(a) - statistics.median(b)) * us:+.1f} (median); "
        f"paired ratio median {statistics.median(x / y for x, y in zip(a, b)):.3f}x"
    )
    if args.profile:
        profile_side_by_side({name: first, "lean": lean}, steps)
    return 0


def load_digits_rows(rows):
    """scikit-learn's digits / 16 as float32, repeated (whole copies first) to ``rows`` rows."""
    from sklearn.datasets import load_digits

    digits = (load_digits().data / 16.0).astype(np.float32)
    copies = -(-rows // digits.shape[0])
    return np.ascontiguousarray(np.tile(digits, (copies, 1))[:rows])


def profile_epochs(loops):
    """Profile one epoch of each loop: ``{name: {operator: (calls, self CPU ms)}}``."""
    from torch.profiler import ProfilerActivity, profile

    tables = {}
    for name, loop in loops.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            loop.epoch()
        tables[name] = {
            e.key: (e.count, e.self_cpu_time_total / 1e3)
            for e in prof.key_averages()
            if e.key.startswith("aten::")
        }
    return tables


def profile_side_by_side(loops, steps, rows=25):
    """Print aten calls per step and self CPU ms per operator, one epoch of each loop."""
    tables = profile_epochs(loops)
    names = list(tables)
    header = f"{'operator':<44}" + "".join(f"{n:>10}" for n in names)
    totals = {n: sum(calls for calls, _ in tables[n].values()) / steps for n in names}
    print(f"\naten operator calls per step (one epoch of {steps} steps each, nested calls "
          "included):")
    print(f"{'all aten operators':<44}" + "".join(f"{totals[n]:10.1f}" for n in names))
    keys = sorted(set().union(*tables.values()))
    differ = [k for k in keys if len({tables[n].get(k, (0, 0))[0] for n in names}) > 1]
    print("\noperators whose calls per step differ:")
    print(header)
    for key in sorted(differ, key=lambda k: -max(tables[n].get(k, (0, 0))[0] for n in names)):
        print(f"{key[:44]:<44}" + "".join(
            f"{tables[n].get(key, (0, 0))[0] / steps:10.2f}" for n in names
        ))
    costly = sorted(keys, key=lambda k: -max(tables[n].get(k, (0, 0))[1] for n in names))
    print("\nself CPU ms per operator, one epoch each:")
    print(header)
    for key in costly[:rows]:
        print(f"{key[:44]:<44}" + "".join(
            f"{tables[n].get(key, (0, 0))[1]:10.1f}" for n in names
        ))


if __name__ == "__main__":
    sys.exit(main())
