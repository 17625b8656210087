"""Seed 000: the csnl SmallDenseVAE on texture patches, with beta warm-up.

Reproduces the post "Variational autoencoders I. - MNIST, Fashion-MNIST, CIFAR10,
textures" (Alex Olar; the csnl library, qbeer/wigner-csnl-textures): the
``SmallDenseVAE`` (Dense 420-210-105 / 200-400-800, ReLU, a log-sigma head; the
``csnl_small_dense`` preset) trained with RMSprop on 28x28 grey texture patches,
beta warmed up linearly over the first 3/7 of the epochs, then the post's
plotter figures: samples from N(0, I) on a grid, originals above
reconstructions (train and test), a sweep of one latent dimension, and the
loss and KL curves.

The post cut its patches from 7 texture photographs (a Kaggle pickle); here
``skvae.datasets.load_textures`` cuts them from the photographs that ship with
scikit-learn and matplotlib (3 classes), or from your own images (``--images``).
Its options are the post's: random contrast c ~ U(0, 2) (on by default) and
binarisation at 0.5 (``--binarize``). The post offered a Bernoulli likelihood
and Gaussian ones; ``--likelihood gaussian`` is the diagonal Gaussian with a
learned scale per pixel (the post's fixed-noise "normal" loss defaulted to
sigma = 1e-3, which gives losses near 1e9).

Run::

    python examples/seed000_textures.py                 # 35 epochs, about 2 min on 2 cores
    python examples/seed000_textures.py --binarize      # binary patches
    python examples/seed000_textures.py --likelihood gaussian
    SKVAE_QUICK=1 python examples/seed000_textures.py   # a few seconds

Figures go to ``--out`` (default ``runs/seed000_textures``).
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skvae import VAETransformer  # noqa: E402
from skvae.datasets import load_textures  # noqa: E402
from skvae.plotting import (  # noqa: E402
    LatentTraversalDisplay,
    ReconstructionDisplay,
    SamplesDisplay,
    TrainingCurvesDisplay,
)
from skvae_plugins.gaussian import Gaussian  # noqa: E402
from _common import QUICK, frame_tiles, save  # noqa: E402



def parse_args():
    name = Path(__file__).stem
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / name,
                        help=f"folder for the figures (default runs/{name})")
    parser.add_argument("--epochs", type=int, default=3 if QUICK else 35,
                        help="epochs; beta warms up over the first 3/7 (default 35, quick 3)")
    parser.add_argument("--patches", type=int, default=600 if QUICK else 12000,
                        help="28x28 patches in all, 20%% held out (default 12000, quick 600)")
    parser.add_argument("--latent", type=int, default=16, help="latent size (the post: 16 or 2)")
    parser.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli")
    parser.add_argument("--binarize", action="store_true", help="patches set to 0/1 at 0.5")
    parser.add_argument("--no-contrast", action="store_true",
                        help="no random contrast c ~ U(0, 2)")
    parser.add_argument("--images", default=None,
                        help="a folder of texture images (default: the sample photographs)")
    return parser.parse_args()






def main():
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    textures = load_textures(
        args.images, n_patches=args.patches, binarize=args.binarize,
        contrast=None if args.no_contrast else (0, 2), random_state=0,
    )
    X_train, X_test = train_test_split(
        textures.data, test_size=0.2, stratify=textures.target, random_state=0
    )
    print(f"textures: {len(X_train)} train / {len(X_test)} test patches of 28x28 from "
          f"{', '.join(map(str, textures.target_names))}"
          f" (contrast {'off' if args.no_contrast else 'U(0, 2)'}, binarize {args.binarize})")

    vae = VAETransformer(
        n_components=args.latent,
        architecture="csnl_small_dense",
        likelihood="bernoulli" if args.likelihood == "bernoulli" else Gaussian(scale="learned"),
        optimizer="rmsprop",
        learning_rate=1e-3,
        batch_size=100,
        kl_warmup=3 / 7,  # beta_e = min(e / floor(3 N / 7), 1), as the csnl trainer
        max_iter=args.epochs,
        n_iter_no_change=args.epochs,  # the post trains every epoch
        random_state=0,
    )
    start = time.perf_counter()
    vae.fit(X_train)
    seconds = time.perf_counter() - start

    print(f"fitted {vae.n_iter_} epochs in {seconds:.1f} s ({vae.likelihood_}, RMSprop, kl_warmup=3/7)")
    print(" epoch   beta      loss        KL")
    for record in vae.history_:
        print(f" {record['epoch']:5d}  {record['beta']:5.2f}  {record['loss']:9.2f}  {record['kl']:8.2f}")
    kl = vae.kl_per_dimension(X_test)
    print(f"test ELBO: {vae.score(X_test):.2f} nats per patch (train {vae.score(X_train):.2f})")
    print(f"active latent dimensions: {int(vae.active_units(X_test).sum())} of {args.latent}")

    # The post's plotter: samples from N(0, I) on a grid_size x grid_size grid.
    grid = 8 if QUICK else 16
    samples = SamplesDisplay.from_estimator(
        vae, grid_size=grid, random_state=0,
        title=f"{grid * grid} samples, z ~ N(0, I) (latent {args.latent})",
    )
    frame_tiles(samples.ax_)
    save(samples.figure_, args.out / "samples.png")

    # grid_plot(): originals above reconstructions, train and test.
    fig, axes = plt.subplots(2, 1, figsize=(9, 4.6), layout="constrained")
    for ax, X, part in zip(axes, (X_train, X_test), ("train", "test")):
        ReconstructionDisplay.from_estimator(
            vae, X, n_samples=10, ax=ax, title=f"{part}: originals (top), reconstructions (bottom)"
        )
        frame_tiles(ax)
    save(fig, args.out / "reconstructions.png")

    # Sweep of the latent dimension with the largest KL, others at a test patch's code.
    dim = int(np.argmax(kl))
    traversal = LatentTraversalDisplay.from_estimator(
        vae, X_test[0], dims=[dim], n_steps=11, extent=3.0,
        title=f"$z_{{{dim}}}$ (largest KL, {kl[dim]:.1f} nats) swept, the rest at a test patch's code",
    )
    frame_tiles(traversal.ax_)
    save(traversal.figure_, args.out / "traversal.png")

    save(TrainingCurvesDisplay.from_estimator(vae, keys=["loss", "kl", "beta"]).figure_,
         args.out / "training_curves.png")


if __name__ == "__main__":
    main()
