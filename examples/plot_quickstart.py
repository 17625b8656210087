"""
Quick start: a VAE in a scikit-learn Pipeline, tuned with GridSearchCV
======================================================================

:class:`skvae.VAETransformer` is a scikit-learn transformer: it goes into a
:class:`~sklearn.pipeline.Pipeline`, :class:`~sklearn.model_selection.GridSearchCV`
tunes it by its own ``score`` (the mean evidence lower bound, ELBO, of the
held-out rows: higher is better), and its ``transform`` gives latent codes
that a classifier can use. This example does both on scikit-learn's 8x8
digits, then looks at what the chosen model learned.
"""

# %%
# The data
# --------
# 1,797 images of 8x8 pixels with grey levels 0..16. The default likelihood
# for data in [0, 1] is a Bernoulli one, so a :class:`~sklearn.preprocessing.MinMaxScaler`
# puts the pixels there (``clip=True`` keeps held-out rows in [0, 1] too).
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAETransformer
from skvae.plotting import ReconstructionDisplay, SamplesDisplay
from _common import quick, save
# sphinx_gallery_thumbnail_number = 3

EPOCHS = quick(40, 3)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# %%
# Tuning the VAE by its own score
# -------------------------------
# ``GridSearchCV`` needs no ``scoring``: like :class:`~sklearn.decomposition.PCA`
# and :class:`~sklearn.mixture.GaussianMixture`, the VAE's ``score`` is the
# mean log-likelihood (here its lower bound, in nats per image) of the rows it
# is given. Nested parameters reach the architecture:
# ``vae__architecture__hidden_sizes``.
pipe = Pipeline(
    [
        ("scale", MinMaxScaler(clip=True)),
        ("vae", VAETransformer(n_components=8, max_iter=EPOCHS, batch_size=64, random_state=0)),
    ]
)
grid = {"vae__architecture__hidden_sizes": [(64,), (256, 128)], "vae__beta": [0.5, 1.0]}
search = GridSearchCV(pipe, grid, cv=3)
with warnings.catch_warnings():
    # 40 epochs are a budget, not convergence: every fit would warn so.
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train)
print("best parameters:", search.best_params_)
print(f"held-out ELBO: {search.score(X_test):.2f} nats per image")

# %%
# The mean validation ELBO of each candidate, with the spread over the three
# folds. ``beta`` weighs the KL term in training only: every candidate is
# scored by the same bound (with weight 1), so the scores are comparable.
# Candidates with different likelihoods would not be (a Bernoulli and a
# continuous Bernoulli bound are densities of different things): such a
# search needs a common measure, passed as ``scoring``.
results = search.cv_results_
labels = [f"hidden {p['vae__architecture__hidden_sizes']}\nbeta {p['vae__beta']}"
          for p in results["params"]]
fig, ax = plt.subplots(figsize=(6.4, 3.2), layout="constrained")
ax.errorbar(results["mean_test_score"], labels, xerr=results["std_test_score"], fmt="o",
            capsize=4)
ax.set(xlabel="mean validation ELBO (nats per image, higher is better)",
       title="GridSearchCV over the VAE's parameters")
ax.grid(axis="x", alpha=0.3)
ax.invert_yaxis()
save(fig, "grid_search.png")

# %%
# What the chosen model learned
# -----------------------------
# Held-out digits above their reconstructions from the 8-D code, and new
# digits decoded from codes drawn from the prior N(0, I).
scaler, vae = search.best_estimator_["scale"], search.best_estimator_["vae"]
X_test_scaled = scaler.transform(X_test)
recon = ReconstructionDisplay.from_estimator(
    vae, X_test_scaled, n_samples=12, title="test digits (top) and their reconstructions (bottom)"
)
save(recon.figure_, "reconstructions.png")

samples = SamplesDisplay.from_estimator(
    vae, grid_size=10, random_state=0, title="100 digits decoded from z ~ N(0, I)"
)
save(samples.figure_, "samples.png")

# %%
# The codes as features
# ---------------------
# The tuned pipeline is a transformer: its codes feed a classifier. PCA with
# as many components is the baseline that tells whether the non-linear code
# carries more than a linear projection.
pca = Pipeline([("scale", MinMaxScaler()), ("pca", PCA(n_components=8, random_state=0))])
for name, reducer in [("the VAE's 8-D codes", search.best_estimator_),
                      ("8 PCA components", pca.fit(X_train))]:
    logreg = LogisticRegression(max_iter=2000).fit(reducer.transform(X_train), y_train)
    accuracy = logreg.score(reducer.transform(X_test), y_test)
    print(f"accuracy of logistic regression on {name}: {accuracy:.3f}")

# %%
# Run as a script, the example shows its figures (and writes them into
# ``runs/plot_quickstart/``).
plt.show()
