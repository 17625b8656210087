"""Quick start: a VAE in a scikit-learn Pipeline, tuned with GridSearchCV.

Run: ``python examples/quickstart.py`` (set SKVAE_QUICK=1 for a seconds-long run).
"""

import os

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAETransformer

EPOCHS = 3 if os.environ.get("SKVAE_QUICK") else 40

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# 1. Unsupervised: tune the VAE by its own score (the mean ELBO, higher is better).
pipe = Pipeline(
    [
        ("scale", MinMaxScaler(clip=True)),  # Bernoulli likelihood: data in [0, 1], held-out rows too
        ("vae", VAETransformer(n_components=8, max_iter=EPOCHS, batch_size=64, random_state=0)),
    ]
)
search = GridSearchCV(
    pipe,
    {"vae__architecture__hidden_sizes": [(64,), (256, 128)], "vae__beta": [0.5, 1.0]},
    cv=3,
)
search.fit(X_train)
print("best parameters:", search.best_params_)
print(f"held-out ELBO: {search.score(X_test):.2f} nats per image")

# 2. Supervised: the latent space as features for a classifier.
clf = Pipeline(
    [
        ("scale", MinMaxScaler(clip=True)),
        ("vae", VAETransformer(n_components=8, max_iter=EPOCHS, batch_size=64, random_state=0)),
        ("logreg", LogisticRegression(max_iter=2000)),
    ]
).fit(X_train, y_train)
print(f"accuracy of logistic regression on the 8-D latent codes: {clf.score(X_test, y_test):.3f}")
