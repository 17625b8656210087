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

``--lean-adam fused`` gives the lean loop the fused Adam that skvae takes
where torch has one (the CPU from torch 2.4): the like-for-like comparison
of everything but the optimizer's implementation. By default the lean loop
keeps torch's default Adam, as a hand-written loop would.

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
weights, the check of the model on a few training rows, the one host read)
is counted too, spread over the epoch's steps.

``--callgrind PREFIX`` counts instructions instead of timing, for a machine
too busy to time on: run the script under valgrind's callgrind with
``--callgrind-out-file=PREFIX.%p --dump-before=os_getppid``. After a
warm-up epoch of each loop, it runs ``--epochs`` epochs of skvae, then of
the lean loop, calling ``os.getppid()`` between them (each call makes
callgrind write the instructions counted since the last one), and prints
the instructions per step of each and their ratio. The counts are the same
from run to run on one machine, whatever else it runs. Valgrind runs the
import of torch for minutes.

Examples
--------
    python benchmarks/bench_step_overhead.py
    python benchmarks/bench_step_overhead.py --epochs 30 --features 784 --hidden 512,256
    python benchmarks/bench_step_overhead.py --data fashion-mnist --rows 20000 \
        --hidden 512,256 --latent 16 --threads 2 --epochs 10 --first lean
    python benchmarks/bench_step_overhead.py --data digits --rows 26955 --batch-size 32 \
        --epochs 21 --profile
    python benchmarks/bench_step_overhead.py --data digits --rows 1797 --batch-size 128 \
        --epochs 20 --fit 15
    python benchmarks/bench_step_overhead.py --data digits --rows 1797 --batch-size 128 \
        --epochs 20 --fit 15 --lean-adam fused
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p --dump-before=os_getppid \
        python benchmarks/bench_step_overhead.py --data digits --rows 1797 --batch-size 32 \
        --epochs 2 --callgrind /tmp/cg
