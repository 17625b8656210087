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

Examples
--------
    python benchmarks/bench_step_overhead.py
    python benchmarks/bench_step_overhead.py --epochs 30 --features 784 --hidden 512,256
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
    parser.add_argument("--rows", type=int, default=25600)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", default="32", help="hidden sizes, comma-separated")
    parser.add_argument("--latent", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    bench_fit.HIDDEN = tuple(int(h) for h in args.hidden.split(","))
    bench_fit.N_COMPONENTS = args.latent
    bench_fit.BATCH_SIZE = args.batch_size
    X = (np.random.RandomState(0).rand(args.rows, args.features) > 0.5).astype(np.float32)
    steps = -(-args.rows // args.batch_size)
    device = torch.device("cpu")
    skvae = bench_fit.SkvaeEpochs(X, device, 0)
    lean = bench_fit.LeanLoop(X, device, 0)
    a, b = [], []
    for _ in range(args.epochs):
        a.append(skvae.epoch()[0])
        b.append(lean.epoch()[0])
    a, b = a[2:], b[2:]
    us = 1e6 / steps
    print(
        f"{args.rows} x {args.features}, hidden {bench_fit.HIDDEN}, latent {args.latent}, "
        f"batch {args.batch_size} ({steps} steps/epoch), {args.threads} thread(s), "
        f"{len(a)} epochs each, torch {torch.__version__}"
    )
    print(f"skvae  us/step: min {min(a) * us:8.1f}  median {statistics.median(a) * us:8.1f}")
    print(f"lean   us/step: min {min(b) * us:8.1f}  median {statistics.median(b) * us:8.1f}")
    print(
        f"overhead us/step: {(min(a) - min(b)) * us:+.1f} (min), "
        f"{(statistics.median(a) - statistics.median(b)) * us:+.1f} (median); "
        f"paired ratio median {statistics.median(x / y for x, y in zip(a, b)):.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
