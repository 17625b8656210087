"""The models that learn from labels: ConditionalVAETransformer and AuxiliaryClassifierVAE."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from _kernels import expected_order_failures
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch.nn import functional as F

from skvae import AuxiliaryClassifierVAE, ConditionalVAETransformer, VAETransformer
from skvae._model import CommonNoise, VAEModule
from skvae.base import Architecture
from skvae_plugins.mlp import MLP


def expected_failures(estimator):
    """The row-order checks on some CPUs; and the classes check of a semi-supervised classifier.

    ``check_classifiers_classes`` fits a binary problem labelled [-1, 1];
    -1 marks an unlabelled row here (scikit-learn's semi-supervised
    convention), and scikit-learn exempts its own semi-supervised
    classifiers (LabelSpreading, LabelPropagation, SelfTrainingClassifier)
    from those labels by name.
    """
    failures = dict(expected_order_failures(estimator))
    if isinstance(estimator, AuxiliaryClassifierVAE):
        failures["check_classifiers_classes"] = (
            "-1 marks unlabelled rows (semi-supervised convention); scikit-learn exempts "
            "its semi-supervised classifiers from the check's [-1, 1] labels by name"
        )
    return failures


@parametrize_with_checks(
    [
        ConditionalVAETransformer(max_iter=5),
        # 25 epochs of 3 steps: the classifier checks want > 83% accuracy on blobs.
        AuxiliaryClassifierVAE(max_iter=25),
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_the_classes_check_passes_with_labels_other_than_minus_one():
    """What check_classifiers_classes tests, with the binary labels [0, 1] instead of [-1, 1]."""
    from sklearn.datasets import make_blobs
    from sklearn.preprocessing import StandardScaler

    X, y = make_blobs(n_samples=30, random_state=0, cluster_std=0.1)
    X = StandardScaler().fit_transform(X)
    for labels in (np.array(["one", "two", "three"]), np.array([0, 1, 2]), np.array([7, 3, 5])):
        for classes, rows in ((labels, slice(None)), (labels[:2], y != 2)):
            names = labels[y[rows]]
            model = AuxiliaryClassifierVAE(max_iter=25, random_state=0).fit(X[rows], names)
            np.testing.assert_array_equal(model.classes_, np.unique(classes))
            assert set(model.predict(X[rows]).tolist()) <= set(classes.tolist())


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def digits_classifier(digits):
    """A classifier of real digits, to judge generated ones."""
    X, y = digits
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture(scope="module")
def cvae(digits):
    X, y = digits
    return ConditionalVAETransformer(
        n_components=8, max_iter=8, batch_size=32, random_state=0
    ).fit(X, y)


@pytest.fixture(scope="module")
def acvae(digits):
    X, y = digits
    return AuxiliaryClassifierVAE(
        n_components=8, max_iter=10, batch_size=32, random_state=0
    ).fit(X[:1400], y[:1400])


# ----------------------------------------------------------------------- CVAE
def test_cvae_generates_the_chosen_class(cvae, digits_classifier):
    labels = np.repeat(cvae.classes_, 20)
    samples = cvae.sample(len(labels), random_state=0, y=labels)
    assert samples.shape == (200, 64)
    # Chance is 10%.
    assert np.mean(digits_classifier.predict(samples) == labels) > 0.5
    # One label for all samples.
    sevens = cvae.sample(30, random_state=1, y=7)
    assert np.mean(digits_classifier.predict(sevens) == 7) > 0.5


def test_cvae_transform_with_and_without_labels(cvae, digits):
    X, y = digits
    Z_unknown = cvae.transform(X[:40])
    Z_given = cvae.transform(X[:40], y[:40])
    assert Z_unknown.shape == Z_given.shape == (40, 8)
    assert Z_given.dtype == np.float32
    assert not np.allclose(Z_unknown, Z_given)
    np.testing.assert_array_equal(Z_given, cvae.transform(X[:40], y[:40]))
    # One label for every row is the same as that label repeated.
    np.testing.assert_array_equal(cvae.transform(X[:5], 3), cvae.transform(X[:5], [3] * 5))
    # Decoding with the labels reconstructs better than with wrong labels.
    right = cvae.inverse_transform(Z_given, y[:40])
    wrong = cvae.inverse_transform(Z_given, (y[:40] + 5) % 10)
    assert np.mean((right - X[:40]) ** 2) < np.mean((wrong - X[:40]) ** 2)


def test_cvae_true_label_scores_higher_than_a_wrong_one(cvae, digits):
    X, y = digits
    true = cvae.score_samples(X[:300], y[:300])
    wrong = cvae.score_samples(X[:300], (y[:300] + 1) % 10)
    assert true.shape == (300,)
    assert true.mean() > wrong.mean() + 1.0
    assert cvae.score(X[:300], y[:300]) == pytest.approx(true.mean())
    # Without labels: the unconditional model, in between.
    unknown = cvae.score_samples(X[:300])
    assert wrong.mean() < unknown.mean() < true.mean()


def test_label_dropout_really_drops_labels(monkeypatch, digits_small):
    X, y = digits_small
    seen = {"train": [], "validation": []}
    original = VAEModule.loss

    def recording_loss(self, x, noise, *args, c=None, **kwargs):
        part = "validation" if torch.is_inference_mode_enabled() else "train"
        seen[part].append((c.abs().sum(dim=1) == 0).float())
        return original(self, x, noise, *args, c=c, **kwargs)

    monkeypatch.setattr(VAEModule, "loss", recording_loss)
    ConditionalVAETransformer(
        label_dropout=0.25, max_iter=10, early_stopping=True, n_iter_no_change=20, random_state=0
    ).fit(X, y)
    dropped = torch.cat(seen["train"])
    assert dropped.numel() == 10 * 270
    assert 0.2 < float(dropped.mean()) < 0.3
    assert float(torch.cat(seen["validation"]).sum()) == 0  # never in validation

    seen["train"].clear()
    ConditionalVAETransformer(label_dropout=0.0, max_iter=2, random_state=0).fit(X, y)
    assert float(torch.cat(seen["train"]).sum()) == 0


def test_cvae_any_hashable_labels(digits_small):
    X, y = digits_small
    words = "zero one two three four five six seven eight nine".split()
    names = np.array(words, dtype=object)[y]
    model = ConditionalVAETransformer(max_iter=2, random_state=0).fit(X, names)
    assert sorted(model.classes_) == sorted(set(names))
    assert model.sample(3, random_state=0, y="seven").shape == (3, 64)
    assert model.transform(X[:4], names[:4]).shape == (4, 2)
    with pytest.raises(ValueError, match="not seen in fit"):
        model.sample(2, y=7)


def test_cvae_in_a_pipeline(digits_small):
    X, y = digits_small
    pipe = make_pipeline(
        ConditionalVAETransformer(n_components=4, max_iter=5, random_state=0),
        LogisticRegression(max_iter=200),
    )
    assert pipe.fit(X, y).predict(X[:7]).shape == (7,)


# ------------------------------------------------------------------ ACVAE
def test_acvae_predicts_well_above_chance(acvae, digits):
    X, y = digits
    X_test, y_test = X[1400:], y[1400:]
    assert accuracy_score(y_test, acvae.predict(X_test)) > 0.7  # chance: 0.1
    proba = acvae.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(acvae.classes_[proba.argmax(axis=1)], acvae.predict(X_test))
    np.testing.assert_allclose(np.exp(acvae.predict_log_proba(X_test)), proba)
    # score is the accuracy (ClassifierMixin); score_samples is still the ELBO.
    assert acvae.score(X_test, y_test) == accuracy_score(y_test, acvae.predict(X_test))
    elbo = acvae.score_samples(X_test)
    assert elbo.shape == (len(X_test),) and np.all(elbo < 0)


def test_acvae_loss_includes_the_weighted_cross_entropy(acvae, digits):
    X, y = digits
    module = acvae.module_
    x = torch.as_tensor(X[:64])
    labels = torch.as_tensor(y[:64])
    device = torch.device("cpu")
    with torch.no_grad():
        loss, nll, kl, extras = module.loss(
            x, CommonNoise(1, device, seed=3), c=F.one_hot(labels, 10).float()
        )
        ref_nll, ref_kl = module.terms(x, CommonNoise(1, device, seed=3))
        ce = F.cross_entropy(module.classifier(x), labels, reduction="none")
    torch.testing.assert_close(extras["classification"], ce)
    torch.testing.assert_close(nll, ref_nll)
    torch.testing.assert_close(loss, (ref_nll + ref_kl + 10.0 * ce).mean())
    # The history adds up the same terms.
    for record in acvae.history_:
        expected = record["reconstruction"] + record["kl"] + 10.0 * record["classification"]
        assert record["loss"] == pytest.approx(expected, rel=1e-4)
    assert acvae.history_[-1]["classification"] < acvae.history_[0]["classification"]


def test_acvae_generates_the_chosen_class(acvae, digits_classifier):
    labels = np.repeat(acvae.classes_, 20)
    samples = acvae.sample(len(labels), random_state=0, y=labels)
    assert np.mean(digits_classifier.predict(samples) == labels) > 0.5
    # Without y, each sample's class is drawn from class_prior_.
    free = acvae.sample(200, random_state=0)
    np.testing.assert_array_equal(free, acvae.sample(200, random_state=0))
    assert len(np.unique(acvae.predict(free))) >= 5
    # The seed's picture: one z with each class part.
    z = np.random.RandomState(0).normal(size=(1, 8)).repeat(10, axis=0)
    grid = acvae.inverse_transform(z, y=acvae.classes_)
    assert np.sum(digits_classifier.predict(grid) == acvae.classes_) >= 6


def test_acvae_transform_needs_no_labels(acvae, digits):
    X, _ = digits
    Z = acvae.transform(X[:10])
    assert Z.shape == (10, 8)
    assert acvae.inverse_transform(Z).shape == (10, 64)  # class part: class_prior_
    assert acvae.get_feature_names_out().tolist()[:2] == [
        "auxiliaryclassifiervae0",
        "auxiliaryclassifiervae1",
    ]


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("Estimator", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_labels_are_required_and_checked(Estimator, digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match="requires y to be passed"):
        Estimator(max_iter=1).fit(X)
    with pytest.raises(ValueError, match="Unknown label type"):
        Estimator(max_iter=1).fit(X, X[:, 10] + 0.5)
    model = Estimator(max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"labels not seen in fit: \[11\].*classes_ = \[0, 1"):
        model.sample(2, y=11)
    with pytest.raises(ValueError, match="one label or an array of 3 labels"):
        model.sample(3, y=[1, 2])
    with pytest.raises(ValueError, match="not seen in fit"):
        model.inverse_transform(np.zeros((2, 2)), y=[1, 12])
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        model.sample(0, y=1)


def test_cvae_unknown_label_at_transform(cvae, digits):
    X, _ = digits
    with pytest.raises(ValueError, match=r"y contains labels not seen in fit: \['cat'\]"):
        cvae.transform(X[:2], ["cat", "cat"])
    with pytest.raises(ValueError, match="one label or an array of 2 labels"):
        cvae.score_samples(X[:2], [1, 2, 3])


class _Unconditional(Architecture):
    """An architecture with the three-argument build only."""

    name = "unconditional_test"

    def build(self, n_features, n_components, n_outputs):
        return MLP(hidden_sizes=(8,)).build(n_features, n_components, n_outputs)


@pytest.mark.parametrize("Estimator", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_architecture_that_cannot_condition(Estimator, digits_small):
    X, y = digits_small
    model = Estimator(architecture=_Unconditional(), max_iter=1)
    message = r"'unconditional_test' \(_Unconditional\) cannot condition"
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
    assert not hasattr(model, "classes_")  # fit is all or nothing
    # The plain VAE still builds it with three arguments.
    VAETransformer(architecture=_Unconditional(), max_iter=1).fit(X)
    with pytest.raises(ValueError, match="cannot condition"):
        _Unconditional().build_conditional(64, 2, 64, encoder_conditions=3)


@pytest.mark.parametrize("Estimator", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_partial_fit_and_warm_start_keep_the_classes(Estimator, digits_small):
    X, y = digits_small
    low = y < 5
    model = Estimator(max_iter=2, random_state=0)
    model.partial_fit(X[low], y[low], classes=np.arange(10))
    np.testing.assert_array_equal(model.classes_, np.arange(10))
    model.partial_fit(X[~low], y[~low])
    assert model.n_iter_ == 2
    np.testing.assert_allclose(model.class_prior_, np.bincount(y, minlength=10) / len(y))
    before = {k: v.clone() for k, v in model.module_.state_dict().items()}
    with pytest.raises(ValueError, match="not seen in fit"):
        model.partial_fit(X[:3], [1, 2, 42])
    with pytest.raises(ValueError, match="differs from the fitted classes_"):
        model.partial_fit(X, y, classes=np.arange(5))
    assert model.n_iter_ == 2
    for key, value in model.module_.state_dict().items():
        torch.testing.assert_close(value, before[key])
    # Without classes, the first call takes the labels it sees.
    assert len(clone(model).partial_fit(X[low], y[low]).classes_) == 5
    warm = Estimator(max_iter=1, warm_start=True, random_state=0).fit(X[low], y[low])
    with pytest.raises(ValueError, match="not seen in fit"):
        warm.fit(X, y)
    assert warm.fit(X[low], y[low]).n_iter_ == 2


# ------------------------------------------------------------------ pickling
@pytest.mark.parametrize("Estimator", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_pickle_round_trip(Estimator, digits_small):
    X, y = digits_small
    model = Estimator(
        n_components=3, architecture=MLP(hidden_sizes=(16,)), max_iter=2, random_state=0
    ).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.module_.config == model.module_.config
    np.testing.assert_array_equal(restored.classes_, model.classes_)
    np.testing.assert_array_equal(restored.transform(X[:9]), model.transform(X[:9]))
    np.testing.assert_array_equal(restored.score_samples(X[:9]), model.score_samples(X[:9]))
    np.testing.assert_array_equal(
        restored.sample(4, random_state=0, y=y[:4]), model.sample(4, random_state=0, y=y[:4])
    )
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(restored.predict_proba(X[:9]), model.predict_proba(X[:9]))
    else:
        np.testing.assert_array_equal(
            restored.transform(X[:9], y[:9]), model.transform(X[:9], y[:9])
        )
    # Training goes on after unpickling, as it would have without.
    model.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_array_equal(restored.transform(X[:9]), model.transform(X[:9]))
