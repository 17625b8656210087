#!/usr/bin/env python
"""Benchmark start-up: ``import skvae`` and the ``skvae`` command's quick answers.

Each case runs in a fresh ``python`` subprocess (the interpreter running this
script), and the cases are interleaved: round *i* runs every case once, in
order, so that a busy moment of the machine touches all of them alike. The
table gives the median wall time of each case over ``--repeat`` rounds, its
range, and its ratio to ``import torch``:

``import torch``
    ``python -c "import torch"``: the floor a package built on torch pays
    as soon as it touches torch.
``import skvae``
    ``python -c "import skvae"``.
``skvae --help``
    ``python -m skvae.cli --help`` (the console script runs the same
    ``main``).
``skvae fit --help``
    ``python -m skvae.cli fit --help``.
``argparse error``
    ``python -m skvae.cli fit --epochs -1``: a usage error, exit status 2.
``python -c pass``
    the interpreter alone, for reference.

A first, untimed round warms the file cache. With ``--importtime`` (on by
default) it also runs ``python -X importtime -c "import skvae"`` once and
prints the modules with the largest cumulative import time.

Usage::

    python benchmarks/bench_startup.py [--repeat 11] [--top 15] [--no-importtime]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = [
    ("python -c pass", ["-c", "pass"], 0),
    ("import torch", ["-c", "import torch"], 0),
    ("import skvae", ["-c", "import skvae"], 0),
    ("skvae --help", ["-m", "skvae.cli", "--help"], 0),
    ("skvae fit --help", ["-m", "skvae.cli", "fit", "--help"], 0),
    ("argparse error", ["-m", "skvae.cli", "fit", "--epochs", "-1"], 2),
]


def _run(args, expected):
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != expected:
        raise SystemExit(
            f"{' '.join(args)!r} exited {proc.returncode}, expected {expected}"
        )
    return elapsed


def importtime(top):
    """The ``top`` modules by cumulative import time of ``import skvae``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import skvae"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        # "import time: <self us> | <cumulative us> | <indented module name>"
        self_us, cumulative_us, name = line.split(":", 1)[1].split("|", 2)
        rows.append((int(cumulative_us), int(self_us), name.strip()))
    rows.sort(reverse=True)
    return rows[:top]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=11, help="rounds (default 11)")
    parser.add_argument("--top", type=int, default=15, help="importtime rows (default 15)")
    parser.add_argument(
        "--no-importtime", dest="importtime", action="store_false",
        help="skip the -X importtime listing",
    )
    options = parser.parse_args(argv)

    for _, args, expected in CASES:  # warm the file cache
        _run(args, expected)
    times = {name: [] for name, _, _ in CASES}
    for _ in range(options.repeat):
        for name, args, expected in CASES:
            times[name].append(_run(args, expected))

    torch_median = statistics.median(times["import torch"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{options.repeat} interleaved rounds, wall time of a fresh process")
    print()
    print(f"| {'case':<18} | {'median s':>8} | {'min-max s':>11} | {'/ import torch':>14} |")
    print(f"|{'-' * 20}|{'-' * 9}:|{'-' * 12}:|{'-' * 15}:|")
    for name, _, _ in CASES:
        median = statistics.median(times[name])
        span = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
        print(f"| {name:<18} | {median:>8.3f} | {span:>11} | {median / torch_median:>14.2f} |")

    if options.importtime:
        print()
        print(f'python -X importtime -c "import skvae": top {options.top} by cumulative time')
        print()
        print(f"| {'module':<40} | {'cumulative ms':>13} | {'self ms':>8} |")
        print(f"|{'-' * 42}|{'-' * 14}:|{'-' * 9}:|")
        for cumulative, self_us, name in importtime(options.top):
            print(f"| {name:<40} | {cumulative / 1000:>13.1f} | {self_us / 1000:>8.1f} |")


if __name__ == "__main__":
    main()
