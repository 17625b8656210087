"""
Imputation: VAEImputer against KNNImputer
=========================================

:class:`skvae.VAEImputer` fills missing values with a VAE trained on the
incomplete data itself (MIWAE, Mattei and Frellsen 2019): the likelihood
covers the observed entries only, and the encoder sees each row with the
missingness mask. It follows scikit-learn's imputers: ``missing_values``,
``add_indicator``, a ``transform`` that keeps every observed entry.

Here half the pixels of Fashion-MNIST images are removed completely at random
(MCAR), in the training images and in held-out ones; each imputer is fitted
on the incomplete training images and fills the held-out ones, scored by the
RMSE on the removed pixels. Then the same model completes images whose lower
half is gone, and draws several completions of one image (multiple
imputation). About three minutes on two CPU cores. (Without the Fashion-MNIST
files, scikit-learn's 8x8 digits stand in.)
"""

# %%
# Incomplete images
# -----------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.impute import KNNImputer, SimpleImputer

from skvae import VAEImputer
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.mlp import MLP
from _common import load_data, quick, save
# sphinx_gallery_thumbnail_number = 2

title, X_train, _, X_test, _, _, shape = load_data("fashion", quick(3000, 400), quick(1000, 100))
DIGITS = shape[0] == 8
rng = np.random.RandomState(0)


def remove_at_random(X, rate):
    """A copy of X with a share ``rate`` of its entries set to NaN."""
    X = X.astype(float)  # a copy
    X[rng.rand(*X.shape) < rate] = np.nan
    return X


X_train_missing = remove_at_random(X_train, 0.5)
X_test_missing = remove_at_random(X_test, 0.5)
print(f"{np.isnan(X_test_missing).mean():.1%} of the test pixels are missing")

# %%
# Three imputers
# --------------
# The VAE settings are ``benchmarks/bench_impute.py``'s, chosen on a
# validation mask of training rows: a Gaussian likelihood with a fixed scale
# of 0.1 (a small fixed scale makes the reconstruction term outweigh the KL
# term, so the codes are used), a 16-D code, and the MIWAE bound with
# ``n_importance=5``. ``n_iter_no_change=EPOCHS`` runs every epoch: on small
# data a VAE starts on a plateau that a flat-loss stop can mistake for the
# end.
EPOCHS = quick(200 if DIGITS else 60, 3)
imputers = {
    "mean": SimpleImputer(),
    "KNN (5 neighbours)": KNNImputer(n_neighbors=5),
    "VAE": VAEImputer(
        n_components=16,
        architecture=MLP(hidden_sizes=(128, 128) if DIGITS else (256, 128)),
        likelihood=Gaussian(scale=0.1),
        n_importance=5,
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,
        random_state=0,
    ),
}
missing = np.isnan(X_test_missing)
filled = {}
for name, imputer in imputers.items():
    filled[name] = imputer.fit(X_train_missing).transform(X_test_missing)
    rmse = np.sqrt(np.mean((filled[name][missing] - X_test[missing]) ** 2))
    print(f"{name:20s} RMSE on the removed test pixels: {rmse:.4f}")


# %%
# The completed test images: the incomplete image (missing pixels in red),
# what each imputer fills in, and the original. KNN copies its neighbours'
# pixels, the VAE draws the garment its code describes.
def show_rows(rows, labels, filename, n=8):
    """A grid of images: one row per entry of ``rows``, the first n images of each."""
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 0.95),
                             layout="constrained")
    for r, (images, label) in enumerate(zip(rows, labels)):
        for c in range(n):
            ax = axes[r, c]
            image = np.asarray(images[c], dtype=float).reshape(shape[:2])
            rgb = np.repeat(np.nan_to_num(image, nan=0.0)[..., None], 3, axis=2)
            rgb[np.isnan(image)] = (0.85, 0.1, 0.1)
            ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    save(fig, filename)


show_rows([X_test_missing, filled["KNN (5 neighbours)"], filled["VAE"], X_test],
          ["50 % missing", "KNN", "VAE", "original"], "mcar_completions.png")

# %%
# The lower half missing
# ----------------------
# A harder mask, not the one the models were trained with: the lower half of
# each test image. KNN compares the upper halves and copies the nearest
# images' lower halves, which works well here. The VAE was fitted on random
# masks: its encoder has seen every pixel missing at times, but never a
# whole region, and its completions of the lower half are blurred and
# fainter. A model meant to fill such holes should be trained with them
# (rows with a missing half among its training rows).
X_half = X_test.astype(float)
X_half[:, X_half.shape[1] // 2:] = np.nan
half = np.isnan(X_half)
half_filled = {}
for name in ["KNN (5 neighbours)", "VAE"]:
    half_filled[name] = imputers[name].transform(X_half)
    rmse = np.sqrt(np.mean((half_filled[name][half] - X_test[half]) ** 2))
    print(f"{name:20s} RMSE on the missing lower halves: {rmse:.4f}")
show_rows([X_half, half_filled["KNN (5 neighbours)"], half_filled["VAE"], X_test],
          ["lower half missing", "KNN", "VAE", "original"], "half_completions.png")

# %%
# Multiple imputation
# -------------------
# A single imputation is the conditional mean: one smooth guess. With
# ``sample_posterior=True`` each ``transform`` draws one plausible completion
# from p(x_miss | x_obs) instead; the spread between draws is the uncertainty
# about the missing pixels (for an analysis, combine the completed data sets
# with Rubin's rules). ``set_params`` changes the fitted imputer's inference,
# not its model. Here the draws differ in the pixel noise of the Gaussian
# likelihood (scale 0.1) more than in shape: given the upper half, the
# model is fairly sure of the shoe's outline.
vae = imputers["VAE"].set_params(sample_posterior=True)
one = X_half[:1].repeat(8, axis=0)  # one image, eight times: eight draws in one call
draws = vae.transform(one)
vae.set_params(sample_posterior=False)
show_rows([one, draws, np.repeat(X_test[:1], 8, axis=0)],
          ["lower half missing", "8 draws", "original"], "multiple_imputation.png")

plt.show()
