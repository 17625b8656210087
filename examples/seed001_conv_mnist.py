"""Seed 001: the small convolutional VAE with a 2-D latent space (MachineCurve, Keras).

Reproduces the post "How to create a variational autoencoder with Keras?"
(MachineCurve, 2019): the conv VAE of the post (Conv 8 and 16, kernel 3, stride
2, batch norm, Dense 20; the ``keras_conv`` preset, with the post's 17,208 +
9,137 parameters on 28x28), a 2-D latent space, binary cross-entropy x 784 +
KL (the Bernoulli likelihood), Adam, batch 128, 100 epochs with 20% of the
training set held out for validation. Then the post's two figures: the test
set's posterior means coloured by digit, and a 15 x 15 grid of images decoded
over [-4, 4]^2 with the z values as tick labels.

Keras' ``validation_split`` only reports the validation loss; here
``early_stopping=True, validation_fraction=0.2`` holds out the same 20%, reports
it, and also stops once it has not improved for 10 epochs (keeping the best
weights), which usually ends well before 100 epochs.

Data: MNIST when ``skvae.datasets.load_mnist`` finds its files (it downloads
them with ``--dataset mnist``), else Fashion-MNIST when its files are found
(Debian's package ``dataset-fashion-mnist`` puts them in /usr/share/datasets),
else scikit-learn's 8x8 digits. The output says which.

Run::

    python examples/seed001_conv_mnist.py                     # up to 100 epochs: ~2 min each on 2 cores
    python examples/seed001_conv_mnist.py --n-train 12000 --epochs 15   # a shorter 28x28 run
    python examples/seed001_conv_mnist.py --dataset digits    # 8x8 digits, about 30 s
    SKVAE_QUICK=1 python examples/seed001_conv_mnist.py       # a few seconds

Figures go to ``--out`` (default ``runs/seed001_conv_mnist``).
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from skvae import VAETransformer  # noqa: E402
from skvae.plotting import (  # noqa: E402
    LatentManifoldDisplay,
    LatentScatterDisplay,
    TrainingCurvesDisplay,
)
from skvae_plugins.presets import KerasConv  # noqa: E402
from _common import QUICK, load_data, save  # noqa: E402



def parse_args():
    name = Path(__file__).stem
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / name,
                        help=f"folder for the figures (default runs/{name})")
    parser.add_argument("--epochs", type=int, default=2 if QUICK else 100,
                        help="most epochs (default 100, quick 2)")
    parser.add_argument("--dataset", choices=["auto", "mnist", "fashion", "digits"], default="auto",
                        help="auto: MNIST, else Fashion-MNIST, else 8x8 digits (files found "
                             "only); mnist or fashion downloads them if missing")
    parser.add_argument("--n-train", type=int, default=600 if QUICK else None,
                        help="use only the first N training images (default all, quick 600)")
    return parser.parse_args()






def n_weights(module):
    """Parameters plus batch-norm statistics, as Keras counts them."""
    return sum(p.numel() for p in module.parameters()) + sum(
        b.numel() for name, b in module.named_buffers() if "num_batches" not in name
    )


def main():
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    title, X_train, y_train, X_test, y_test, names, shape = load_data(
        args.dataset, args.n_train, 300 if QUICK else None
    )

    vae = VAETransformer(
        n_components=2,
        architecture=KerasConv(image_shape=shape),
        likelihood="bernoulli",  # binary cross-entropy x 784
        optimizer="adam",
        batch_size=128,
        max_iter=args.epochs,
        early_stopping=True,
        validation_fraction=0.2,  # Keras' validation_split=0.2
        random_state=0,
    )
    start = time.perf_counter()
    vae.fit(X_train)
    seconds = time.perf_counter() - start

    net = vae.module_.net
    print(f"keras_conv: encoder {n_weights(net.encoder):,} + decoder {n_weights(net.decoder):,} "
          "weights (the post on 28x28: 17,208 + 9,137)")
    best = min(vae.history_, key=lambda r: r["val_loss"])
    print(f"fitted {vae.n_iter_} epochs in {seconds:.1f} s; best validation loss "
          f"{best['val_loss']:.2f} at epoch {best['epoch']} (train loss {best['loss']:.2f})")
    print(f"test ELBO: {vae.score(X_test):.2f} nats per image")

    # The test set's posterior means, coloured by digit (or clothing class).
    fashion = title == "Fashion-MNIST"
    scatter = LatentScatterDisplay.from_estimator(
        vae, X_test, y_test, label_name="class" if fashion else "digit", s=6
    )
    if fashion:  # name the classes 0-9 on the colour bar
        scatter.colorbar_.ax.set_yticklabels(names)
    scatter.ax_.set_title(f"{title}: test set in the latent space (posterior means)")
    save(scatter.figure_, args.out / "latent_scatter.png")

    # 15 x 15 decoded grid over [-4, 4]^2 with the z values as tick labels.
    manifold = LatentManifoldDisplay.from_estimator(
        vae, grid_size=15, extent=4.0, pad=1 if shape[0] < 16 else 0
    )
    manifold.ax_.set_title(f"{title}: decoded over $[-4, 4]^2$")
    save(manifold.figure_, args.out / "latent_manifold.png")

    save(TrainingCurvesDisplay.from_estimator(vae, keys=["loss", "reconstruction", "kl"]).figure_,
         args.out / "training_curves.png")


if __name__ == "__main__":
    main()
