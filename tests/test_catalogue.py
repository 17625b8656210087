"""Every architecture x likelihood pair that makes sense fits briefly on digits."""

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

import skvae
from skvae import VAETransformer
from skvae_plugins.categorical import Categorical
from skvae_plugins.columns import ColumnLikelihood
from skvae_plugins.conv import Conv
from skvae_plugins.presets import KerasConv

# The digits are 8x8 grey images with counts 0..16.
ARCHITECTURES = {
    "mlp": "mlp",
    "csnl_small_dense": "csnl_small_dense",
    "csnl_dense": "csnl_dense",
    "cifar_gray_mlp": "cifar_gray_mlp",
    "sigmoid_mlp": "sigmoid_mlp",
    "ladder": "ladder",
    "conv": Conv(image_shape=(8, 8, 1), filters=(8, 16)),
    "keras_conv": KerasConv(image_shape=(8, 8, 1)),
}
# keras_dcgan_conv (about 61M parameters) is left to its own test in
# test_architectures.py: it is GPU-sized.

LIKELIHOOD_DATA = {
    "bernoulli": "unit",
    "continuous_bernoulli": "unit",
    "gaussian": "standardized",
    "laplace": "standardized",
    "student_t": "standardized",
    "poisson": "counts",
    "negative_binomial": "counts",
}


@pytest.fixture(scope="module")
def data(digits):
    X, _ = digits
    counts = np.rint(X[:96] * 16).astype(np.float32)
    return {
        "unit": counts / 16,
        "counts": counts,
        "standardized": StandardScaler().fit_transform(counts).astype(np.float32),
    }


# Likelihoods of coded columns (categories coded 0..K-1, one column group per
# likelihood): the encoder sees their own view of the rows (one-hot codes), so
# they pair with mlp and the ladder (tests/test_ladder.py), not with conv (its
# input is an image); fitted separately below.
CODED_LIKELIHOODS = {
    "categorical": lambda: Categorical(n_categories=[17] * 64),
    "columns": lambda: ColumnLikelihood(
        [(Categorical(n_categories=[17] * 32), list(range(0, 64, 2))),
         ("poisson", list(range(1, 64, 2)))]
    ),
}


def test_every_registered_plugin_is_covered():
    names = {p["name"] for p in skvae.list_plugins("architecture")}
    assert names == set(ARCHITECTURES) | {"keras_dcgan_conv"}
    likelihoods = {p["name"] for p in skvae.list_plugins("likelihood")}
    assert likelihoods == set(LIKELIHOOD_DATA) | set(CODED_LIKELIHOODS)


@pytest.mark.parametrize("likelihood", sorted(LIKELIHOOD_DATA))
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_architecture_likelihood_pair_fits(data, architecture, likelihood):
    X = data[LIKELIHOOD_DATA[likelihood]]
    vae = VAETransformer(
        architecture=ARCHITECTURES[architecture],
        likelihood=likelihood,
        n_components=2,
        max_iter=1,
        batch_size=48,
        random_state=0,
    ).fit(X)
    assert np.isfinite(vae.history_[-1]["loss"])
    assert vae.transform(X[:5]).shape == (5, 2)
    assert vae.inverse_transform(np.zeros((3, 2))).shape == (3, 64)
    assert np.isfinite(vae.score_samples(X[:8])).all()
    assert vae.sample(2, random_state=0, decode="draw").shape == (2, 64)


@pytest.mark.parametrize("likelihood", sorted(CODED_LIKELIHOODS))
def test_coded_likelihood_fits_with_mlp(data, likelihood):
    X = data["counts"]  # codes 0..16
    vae = VAETransformer(
        likelihood=CODED_LIKELIHOODS[likelihood](), n_components=2, max_iter=1,
        batch_size=48, random_state=0,
    ).fit(X)
    assert np.isfinite(vae.history_[-1]["loss"])
    assert vae.transform(X[:5]).shape == (5, 2)
    assert vae.inverse_transform(np.zeros((3, 2))).shape == (3, 64)
    assert np.isfinite(vae.score_samples(X[:8])).all()
    draws = vae.sample(2, random_state=0, decode="draw")
    assert draws.shape == (2, 64) and np.array_equal(draws, np.rint(draws))


@pytest.mark.parametrize("prior", ["normal", "student_t", "mixture", "vamp"])
def test_every_prior_with_mlp_and_ladder(data, prior):
    X = data["unit"]
    for architecture in ("mlp", "ladder"):
        vae = VAETransformer(architecture=architecture, prior=prior, max_iter=1, random_state=0)
        vae.fit(X)
        assert np.isfinite(vae.score(X[:8]))
        assert vae.sample(3, random_state=0).shape == (3, 64)
