"""
Seed 001: a small convolutional VAE with a 2-D latent space
===========================================================

Reproduces the post "How to create a variational autoencoder with Keras?"
(MachineCurve, 2019): the conv VAE of the post (Conv 8 and 16, kernel 3,
stride 2, batch norm, Dense 20; the ``keras_conv`` preset, with the post's
17,208 + 9,137 weights on 28x28), a 2-D latent space, binary cross-entropy
x 784 + KL (the Bernoulli likelihood), Adam, batch 128, 20 % of the training
set held out for validation. Then the post's two figures: the test set's
posterior means coloured by class, and a 15 x 15 grid of images decoded over
[-4, 4]^2 with the z values as tick labels.

The post trained on all 60,000 MNIST images for 100 epochs (about two
minutes an epoch on two CPU cores here). The gallery trains on the first
10,000 images for 12 epochs (a few minutes), which is enough for the figures
to show the structure, though not for the loss to settle; set
``N_TRAIN = None`` and ``EPOCHS = 100`` for the post's run.

Data: MNIST when :func:`skvae.datasets.load_mnist` finds its files, else
Fashion-MNIST when its files are found (Debian's ``dataset-fashion-mnist``
puts them in /usr/share/datasets), else scikit-learn's 8x8 digits. The
output says which; nothing is downloaded unless ``DOWNLOAD = True``.
"""

# %%
# Data and model
# --------------
# Keras' ``validation_split`` only reports the validation loss; here
# ``early_stopping=True, validation_fraction=0.2`` holds out the same 20 %,
# reports it, and stops once it has not improved for 10 epochs (keeping the
# best weights).
import time

import matplotlib.pyplot as plt

from skvae import VAETransformer
from skvae.plotting import LatentManifoldDisplay, LatentScatterDisplay, TrainingCurvesDisplay
from skvae_plugins.presets import KerasConv
from _common import load_data, quick, save
# sphinx_gallery_thumbnail_number = 2

DATASET = "auto"  # MNIST, else Fashion-MNIST; or "mnist", "fashion", "digits"
DOWNLOAD = False  # True: download the DATASET's files when missing
N_TRAIN = quick(10000, 600)  # None: every training image
EPOCHS = quick(12, 2)  # the post: 100

title, X_train, y_train, X_test, y_test, names, shape = load_data(
    DATASET, N_TRAIN, quick(None, 300), download=DOWNLOAD
)

vae = VAETransformer(
    n_components=2,
    architecture=KerasConv(image_shape=shape),
    likelihood="bernoulli",  # binary cross-entropy x 784
    optimizer="adam",
    batch_size=128,
    max_iter=EPOCHS,
    early_stopping=True,
    validation_fraction=0.2,  # Keras' validation_split=0.2
    random_state=0,
)
start = time.perf_counter()
vae.fit(X_train)
seconds = time.perf_counter() - start


def n_weights(module):
    """Parameters plus batch-norm statistics, as Keras counts them."""
    return sum(p.numel() for p in module.parameters()) + sum(
        b.numel() for name, b in module.named_buffers() if "num_batches" not in name
    )


net = vae.module_.net
print(f"keras_conv: encoder {n_weights(net.encoder):,} + decoder {n_weights(net.decoder):,} "
      "weights (the post on 28x28: 17,208 + 9,137)")
best = min(vae.history_, key=lambda r: r["val_loss"])
print(f"fitted {vae.n_iter_} epochs in {seconds:.1f} s; best validation loss "
      f"{best['val_loss']:.2f} at epoch {best['epoch']} (train loss {best['loss']:.2f})")
print(f"test ELBO: {vae.score(X_test):.2f} nats per image")

# %%
# The training and validation loss per epoch, with its two terms.
curves = TrainingCurvesDisplay.from_estimator(vae, keys=["loss", "reconstruction", "kl"])
save(curves.figure_, "training_curves.png")

# %%
# The latent space
# ----------------
# The test set's posterior means, coloured by class: with two dimensions for
# everything, classes that look alike (shirts, pullovers and coats in
# Fashion-MNIST; 4 and 9 in MNIST) share a region.
fashion = title == "Fashion-MNIST"
scatter = LatentScatterDisplay.from_estimator(
    vae, X_test, y_test, label_name="class" if fashion else "digit", s=4
)
if fashion:  # name the classes 0-9 on the colour bar
    scatter.colorbar_.ax.set_yticklabels(names)
scatter.ax_.set_title(f"{title}: test set in the latent space (posterior means)")
save(scatter.figure_, "latent_scatter.png")

# %%
# The post's 15 x 15 grid: images decoded over [-4, 4]^2, with the z values
# as tick labels. Compare with the scatter: each region decodes to its class.
manifold = LatentManifoldDisplay.from_estimator(
    vae, grid_size=15, extent=4.0, pad=1 if shape[0] < 16 else 0
)
manifold.ax_.set_title(f"{title}: decoded over $[-4, 4]^2$")
save(manifold.figure_, "latent_manifold.png")

plt.show()
