"""
A mixed table: synthetic penguins
=================================

:class:`skvae.VAETransformer` fits a pandas DataFrame of numbers, booleans,
categories and strings as it is: with ``likelihood="auto"`` each column gets
its own likelihood (a Gaussian on standardised values for numbers, a
Bernoulli for two-valued columns, a softmax over the categories for the
others; ``ColumnLikelihood`` chooses them by hand), and ``sample`` gives back
a synthetic table with the same columns and dtypes. With
``missing_values=np.nan`` the table's missing entries stay missing: the
likelihood covers the observed ones.

The table is the Palmer penguins (``palmerpenguins`` on PyPI: 344 penguins of
three species on three islands, four measurements, sex and year, 19 missing
entries). The synthetic rows are compared with real rows the model never saw,
as ``benchmarks/bench_synthetic.py`` does. Under a minute on two CPU cores.
"""

# %%
# The table
# ---------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from palmerpenguins import load_penguins
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from skvae import VAETransformer
from skvae_plugins.mlp import MLP
from _common import quick, save

penguins = load_penguins()
for column in ("species", "island", "sex"):
    penguins[column] = penguins[column].astype("category")
print(penguins.dtypes.to_string())
print(f"{len(penguins)} rows, {int(penguins.isna().sum().sum())} missing entries")
train, test = train_test_split(
    penguins, test_size=0.3, stratify=penguins["species"], random_state=0
)

# %%
# The model
# ---------
# No scaler and no encoder: the model standardises the numeric columns
# inside (and back on output) and sees each categorical column one-hot. The
# settings are the benchmark's quality-first ones for this table
# (``skvae_quality``, chosen on validation rows): an 8-D code, an MLP
# (128, 128), 1000 epochs of 256 rows (one step each).
vae = VAETransformer(
    n_components=8,
    architecture=MLP(hidden_sizes=(128, 128)),
    missing_values=np.nan,
    batch_size=256,
    max_iter=quick(1000, 5),
    n_iter_no_change=quick(1000, 5),
    random_state=0,
)
vae.fit(train)
print(vae.table_schema_)

# %%
# Synthetic rows
# --------------
# ``decode="draw"`` draws every column from p(x | z): what synthetic data
# needs. ``decode="mean"`` gives each code's most likely row, which is less
# spread out than the data (the columns' noise is left out).
synthetic = vae.sample(len(train), random_state=0, decode="draw")
means = vae.sample(len(train), random_state=0, decode="mean")
print(synthetic.head().to_string())
print("same columns and dtypes as the real table:", synthetic.dtypes.equals(penguins.dtypes))

# %%
# Two measurements against each other, by species: the held-out real rows,
# as many synthetic draws, and as many decoded means. The decoded means keep
# each species' cluster and its slope; the draws add each column's own noise
# given the code, so they spread wider than the real rows.
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharex=True, sharey=True,
                         layout="constrained")
colours = dict(zip(penguins["species"].cat.categories, ["tab:orange", "tab:purple", "tab:cyan"]))
for ax, (name, frame) in zip(axes, [("real (held out)", test),
                                    ("synthetic: draws", synthetic[:len(test)]),
                                    ("synthetic: decoded means", means[:len(test)])]):
    for species, rows in frame.groupby("species", observed=True):
        ax.scatter(rows["bill_length_mm"], rows["flipper_length_mm"], s=12, alpha=0.8,
                   color=colours[species], label=species)
    ax.set(title=name, xlabel="bill length (mm)")
axes[0].set_ylabel("flipper length (mm)")
axes[0].legend(loc="lower right")
save(fig, "measurements.png")

# %%
# The categorical columns together: how many penguins of each species live
# on each island (Gentoos only on Biscoe, Chinstraps only on Dream). The
# synthetic table keeps these associations, not just each column's counts.
real_counts = pd.crosstab(test["species"], test["island"])
sample = synthetic[:len(test)]  # as many rows as the real counts
synthetic_counts = pd.crosstab(sample["species"], sample["island"]).reindex_like(
    real_counts).fillna(0)
fig, ax = plt.subplots(figsize=(7.5, 3.4), layout="constrained")
labels = [f"{s}\n{i}" for s in real_counts.index for i in real_counts.columns]
x = np.arange(len(labels))
ax.bar(x - 0.2, real_counts.to_numpy().ravel(), 0.4, label="real (held out)")
ax.bar(x + 0.2, synthetic_counts.to_numpy().ravel(), 0.4, label="synthetic")
ax.set_xticks(x, labels, fontsize="small")
ax.set(ylabel="penguins", title="species and island")
ax.legend()
save(fig, "species_island.png")

# %%
# Train on synthetic, test on real
# --------------------------------
# A classifier of the species trained on the synthetic table alone, scored on
# the held-out real rows, against the same classifier trained on the real
# training rows. :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
# takes the category columns and the missing values as they are.
features = [c for c in penguins.columns if c != "species"]
for name, frame in [("real training rows", train), ("synthetic rows", synthetic)]:
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    clf.fit(frame[features], frame["species"])
    accuracy = clf.score(test[features], test["species"])
    print(f"species accuracy on the real test rows, trained on {name}: {accuracy:.3f}")

plt.show()