"""

import argparse
import os
import re
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fit  # noqa: E402  (the same lean loop and skvae set-up)


def parse_args(argv=None):
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
        "--lean-adam",
        choices=("default", "fused"),
        default="default",
        help="the lean loop's Adam: torch's default implementation (a Python loop on the "
        "CPU), or fused, as skvae's own where torch has it: the like-for-like comparison "
        "of everything but the optimizer",
    )
    parser.add_argument(
        "--fit",
        type=int,
        metavar="REPEATS",
        default=0,
        help="time whole fits instead of partial_fit epochs: REPEATS times, a fit of "
        "1 + --epochs epochs minus a fit of 1 against --epochs epochs of the lean loop",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile one more epoch of each with torch.profiler and print the aten "
        "operator calls per step and the self CPU milliseconds side by side",
    )
    parser.add_argument(
        "--callgrind",
        metavar="PREFIX",
        default=None,
        help="count instructions under valgrind --tool=callgrind "
        "--callgrind-out-file=PREFIX.%%p --dump-before=os_getppid, instead of timing",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return args


def load_data(args):
    """The training rows, float32, as ``--data`` and ``--rows`` say."""
    if args.data == "fashion-mnist":
        return np.ascontiguousarray(bench_fit.load_fashion_mnist()[0][: args.rows])
    if args.data == "digits":
        return load_digits_rows(args.rows)
    return (np.random.RandomState(0).rand(args.rows, args.features) > 0.5).astype(np.float32)


def load_digits_rows(rows):
    """scikit-learn's digits / 16 as float32, repeated (whole copies first) to ``rows`` rows."""
    from sklearn.datasets import load_digits

    digits = (load_digits().data / 16.0).astype(np.float32)
    copies = -(-rows // digits.shape[0])
    return np.ascontiguousarray(np.tile(digits, (copies, 1))[:rows])


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    bench_fit.HIDDEN = tuple(int(h) for h in args.hidden.split(","))
    bench_fit.N_COMPONENTS = args.latent
    bench_fit.BATCH_SIZE = args.batch_size
    bench_fit.LEAN_ADAM = {"fused": True} if args.lean_adam == "fused" else {}
    X = load_data(args)
    args.rows, args.features = X.shape
    steps = -(-args.rows // args.batch_size)
    print(
        f"{args.rows} x {args.features}, hidden {bench_fit.HIDDEN}, latent {args.latent}, "
        f"batch {args.batch_size} ({steps} steps/epoch), {args.threads} thread(s), "
        f"torch {torch.__version__}, lean loop's Adam: {args.lean_adam}"
    )
    if args.callgrind:
        count_instructions(X, args.epochs, steps, args.callgrind)
        return 0
    device = torch.device("cpu")
    if args.fit:
        time_fits(X, args.epochs, args.fit, steps)
        return 0
    name = "skvae" if args.first == "skvae" else "lean#2"
    if args.first == "skvae":
        first = bench_fit.SkvaeEpochs(X, device, 0)
    else:
        first = bench_fit.LeanLoop(X, device, 1)
    lean = bench_fit.LeanLoop(X, device, 0)
    time_epochs(first, lean, args.epochs, steps, name)
    if args.profile:
        profile_side_by_side({name: first, "lean": lean}, steps)
    return 0


def time_epochs(first, lean, epochs, steps, name):
    """Time ``epochs`` epochs of each loop, alternately; print per-step times and ratios."""
    a, b = [], []
    for epoch in range(epochs):  # alternate which of the two goes first
        if epoch % 2:
            b.append(lean.epoch()[0])
            a.append(first.epoch()[0])
        else:
            a.append(first.epoch()[0])
            b.append(lean.epoch()[0])
    drop = min(2, epochs - 1)  # the first epochs warm up (keep one at least)
    a, b = a[drop:], b[drop:]
    us = 1e6 / steps
    print(f"{len(a)} timed epochs each")
    print(f"{name:<6} us/step: min {min(a) * us:8.1f}  median {statistics.median(a) * us:8.1f}")
    print(f"lean   us/step: min {min(b) * us:8.1f}  median {statistics.median(b) * us:8.1f}")
    print(
        f"overhead us/step: {(min(a) - min(b)) * us:+.1f} (min), "
        f"{(statistics.median(a) - statistics.median(b)) * us:+.1f} (median); "
        f"paired ratio median {statistics.median(x / y for x, y in zip(a, b)):.3f}x"
    )


def time_fits(X, epochs, repeats, steps):
    """Time ``fit`` against the lean loop, every per-epoch cost of ``fit`` included.

    Each repeat times a fit of 1 epoch, a fit of 1 + ``epochs`` epochs (the
    same seed) and ``epochs`` epochs of a fresh lean loop, in an order that
    alternates; skvae's epochs take the difference of its two fits, so that
    the validation of X, the set-up and the final checks cancel.
    """
    import time

    device = torch.device("cpu")

    def fit(n):
        t0 = time.perf_counter()
        bench_fit.make_skvae(n, device, 0).fit(X)
        return time.perf_counter() - t0

    def lean_epochs():
        lean = bench_fit.LeanLoop(X, device, 0)
        return sum(lean.epoch()[0] for _ in range(epochs))

    skvae, lean = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few epochs on purpose
        fit(1), lean_epochs()  # warm-up
        for repeat in range(repeats):
            if repeat % 2:
                lean.append(lean_epochs())
                skvae.append(fit(1 + epochs) - fit(1))
            else:
                skvae.append(fit(1 + epochs) - fit(1))
                lean.append(lean_epochs())
    us = 1e6 / (epochs * steps)
    print(f"{repeats} repeats of {epochs} epochs each (fit of {1 + epochs} - fit of 1)")
    print(f"skvae  us/step: min {min(skvae) * us:8.1f}  median {statistics.median(skvae) * us:8.1f}")
    print(f"lean   us/step: min {min(lean) * us:8.1f}  median {statistics.median(lean) * us:8.1f}")
    ratios = [a / b for a, b in zip(skvae, lean)]
    print(
        f"overhead us/step: {(statistics.median(skvae) - statistics.median(lean)) * us:+.1f} "
        f"(median); paired ratio median {statistics.median(ratios):.3f}x"
    )


def count_instructions(X, epochs, steps, prefix):
    """Count instructions between callgrind dumps; print instructions per step of each way.

    skvae's epochs are counted inside ``fit``, as the difference between a
    fit of 1 + ``epochs`` epochs and a fit of 1 epoch (the same seed: the
    validation of X, the set-up, the first epoch and the final checks
    cancel), so that every per-epoch cost of ``fit`` is counted and nothing
    of a ``partial_fit`` call's own set-up; the lean loop's are counted
    directly, after a warm-up epoch. Each ``os.getppid()`` call makes
    callgrind (``--dump-before=os_getppid``) write the counts since the
    previous dump to ``PREFIX.<pid>.<n>``.
    """
    device = torch.device("cpu")
    lean = bench_fit.LeanLoop(X, device, 0)
    lean.epoch()  # warm-up: first-call set-up is not per-step work
    regions = [
        lambda: None,  # the first dump ends the set-up
        lambda: bench_fit.make_skvae(1, device, 0).fit(X),
        lambda: bench_fit.make_skvae(1 + epochs, device, 0).fit(X),
        lambda: [lean.epoch() for _ in range(epochs)],
    ]
    dumps = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few epochs on purpose
        bench_fit.make_skvae(1, device, 0).fit(X[:256])  # warm-up
        for region in regions:
            region()
            os.getppid()
            dumps.append(_dump_instructions(prefix, len(dumps) + 1))
    if None in dumps:
        print(
            f"no callgrind dump at {prefix}.{os.getpid()}.N: run the script under valgrind "
            f"--tool=callgrind --callgrind-out-file={prefix}.%p --dump-before=os_getppid",
            file=sys.stderr,
        )
        sys.exit(2)
    n = epochs * steps
    skvae, lean_ = (dumps[2] - dumps[1]) / n, dumps[3] / n
    print(f"{epochs} epoch(s) of each, {n} steps")
    print(f"skvae  instructions/step: {skvae:12,.0f}  (fit of {1 + epochs} epochs - fit of 1)")
    print(f"lean   instructions/step: {lean_:12,.0f}")
    print(f"overhead: {skvae - lean_:+,.0f} instructions/step; ratio {skvae / lean_:.4f}x")


def _dump_instructions(prefix, number):
    """The instruction count in callgrind dump ``number`` of this process, or None."""
    path = Path(f"{prefix}.{os.getpid()}.{number}")
    if not path.is_file():
        return None
    match = re.search(r"^summary:\s*(\d+)", path.read_text(errors="replace"), re.MULTILINE)
    return int(match.group(1)) if match else None


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

    def line(label, values, fmt):
        print(f"{label[:44]:<44}" + "".join(format(v, fmt) for v in values))

    header = f"{'operator':<44}" + "".join(f"{n:>10}" for n in names)
    calls = {n: {k: c for k, (c, _) in tables[n].items()} for n in names}
    print(
        f"\naten operator calls per step (one epoch of {steps} steps each, nested calls "
        "included):"
    )
    line("all aten operators", [sum(calls[n].values()) / steps for n in names], "10.1f")
    keys = sorted(set().union(*tables.values()))
    differ = [k for k in keys if len({calls[n].get(k, 0) for n in names}) > 1]
    print("\noperators whose calls per step differ:")
    print(header)
    for key in sorted(differ, key=lambda k: -max(calls[n].get(k, 0) for n in names)):
        line(key, [calls[n].get(key, 0) / steps for n in names], "10.2f")
    costly = sorted(keys, key=lambda k: -max(tables[n].get(k, (0, 0))[1] for n in names))
    print("\nself CPU ms per operator, one epoch each:")
    print(header)
    for key in costly[:rows]:
        line(key, [tables[n].get(key, (0, 0))[1] for n in names], "10.1f")


if __name__ == "__main__":
    sys.exit(main())
