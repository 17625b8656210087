"""Seed 003: a sigmoid MLP VAE on grey CIFAR-10 images (TensorFlow post).

Reproduces the post "Variational autoencoder on the CIFAR-10 dataset 1." (Alex
Olar): CIFAR-10 made grey with 0.299 R + 0.587 G + 0.114 B, scaled to [0, 1]
and flattened to 1024 values; the encoder 1024 -> 1024 -> 512 (sigmoid) -> mean
and log-variance of a 15-D latent code, the decoder 15 -> 256 -> 512 -> 1024
with truncated-normal initial weights (the ``cifar_gray_mlp`` preset); summed
Bernoulli cross-entropy + KL; Adam 1e-3, batch 1000, 15 epochs. It prints the
average cost of each epoch next to the post's (708.9 ... 673.8) and draws
originals above reconstructions, as the post does.

CIFAR-10 is a 170 MB download that this script does not fetch unless asked
(``--download``); without it, it says how to get it and exits cleanly.

Run::

    python examples/seed003_cifar_gray.py --download    # fetch CIFAR-10 once, then train
    python examples/seed003_cifar_gray.py               # 15 epochs on 50,000 images
    SKVAE_QUICK=1 python examples/seed003_cifar_gray.py # 2,000 images, 2 epochs

Figures go to ``--out`` (default ``runs/seed003_cifar_gray``).
"""

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skvae import VAETransformer  # noqa: E402
from skvae.datasets import load_cifar10  # noqa: E402
from skvae.plotting import ReconstructionDisplay  # noqa: E402
from _common import QUICK, frame_tiles, save  # noqa: E402


#: The average cost per epoch that the post printed (its Progbar, 15 epochs).
POST_COST = (708.89, 704.72, 694.87, 691.45, 689.13, 683.25, 680.52, 679.09,
             678.59, 677.88, 677.02, 676.12, 675.02, 674.63, 673.84)


def parse_args():
    name = Path(__file__).stem
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / name,
                        help=f"folder for the figures (default runs/{name})")
    parser.add_argument("--epochs", type=int, default=2 if QUICK else 15,
                        help="epochs (default 15, quick 2)")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR-10 (170 MB, SHA-256 checked) when it is missing")
    parser.add_argument("--n-train", type=int, default=2000 if QUICK else None,
                        help="use only the first N training images (default all 50,000, quick 2000)")
    return parser.parse_args()






def main():
    args = parse_args()
    try:
        X_train = load_cifar10("train", grayscale=True, download_if_missing=args.download).data
        X_test = load_cifar10("test", grayscale=True, download_if_missing=args.download).data
    except FileNotFoundError as exc:
        print("skipping: CIFAR-10 is not on this machine. Run this script with --download to "
              "fetch it (170 MB, once), or put cifar-10-python.tar.gz where the loader looks:")
        print("  " + str(exc).replace("\n", "\n  "))
        return 0
    X_train = X_train[: args.n_train]
    if QUICK:
        X_test = X_test[:1000]
    print(f"data: CIFAR-10 grey (0.299 R + 0.587 G + 0.114 B) / 255: {X_train.shape[0]} train, "
          f"{X_test.shape[0]} test images of 32x32 = {X_train.shape[1]} values")
    args.out.mkdir(parents=True, exist_ok=True)

    vae = VAETransformer(
        n_components=15,
        architecture="cifar_gray_mlp",
        likelihood="bernoulli",  # summed binary cross-entropy
        optimizer="adam",
        learning_rate=1e-3,
        batch_size=1000,
        max_iter=args.epochs,
        n_iter_no_change=args.epochs,  # the post trains every epoch
        random_state=0,
    )
    start = time.perf_counter()
    vae.fit(X_train)
    seconds = time.perf_counter() - start

    n_batches = -(-X_train.shape[0] // 1000)
    print(f"Number of minibatches: {n_batches}; {vae.n_iter_} epochs in {seconds:.1f} s")
    print("epoch  cost (cross-entropy + KL, per image)   the post")
    for record, post in zip(vae.history_, POST_COST + (None,) * len(vae.history_)):
        print(f"{record['epoch']:5d}  {record['loss']:8.2f}"
              + (f"                              {post:8.2f}" if post is not None else ""))
    print(f"test ELBO: {vae.score(X_test):.2f} nats per image")

    recon = ReconstructionDisplay.from_estimator(
        vae, X_train, n_samples=10,
        title="CIFAR-10 grey: originals (top), reconstructions (bottom)",
    )
    frame_tiles(recon.ax_)
    save(recon.figure_, args.out / "reconstructions.png")

    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    epochs = [r["epoch"] for r in vae.history_]
    ax.plot(epochs, [r["loss"] for r in vae.history_], "o-", ms=3, label="skvae")
    ax.plot(range(1, 16), POST_COST, "s--", ms=3, label="the post (TensorFlow)")
    ax.set(xlabel="epoch", ylabel="average cost per image (nats)",
           title="Training cost per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, args.out / "training_cost.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
