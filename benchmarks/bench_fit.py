#!/usr/bin/env python
"""Benchmark ``VAETransformer.fit`` against hand-written PyTorch loops and Pythae.

One process, one data set, one model trained four ways:

``skvae``
    ``VAETransformer(architecture=MLP(hidden_sizes=(512, 256)),
    likelihood="bernoulli", n_components=16, ...).fit(X)``, with
    ``--compile`` / ``--precision`` passed on.
``lean``
    A lean hand-written loop: the whole training set as one float32 tensor on
    the device, batches taken with a ``torch.randperm`` index, the loss summed
    into a device tensor that is read once per epoch (eager, float32).
``dataloader``
    The pytorch/examples VAE style: ``DataLoader(TensorDataset(X),
    shuffle=True, batch_size=128)`` and ``loss.item()`` at every step.
``pythae``
    Pythae's ``VAE`` and ``BaseTrainer`` with the same encoder and decoder
    networks (``_pythae_way.py``); only when pythae is installed
    (``pip install -e ".[benchmark]"``).

All use the same layers (784-512-256 -> 2*16 encoder, 16-256-512-784
decoder, ReLU), built from the same seed, the same objective (Bernoulli
negative log-likelihood summed over features + analytic KL to N(0, I),
averaged over the batch), Adam with lr 1e-3 and batches of ``--batch-size``
(default 128).

For each way it reports the median epoch time over the epochs after the first,
the wall time of the whole training call divided by the number of epochs, the
ratio of the median epoch time to the lean loop's, and the held-out ELBO (mean
per-sample ELBO in nats on the test split after the same number of epochs),
so that speed is never bought with quality. Each way runs ``--repeats`` times,
in rotating order, and the table shows medians over repeats.

Examples
--------
    python benchmarks/bench_fit.py --data digits --epochs 3 --repeats 1
    python benchmarks/bench_fit.py --data digits --hidden 32 --latent 4 --threads 1 \
        --ways skvae,lean --lockstep --epochs 40 --repeats 3
    python benchmarks/bench_fit.py --epochs 3 --repeats 5 --json results.json
    python benchmarks/bench_fit.py --device cuda --batch-size 1024 \
        --compile reduce-overhead --precision bf16-mixed --epochs 5 --repeats 3
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn
from torch.nn import functional as F

from _machine import OtherLoad, machine_info

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {
    "train": "train-images-idx3-ubyte.gz",
    "test": "t10k-images-idx3-ubyte.gz",
}

N_COMPONENTS = 16
HIDDEN = (512, 256)
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
#: Options of the lean loop's Adam: {} is torch's default implementation (on the
#: CPU a Python loop over the update's operations, per parameter); {"fused": True}
#: is the one skvae takes where torch has it (bench_step_overhead.py --lean-adam).
LEAN_ADAM = {}
# Held-out ELBO: 16 draws of eps, as 8 antithetic pairs from a fixed seed.
ELBO_DRAWS = 16
ELBO_SEED = 0
ELBO_ROWS = 256  # rows per forward pass (times ELBO_DRAWS decoder inputs)

WAYS = ("skvae", "lean", "dataloader", "pythae")


# --------------------------------------------------------------------- data
def read_idx(path):
    """Read an IDX file (optionally gzipped) into a numpy array.

    The format: two zero bytes, a type code (0x08 = unsigned byte), the number
    of dimensions, then each dimension as a big-endian uint32, then the data
    in C order.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4]!r})")
    type_code, ndim = raw[2], raw[3]
    if type_code != 0x08:
        raise ValueError(
            f"{path}: IDX type 0x{type_code:02x}; only unsigned bytes (0x08) are supported"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: {len(raw) - offset} data bytes, expected {expected} for shape {dims}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_fashion_mnist(directory=FASHION_DIR):
    missing = [name for name in FASHION_FILES.values() if not (directory / name).is_file()]
    if missing:
        print(
            f"Fashion-MNIST not found: {', '.join(str(directory / m) for m in missing)} missing.\n"
            "Install Debian's package (as root):\n"
            "    apt-get update && apt-get install -y dataset-fashion-mnist\n"
            "or run a quick benchmark on scikit-learn's digits with --data digits.",
            file=sys.stderr,
        )
        sys.exit(2)

    def images(name):
        arr = read_idx(directory / FASHION_FILES[name])
        return (arr.reshape(arr.shape[0], -1).astype(np.float32) / np.float32(255.0))

    return images("train"), images("test")


def load_digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X = (load_digits().data / 16.0).astype(np.float32)
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    return np.ascontiguousarray(X_train), np.ascontiguousarray(X_test)


# ------------------------------------------------------------------ helpers
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mlp(n_in, sizes, n_out):
    layers = []
    for size in sizes:
        layers += [nn.Linear(n_in, size), nn.ReLU()]
        n_in = size
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def build_nets(n_features, seed, device):
    torch.manual_seed(seed)
    encoder = mlp(n_features, HIDDEN, 2 * N_COMPONENTS)
    decoder = mlp(N_COMPONENTS, HIDDEN[::-1], n_features)
    return encoder.to(device), decoder.to(device)


def held_out_elbo(encoder, decoder, X, device):
    """Mean per-sample ELBO (nats) of X: E_eps[log p(x|z)] - KL, 16 draws.

    Independent of skvae: plain torch on an encoder giving (mean, log_var)
    and a decoder giving Bernoulli logits. The 16 draws of eps are 8
    antithetic pairs from a generator seeded with ELBO_SEED, the same for
    every row.
    """
    generator = torch.Generator().manual_seed(ELBO_SEED)
    half = torch.randn((ELBO_DRAWS // 2, N_COMPONENTS), generator=generator)
    eps = torch.cat([half, -half]).to(device)  # (k, d)
    k = eps.shape[0]
    total = 0.0
    encoder.eval()
    decoder.eval()
    with torch.inference_mode():
        for start in range(0, X.shape[0], ELBO_ROWS):
            xb = torch.from_numpy(np.ascontiguousarray(X[start : start + ELBO_ROWS])).to(device)
            rows = xb.shape[0]
            mean, log_var = encoder(xb).chunk(2, dim=-1)
            z = mean[:, None, :] + torch.exp(0.5 * log_var)[:, None, :] * eps[None, :, :]
            logits = decoder(z.reshape(rows * k, N_COMPONENTS)).view(rows, k, -1)
            log_px = -F.binary_cross_entropy_with_logits(
                logits, xb[:, None, :].expand_as(logits), reduction="none"
            ).sum(-1)  # (rows, k)
            kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)  # (rows,)
            total += (log_px.mean(dim=1) - kl).sum().item()
    return total / X.shape[0]


# ------------------------------------------------------------ the 3 ways
# skvae's own speed options (--compile, --precision); the other ways stay eager float32.
SKVAE_OPTIONS = {}


def make_skvae(epochs, device, seed):
    from skvae import VAETransformer
    from skvae_plugins.mlp import MLP

    return VAETransformer(
        **SKVAE_OPTIONS,
        n_components=N_COMPONENTS,
        architecture=MLP(hidden_sizes=HIDDEN),
        likelihood="bernoulli",
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        optimizer="adam",
        max_iter=epochs,
        # Patience longer than the run: the number of epochs is always `epochs`.
        n_iter_no_change=epochs + 1,
        device=str(device),
        random_state=seed,
    )


def run_skvae(X_train, X_test, epochs, device, seed):
    vae = make_skvae(epochs, device, seed)
    sync(device)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # a few epochs on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X_train)
    sync(device)
    wall = time.perf_counter() - t0
    if vae.n_iter_ != epochs:
        raise RuntimeError(f"skvae ran {vae.n_iter_} epochs, expected {epochs}")
    elbo = vae.score(X_test)
    # Cross-check: the benchmark's own ELBO formula on skvae's networks.
    net = vae.module_.net
    elbo_check = held_out_elbo(net.encoder, net.decoder, X_test, device)
    return {
        "epoch_seconds": [h["seconds"] for h in vae.history_],
        "wall_seconds": wall,
        "train_loss": [h["loss"] for h in vae.history_],
        "elbo": elbo,
        "elbo_bench_formula": elbo_check,
    }


class LeanLoop:
    """The lean hand-written loop, one epoch per :meth:`epoch` call."""

    def __init__(self, X_train, device, seed):
        self.device = device
        self.n, n_features = X_train.shape
        self.encoder, self.decoder = build_nets(n_features, seed, device)
        self.X = torch.from_numpy(np.ascontiguousarray(X_train, dtype=np.float32)).to(device)
        self.optimizer = torch.optim.Adam(
            list(self.encoder.parameters()) + list(self.decoder.parameters()),
            lr=LEARNING_RATE,
            **LEAN_ADAM,
        )
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def epoch(self):
        """Train one epoch; return (seconds, mean training loss)."""
        device, generator, optimizer = self.device, self.generator, self.optimizer
        encoder, decoder, X, n = self.encoder, self.decoder, self.X, self.n
        sync(device)
        t0 = time.perf_counter()
        encoder.train()
        decoder.train()
        perm = torch.randperm(n, generator=generator, device=device)
        total = torch.zeros((), device=device)
        for start in range(0, n, BATCH_SIZE):
            xb = X[perm[start : start + BATCH_SIZE]]
            mean, log_var = encoder(xb).chunk(2, dim=-1)
            eps = torch.randn(mean.shape, generator=generator, device=device)
            z = mean + torch.exp(0.5 * log_var) * eps
            logits = decoder(z)
            rec = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
            kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
            loss = (rec + kl).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * xb.shape[0]
        loss = total.item() / n  # the epoch's one host sync
        sync(device)
        return time.perf_counter() - t0, loss

    def elbo(self, X_test):
        return held_out_elbo(self.encoder, self.decoder, X_test, self.device)


def run_loop(loop_class, X_train, X_test, epochs, device, seed):
    """Train a hand-written loop for ``epochs`` epochs; the result dict of a way."""
    sync(device)
    t_start = time.perf_counter()
    loop = loop_class(X_train, device, seed)
    epoch_seconds, train_loss = [], []
    for _ in range(epochs):
        seconds, loss = loop.epoch()
        epoch_seconds.append(seconds)
        train_loss.append(loss)
    wall = time.perf_counter() - t_start
    return {
        "epoch_seconds": epoch_seconds,
        "wall_seconds": wall,
        "train_loss": train_loss,
        "elbo": loop.elbo(X_test),
    }


def run_lean(X_train, X_test, epochs, device, seed):
    return run_loop(LeanLoop, X_train, X_test, epochs, device, seed)


class ExampleVAE(nn.Module):
    """The pytorch/examples ``vae/main.py`` model shape, with our layer sizes."""

    def __init__(self, n_features):
        super().__init__()
        self.encoder = mlp(n_features, HIDDEN, 2 * N_COMPONENTS)
        self.decoder = mlp(N_COMPONENTS, HIDDEN[::-1], n_features)

    def encode(self, x):
        return self.encoder(x).chunk(2, dim=-1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        return self.decoder(z)  # logits

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def example_loss(logits, x, mu, logvar):
    # Per-sample BCE summed over features + analytic KL, averaged over the batch.
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kld) / x.shape[0]


class DataLoaderLoop:
    """The pytorch/examples loop (DataLoader, ``.item()`` per step), one epoch per call."""

    def __init__(self, X_train, device, seed):
        from torch.utils.data import DataLoader, TensorDataset

        self.device = device
        torch.manual_seed(seed)
        self.model = ExampleVAE(X_train.shape[1]).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        self.dataset = TensorDataset(
            torch.from_numpy(np.ascontiguousarray(X_train, dtype=np.float32))
        )
        self.loader = DataLoader(
            self.dataset,
            batch_size=BATCH_SIZE,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
            pin_memory=device.type == "cuda",
        )

    def epoch(self):
        """Train one epoch; return (seconds, mean training loss)."""
        model, optimizer, device = self.model, self.optimizer, self.device
        sync(device)
        t0 = time.perf_counter()
        model.train()
        running = 0.0
        for (data,) in self.loader:
            data = data.to(device)
            optimizer.zero_grad()
            logits, mu, logvar = model(data)
            loss = example_loss(logits, data, mu, logvar)
            loss.backward()
            running += loss.item() * data.shape[0]
            optimizer.step()
        sync(device)
        return time.perf_counter() - t0, running / len(self.dataset)

    def elbo(self, X_test):
        return held_out_elbo(self.model.encoder, self.model.decoder, X_test, self.device)


def run_dataloader(X_train, X_test, epochs, device, seed):
    return run_loop(DataLoaderLoop, X_train, X_test, epochs, device, seed)


class SkvaeEpochs:
    """skvae one epoch per call, through ``partial_fit`` (for ``--lockstep``).

    ``partial_fit`` trains one epoch with the same engine step as ``fit``; the
    epoch's seconds come from ``history_`` (the epoch alone, not the input
    validation of the call).
    """

    def __init__(self, X_train, device, seed):
        self.vae = make_skvae(1, device, seed)
        self.X = X_train

    def epoch(self):
        self.vae.partial_fit(self.X)
        record = self.vae.history_[-1]
        return record["seconds"], record["loss"]

    def elbo(self, X_test):
        return self.vae.score(X_test)


def run_pythae(X_train, X_test, epochs, device, seed):
    """Pythae's VAE and BaseTrainer on the same networks (see _pythae_way.py)."""
    from _pythae_way import run_pythae as pythae_way

    return pythae_way(
        X_train,
        X_test,
        epochs,
        device,
        seed,
        build_nets,
        held_out_elbo,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
    )


def pythae_available():
    """Whether pythae (the optional fourth way) can be imported."""
    try:
        import _pythae_way  # noqa: F401
    except ImportError:
        return False
    return True


#: One epoch per call, for --lockstep.
EPOCH_LOOPS = {"skvae": SkvaeEpochs, "lean": LeanLoop, "dataloader": DataLoaderLoop}

RUNNERS = {
    "skvae": run_skvae,
    "lean": run_lean,
    "dataloader": run_dataloader,
    "pythae": run_pythae,
}


# -------------------------------------------------------------------- main
def run_lockstep(ways, X_train, X_test, epochs, device, seed, rep):
    """One repeat in lockstep: an epoch of each way in turn (rotating); result dicts.

    The ways with an epoch loop (skvae through ``partial_fit``, lean,
    dataloader) train side by side; the others (pythae) run whole after them.
    """
    stepped = [w for w in ways if w in EPOCH_LOOPS]
    with OtherLoad() as load:
        loops, wall = {}, {}
        for way in stepped:
            sync(device)
            t0 = time.perf_counter()
            loops[way] = EPOCH_LOOPS[way](X_train, device, seed)
            wall[way] = time.perf_counter() - t0  # set-up; the epochs are added below
        seconds = {w: [] for w in stepped}
        losses = {w: [] for w in stepped}
        for epoch in range(epochs):
            shift = (rep + epoch) % len(stepped)
            for way in stepped[shift:] + stepped[:shift]:
                s, loss = loops[way].epoch()
                seconds[way].append(s)
                losses[way].append(loss)
    results = []
    for way in stepped:
        results.append(
            {
                "way": way,
                "lockstep": True,
                "epoch_seconds": seconds[way],
                "wall_seconds": wall[way] + sum(seconds[way]),
                "train_loss": losses[way],
                "elbo": loops[way].elbo(X_test),
                "other_load_cores": load.cores,
            }
        )
    for way in ways:
        if way not in EPOCH_LOOPS:
            with OtherLoad() as load:
                result = RUNNERS[way](X_train, X_test, epochs, device, seed)
            result.update(way=way, other_load_cores=load.cores)
            results.append(result)
    return results


def report_run(result):
    """Print one run's line."""
    extra = ""
    if "elbo_bench_formula" in result:
        extra = f" (bench formula {result['elbo_bench_formula']:.3f})"
    cores = result["other_load_cores"]
    print(
        f"  repeat {result['repeat']} {result['way']:<10} epochs "
        + " ".join(f"{s:.3f}" for s in result["epoch_seconds"])
        + f" s  wall/epoch {result['wall_per_epoch']:.3f} s"
        + f"  loss {result['train_loss'][-1]:.3f}  ELBO {result['elbo']:.3f}{extra}"
        + ("" if cores is None else f"  other load {cores:.2f} cores")
        + ("  (!)" if cores is not None and cores > 0.1 else ""),
        flush=True,
    )


def steady_epoch_seconds(seconds):
    """Median epoch time excluding the first (warm-up) epoch."""
    steady = seconds[1:] if len(seconds) > 1 else seconds
    return statistics.median(steady)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("fashion-mnist", "digits"), default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="torch device (default cpu; e.g. cuda)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: leave)"
    )
    parser.add_argument(
        "--n-train", type=int, default=None, help="random subsample of the training set"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of repeat 0 (default 0); repeat r seeds every way with seed + r",
    )
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help=f"minibatch size (default {BATCH_SIZE})"
    )
    parser.add_argument(
        "--hidden",
        default=",".join(map(str, HIDDEN)),
        help="hidden sizes of the encoder, comma-separated; the decoder mirrors them "
        f"(default {','.join(map(str, HIDDEN))})",
    )
    parser.add_argument(
        "--latent",
        type=int,
        default=N_COMPONENTS,
        help=f"latent dimensions (default {N_COMPONENTS})",
    )
    parser.add_argument(
        "--compile",
        default=None,
        choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        help="skvae only: VAETransformer(compile=...) (the compiled step; the warm-up "
        "run pays the compilation)",
    )
    parser.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "bf16-mixed"),
        help="skvae only: VAETransformer(precision=...)",
    )
    parser.add_argument(
        "--ways",
        default=None,
        help=f"comma-separated subset of {','.join(WAYS)} (default: all; pythae only when "
        "it is installed: pip install -e '.[benchmark]')",
    )
    parser.add_argument(
        "--lockstep",
        action="store_true",
        help="train skvae (through partial_fit, one epoch per call), lean and dataloader "
        "side by side, one epoch of each in turn, so that each epoch's ratio to the lean "
        "loop compares epochs run next to each other in time (pythae, whose trainer "
        "runs all its epochs at once, runs whole after them)",
    )
    parser.add_argument("--json", metavar="PATH", default=None, help="also write results as JSON")
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed 1-epoch run of each way on a small subset that pays the "
        "process's one-time costs (lazy imports, kernel and allocator set-up) first",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        parser.error("--epochs and --repeats must be >= 1")
    if args.n_train is not None and args.n_train < 1:
        parser.error("--n-train must be >= 1")
    if args.batch_size < 2:
        parser.error("--batch-size must be >= 2")
    try:
        args.hidden = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        parser.error(
            f"--hidden must be comma-separated integers such as 32 or 512,256; got {args.hidden!r}"
        )
    if any(h < 1 for h in args.hidden) or args.latent < 1:
        parser.error("--hidden sizes and --latent must be >= 1")
    if args.ways is None:
        ways = WAYS if pythae_available() else tuple(w for w in WAYS if w != "pythae")
    else:
        ways = tuple(w.strip() for w in args.ways.split(",") if w.strip())
    unknown = sorted(set(ways) - set(WAYS))
    if unknown or "lean" not in ways:
        parser.error(
            f"--ways: unknown {unknown}" if unknown else "--ways must include lean (the reference)"
        )
    if "pythae" in ways and not pythae_available():
        parser.error("--ways pythae: pythae is not installed (pip install -e '.[benchmark]')")
    args.ways = ways
    return args


