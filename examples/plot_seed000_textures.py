"""
Seed 000: the csnl SmallDenseVAE on texture patches, with beta warm-up
======================================================================

Reproduces the post "Variational autoencoders I. - MNIST, Fashion-MNIST,
CIFAR10, textures" (Alex Olar; the csnl library, ``qbeer/wigner-csnl-textures``):
the ``SmallDenseVAE`` (Dense 420-210-105 / 200-400-800, ReLU, a log-sigma
head; the ``csnl_small_dense`` preset) trained with RMSprop on 28x28 grey
texture patches, beta warmed up linearly over the first 3/7 of the epochs,
then the post's plotter figures: samples from N(0, I) on a grid, originals
above reconstructions (train and test), a sweep of one latent dimension, and
the loss and KL curves.

The post cut its patches from 7 texture photographs (a Kaggle pickle); here
:func:`skvae.datasets.load_textures` cuts them from the photographs that ship
with scikit-learn and matplotlib (3 classes), or from your own images
(``IMAGES`` below). Its options are the post's: random contrast c ~ U(0, 2)
and binarisation at 0.5.
"""

# %%
# Settings
# --------
# The post's options as constants: edit them to try the others.
# ``LIKELIHOOD = "gaussian"`` is the diagonal Gaussian with a learned scale
# per pixel (the post's fixed-noise "normal" loss defaulted to sigma = 1e-3,
# which gives losses near 1e9). About two minutes on two CPU cores.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skvae import VAETransformer
from skvae.datasets import load_textures
from skvae.plotting import (
    LatentTraversalDisplay,
    ReconstructionDisplay,
    SamplesDisplay,
    TrainingCurvesDisplay,
)
from skvae_plugins.gaussian import Gaussian
from _common import frame_tiles, quick, save
# sphinx_gallery_thumbnail_number = 2

EPOCHS = quick(35, 3)  # beta warms up over the first 3/7 of them
N_PATCHES = quick(12000, 600)  # 28x28 patches in all, 20 % held out
LATENT = 16  # the post: 16 or 2
LIKELIHOOD = "bernoulli"  # or "gaussian"
BINARIZE = False  # patches set to 0/1 at 0.5
CONTRAST = (0, 2)  # random contrast c ~ U(0, 2); None for none
IMAGES = None  # a folder of texture images; None: the sample photographs

# %%
# The texture patches
# -------------------
textures = load_textures(
    IMAGES, n_patches=N_PATCHES, binarize=BINARIZE, contrast=CONTRAST, random_state=0
)
X_train, X_test = train_test_split(
    textures.data, test_size=0.2, stratify=textures.target, random_state=0
)
print(f"textures: {len(X_train)} train / {len(X_test)} test patches of 28x28 from "
      f"{', '.join(map(str, textures.target_names))}")

# %%
# The model and its training
# --------------------------
# ``kl_warmup=3 / 7`` is the csnl trainer's schedule,
# beta_e = min(e / floor(3 N / 7), 1); ``n_iter_no_change=EPOCHS`` trains
# every epoch, as the post does.
vae = VAETransformer(
    n_components=LATENT,
    architecture="csnl_small_dense",
    likelihood="bernoulli" if LIKELIHOOD == "bernoulli" else Gaussian(scale="learned"),
    optimizer="rmsprop",
    learning_rate=1e-3,
    batch_size=100,
    kl_warmup=3 / 7,
    max_iter=EPOCHS,
    n_iter_no_change=EPOCHS,
    random_state=0,
)
start = time.perf_counter()
vae.fit(X_train)
print(f"fitted {vae.n_iter_} epochs in {time.perf_counter() - start:.1f} s "
      f"({vae.likelihood_}, RMSprop, kl_warmup=3/7)")
print(" epoch   beta      loss        KL")
for record in vae.history_:
    print(f" {record['epoch']:5d}  {record['beta']:5.2f}  {record['loss']:9.2f}  {record['kl']:8.2f}")
kl = vae.kl_per_dimension(X_test)
print(f"test ELBO: {vae.score(X_test):.2f} nats per patch (train {vae.score(X_train):.2f})")
print(f"active latent dimensions: {int(vae.active_units(X_test).sum())} of {LATENT}")

# %%
# The loss and the KL term per epoch: the KL grows while beta warms up, then
# the loss settles.
curves = TrainingCurvesDisplay.from_estimator(vae, keys=["loss", "kl", "beta"])
save(curves.figure_, "training_curves.png")

# %%
# Samples from the prior
# ----------------------
# The post's plotter: decoded codes z ~ N(0, I) on a grid. Textures are not
# digits: a good sample has the brightness, shading and contrast of a patch,
# not a recognisable object.
grid = quick(16, 8)
samples = SamplesDisplay.from_estimator(
    vae, grid_size=grid, random_state=0,
    title=f"{grid * grid} samples, z ~ N(0, I) (latent {LATENT})",
)
frame_tiles(samples.ax_)
save(samples.figure_, "samples.png")

# %%
# Reconstructions
# ---------------
# ``grid_plot()``: originals above reconstructions, train and test. Most
# patches of these photographs are smooth (sky, shadow, cloth), and the
# random contrast flattens many more: the model spends its code on
# brightness and shading, and blurs the fine grain of the few busy patches
# (the Bernoulli likelihood on grey levels rewards little more). Your own
# texture images (``IMAGES``) give it more to learn.
fig, axes = plt.subplots(2, 1, figsize=(9, 4.6), layout="constrained")
for ax, X, part in zip(axes, (X_train, X_test), ("train", "test")):
    ReconstructionDisplay.from_estimator(
        vae, X, n_samples=10, ax=ax, title=f"{part}: originals (top), reconstructions (bottom)"
    )
    frame_tiles(ax)
save(fig, "reconstructions.png")

# %%
# One latent dimension swept
# --------------------------
# The dimension with the largest KL (the one the model uses most), from -3 to
# 3 standard deviations, the others at a test patch's code: on these patches
# it is the brightness.
dim = int(np.argmax(kl))
traversal = LatentTraversalDisplay.from_estimator(
    vae, X_test[0], dims=[dim], n_steps=11, extent=3.0,
    title=f"$z_{{{dim}}}$ (largest KL, {kl[dim]:.1f} nats) swept, the rest at a test patch's code",
)
frame_tiles(traversal.ax_)
save(traversal.figure_, "traversal.png")

plt.show()
