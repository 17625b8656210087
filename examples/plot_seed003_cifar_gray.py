"""
Seed 003: a sigmoid MLP VAE on grey CIFAR-10 images
===================================================

Reproduces the post "Variational autoencoder on the CIFAR-10 dataset 1."
(Alex Olar, TensorFlow): CIFAR-10 made grey with 0.299 R + 0.587 G + 0.114 B,
scaled to [0, 1] and flattened to 1024 values; the encoder
1024 -> 1024 -> 512 (sigmoid) -> mean and log-variance of a 15-D latent code,
the decoder 15 -> 256 -> 512 -> 1024 with truncated-normal initial weights
(the ``cifar_gray_mlp`` preset); summed Bernoulli cross-entropy + KL;
Adam 1e-3, batch 1000, 15 epochs. It prints the average cost of each epoch
next to the post's (708.9 ... 673.8) and draws originals above
reconstructions, as the post does.

CIFAR-10 is a 170 MB download that this example does not fetch unless asked
(``DOWNLOAD = True``, or :func:`skvae.datasets.load_cifar10` once by hand).
Without it, the example says so and trains the same model on 32x32 grey
patches cut from the photographs that ship with scikit-learn and matplotlib
(:func:`skvae.datasets.load_textures`): natural images of the same size, but
not CIFAR-10, so its costs are not the post's.
"""

# %%
# The data
# --------
# All 50,000 training images, as the post (50 minibatches of 1000 an
# epoch; a few minutes on two CPU cores). With fewer images (``N_TRAIN``)
# an epoch has fewer steps, and the costs no longer line up with the
# post's epoch by epoch.
import time

import matplotlib.pyplot as plt

from skvae import VAETransformer
from skvae.datasets import load_cifar10, load_textures
from skvae.plotting import ReconstructionDisplay
from _common import frame_tiles, quick, save

DOWNLOAD = False  # True: fetch CIFAR-10 (170 MB, SHA-256 checked) when it is missing
N_TRAIN = quick(None, 2000)  # None: all 50,000 training images
EPOCHS = quick(15, 2)

#: The average cost per epoch that the post printed (its Progbar, 15 epochs).
POST_COST = (708.89, 704.72, 694.87, 691.45, 689.13, 683.25, 680.52, 679.09,
             678.59, 677.88, 677.02, 676.12, 675.02, 674.63, 673.84)

try:
    X_train = load_cifar10("train", grayscale=True, download_if_missing=DOWNLOAD).data
    X_test = load_cifar10("test", grayscale=True, download_if_missing=DOWNLOAD).data
    data_title = "CIFAR-10 grey"
    print("data: CIFAR-10 grey (0.299 R + 0.587 G + 0.114 B) / 255")
except FileNotFoundError as exc:
    print("CIFAR-10 is not on this machine: set DOWNLOAD = True to fetch it (170 MB, once), "
          "or put cifar-10-python.tar.gz where the loader looks:")
    print("  " + str(exc).splitlines()[0])
    print("Training on 32x32 grey patches of the sample photographs instead; "
          "the post's costs are CIFAR-10's, not comparable.")
    patches = load_textures(patch_size=32, n_patches=(N_TRAIN or 50000) + 2000,
                            random_state=0).data
    X_train, X_test = patches[:-2000], patches[-2000:]
    data_title = "grey photo patches"
X_train = X_train[:N_TRAIN]
X_test = X_test[: quick(None, 1000)]
print(f"{X_train.shape[0]} train, {X_test.shape[0]} test images of 32x32 = "
      f"{X_train.shape[1]} values")

# %%
# The post's model and training
# -----------------------------
# ``n_iter_no_change=EPOCHS`` trains every epoch, as the post does.
vae = VAETransformer(
    n_components=15,
    architecture="cifar_gray_mlp",
    likelihood="bernoulli",  # summed binary cross-entropy
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=1000,
    max_iter=EPOCHS,
    n_iter_no_change=EPOCHS,
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

# %%
# The cost per epoch beside the post's. The cost of a Bernoulli likelihood
# on grey levels never reaches 0 (a pixel of 0.5 costs log 2 nats at best),
# so its level says more about the images than about the fit; its fall is
# what the two runs share.
fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
epochs = [r["epoch"] for r in vae.history_]
ax.plot(epochs, [r["loss"] for r in vae.history_], "o-", ms=3, label=f"skvae ({data_title})")
ax.plot(range(1, 16), POST_COST, "s--", ms=3, label="the post (TensorFlow, CIFAR-10)")
ax.set(xlabel="epoch", ylabel="average cost per image (nats)", title="Training cost per epoch")
ax.grid(alpha=0.3)
ax.legend()
save(fig, "training_cost.png")

# %%
# Originals above reconstructions
# -------------------------------
# As in the post: a 15-D code keeps the layout of light and dark and loses
# the edges. (The sample photographs' patches are mostly smooth, sky and
# shadow: without CIFAR-10 there is little else to learn.)
recon = ReconstructionDisplay.from_estimator(
    vae, X_train, n_samples=10, title=f"{data_title}: originals (top), reconstructions (bottom)",
)
frame_tiles(recon.ax_)
save(recon.figure_, "reconstructions.png")

plt.show()