def main(argv=None):
    args = parse_args(argv)
    global BATCH_SIZE, HIDDEN, N_COMPONENTS
    BATCH_SIZE, HIDDEN, N_COMPONENTS = args.batch_size, args.hidden, args.latent
    if args.compile is not None:
        SKVAE_OPTIONS["compile"] = args.compile
    if args.precision != "float32":
        SKVAE_OPTIONS["precision"] = args.precision
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda given but CUDA is not available", file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    if args.data == "fashion-mnist":
        X_train, X_test = load_fashion_mnist()
    else:
        X_train, X_test = load_digits_split()
    if args.n_train is not None and args.n_train < X_train.shape[0]:
        rows = np.random.RandomState(args.seed).permutation(X_train.shape[0])[: args.n_train]
        X_train = np.ascontiguousarray(X_train[np.sort(rows)])

    machine = machine_info(device)
    ways = args.ways
    print(
        f"data={args.data} train={X_train.shape} test={X_test.shape} epochs={args.epochs} "
        f"repeats={args.repeats} device={device} torch={torch.__version__} "
        f"threads={torch.get_num_threads()} cpus={os.cpu_count()} "
        f"skvae={machine['skvae_path']} batch={BATCH_SIZE} hidden={HIDDEN} "
        f"latent={N_COMPONENTS} ways={','.join(ways)} "
        f"skvae options={SKVAE_OPTIONS or 'none'}",
        flush=True,
    )

    if not args.no_warmup:
        # The first torch.optim optimizer of a process imports torch._dynamo
        # (seconds), and the first steps set up kernels and the allocator:
        # pay that once, untimed, so it does not fall on whichever way runs first.
        small_train = X_train[: min(len(X_train), 4 * BATCH_SIZE)]
        small_test = X_test[: min(len(X_test), ELBO_ROWS)]
        for way in ways:
            RUNNERS[way](small_train, small_test, 1, device, args.seed)

    runs = []
    for rep in range(args.repeats):
        seed = args.seed + rep
        if args.lockstep:
            results = run_lockstep(ways, X_train, X_test, args.epochs, device, seed, rep)
        else:
            results = []
            order = ways[rep % len(ways) :] + ways[: rep % len(ways)]  # interleaved, rotating
            for way in order:
                with OtherLoad() as load:
                    result = RUNNERS[way](X_train, X_test, args.epochs, device, seed)
                result.update(way=way, other_load_cores=load.cores)
                results.append(result)
        for result in results:
            result.update(repeat=rep, seed=seed)
            result["steady_epoch_seconds"] = steady_epoch_seconds(result["epoch_seconds"])
            result["wall_per_epoch"] = result["wall_seconds"] / args.epochs
            runs.append(result)
            report_run(result)

    summary = {}
    for way in ways:
        mine = [r for r in runs if r["way"] == way]
        steady = [r["steady_epoch_seconds"] for r in mine]
        summary[way] = {
            "epoch_seconds": statistics.median(steady),
            "epoch_seconds_min": min(steady),
            "epoch_seconds_max": max(steady),
            "wall_per_epoch": statistics.median(r["wall_per_epoch"] for r in mine),
            "train_loss": statistics.median(r["train_loss"][-1] for r in mine),
            "elbo": statistics.median(r["elbo"] for r in mine),
            "elbo_min": min(r["elbo"] for r in mine),
            "elbo_max": max(r["elbo"] for r in mine),
        }
    loads = [r["other_load_cores"] for r in runs if r["other_load_cores"] is not None]
    max_load = max(loads) if loads else None
    lean = summary["lean"]["epoch_seconds"]
    lean_runs = {r["repeat"]: r for r in runs if r["way"] == "lean"}
    for way in ways:
        summary[way]["ratio_to_lean"] = summary[way]["epoch_seconds"] / lean
        # Paired: each repeat against the lean run of the same repeat, which
        # ran next to it; less sensitive to the machine's slow drifts. In
        # lockstep, each epoch against the lean epoch of the same index.
        ratios = []
        for r in runs:
            if r["way"] != way:
                continue
            reference = lean_runs[r["repeat"]]
            if args.lockstep and r.get("lockstep"):
                ratios += [
                    a / b
                    for a, b in list(zip(r["epoch_seconds"], reference["epoch_seconds"]))[1:]
                ] or [r["epoch_seconds"][0] / reference["epoch_seconds"][0]]
            else:
                ratios.append(r["steady_epoch_seconds"] / reference["steady_epoch_seconds"])
        summary[way]["paired_ratio_to_lean"] = statistics.median(ratios)

    note = "" if args.epochs > 1 else " (only 1 epoch: the first epoch is included)"
    print()
    print(
        f"Medians over {args.repeats} repeat(s) "
        f"(seeds {args.seed}..{args.seed + args.repeats - 1}); "
        f"epoch s = median over epochs 2..{args.epochs}{note};\n"
        "vs lean = ratio of the median epoch times; paired = "
        + (
            "median over repeats and epochs 2.. of the ratio to the lean epoch run next to "
            "it (lockstep; pythae: per repeat)."
            if args.lockstep
            else "median over repeats of the ratio to the lean run of the same repeat."
        )
    )
    header = (
        f"| {'way':<10} | epoch s | min-max s     | wall/epoch s | vs lean | paired | train loss "
        "| held-out ELBO | ELBO min..max      |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for way in ways:
        s = summary[way]
        print(
            f"| {way:<10} | {s['epoch_seconds']:7.3f} "
            f"| {s['epoch_seconds_min']:5.3f}-{s['epoch_seconds_max']:<7.3f} "
            f"| {s['wall_per_epoch']:12.3f} | {s['ratio_to_lean']:6.3f}x "
            f"| {s['paired_ratio_to_lean']:5.3f}x "
            f"| {s['train_loss']:10.3f} "
            f"| {s['elbo']:13.3f} | {s['elbo_min']:8.2f}..{s['elbo_max']:<8.2f} |"
        )

    if max_load is not None:
        print(f"\nOther processes kept up to {max_load:.2f} cores busy during a run", end="")
        print(
            ": WARNING, the timings are not reliable; rerun on an idle machine."
            if max_load > 0.1
            else " (idle enough)."
        )
    if args.json:
        machine["max_other_load_cores"] = max_load
        payload = {"args": vars(args), "machine": machine, "summary": summary, "runs": runs}
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
