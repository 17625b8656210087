"""Few labels: y == -1 marks an unlabelled row (scikit-learn's semi-supervised convention).

AuxiliaryClassifierVAE marginalises the label of an unlabelled row (Kingma
et al. 2014, model M2); ConditionalVAETransformer gives it the unknown
(all-zero) condition. See docs/semi_supervised.md.
"""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch.distributions import Bernoulli, Normal, kl_divergence

import skvae
from skvae import AuxiliaryClassifierVAE, ConditionalVAETransformer
from skvae._conditional import AuxiliaryClassifierModule, unlabelled_rows
from skvae._model import VAEModule
from skvae_plugins.mlp import MLP

SMALL = dict(n_components=3, architecture=MLP(hidden_sizes=(16,)), batch_size=64)


def hide_labels(y, per_class, seed=0):
    """y with all but ``per_class`` labels of each class replaced by -1."""
    rng = np.random.RandomState(seed)
    keep = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        keep[rng.choice(np.flatnonzero(y == label), per_class, replace=False)] = True
    return np.where(keep, y, -1), keep


@pytest.fixture(scope="module")
def semi(digits_small):
    """Digits (300 rows) with 3 labels per class, the rest -1."""
    X, y = digits_small
    y_semi, keep = hide_labels(y, 3)
    return X, y_semi, keep


@pytest.fixture(scope="module")
def acvae_semi(semi):
    X, y_semi, _ = semi
    return AuxiliaryClassifierVAE(max_iter=3, random_state=0, **SMALL).fit(X, y_semi)


@pytest.fixture(scope="module")
def acvae_labelled(digits_small):
    """A fully labelled fit: its encoder is q(z | x), without the label."""
    X, y = digits_small
    return AuxiliaryClassifierVAE(max_iter=2, random_state=0, **SMALL).fit(X, y)


# ---------------------------------------------------------------- the objective
def _by_hand(module, x, c, eps, beta):
    """The M2 loss of a batch, written out with torch.distributions.

    ``eps``: the noise of z, one block of rows per class when the encoder
    takes the label (q(z | x, y)), else one block.
    """
    logits = module.classifier(x)
    log_q = torch.log_softmax(logits, dim=-1)
    q = log_q.exp()
    rows, n_classes = q.shape

    def terms(j):  # -log p(x | z, onehot(j)) + beta KL, z ~ q(z | x[, j])
        onehot = torch.eye(n_classes)[[j] * rows]
        if module.encoder_label:
            mean, log_var = module.net.encode(x, onehot)
            noise = eps[j * rows:(j + 1) * rows]
        else:
            mean, log_var = module.net.encode(x)
            noise = eps
        z = mean + torch.exp(0.5 * log_var) * noise
        kl = kl_divergence(Normal(mean, torch.exp(0.5 * log_var)), Normal(0.0, 1.0)).sum(-1)
        params = module.net.decode(z, onehot)
        return -Bernoulli(logits=params, validate_args=False).log_prob(x).sum(-1) + beta * kl

    per_class = torch.stack([terms(j) for j in range(n_classes)], dim=1)
    unlabelled = (q * per_class).sum(-1) + (q * log_q).sum(-1)  # -U(x)
    ce = -(c * log_q).sum(-1)
    labelled = (c * per_class).sum(-1) + module.classifier_weight * ce  # -L(x, y) + alpha CE
    is_unlabelled = c.sum(-1) == 0
    return torch.where(is_unlabelled, unlabelled, labelled).mean()


def _batch(model, X, y_semi, rows=40):
    """A batch of rows and their conditions (all-zero for an unlabelled row)."""
    x = torch.as_tensor(X[:rows])
    c = torch.as_tensor(model._conditions_of(np.where(y_semi[:rows] < 0, 0, y_semi[:rows]), rows))
    c[torch.as_tensor(y_semi[:rows] == -1)] = 0.0
    assert 0 < int((c.sum(-1) == 0).sum()) < rows  # both kinds in the batch
    return x, c


@pytest.mark.parametrize("beta", [1.0, 0.5])
@pytest.mark.parametrize("encoder_label", [True, False])
def test_loss_is_the_enumerated_m2_objective(acvae_semi, acvae_labelled, semi, beta,
                                             encoder_label):
    X, y_semi, _ = semi
    model = acvae_semi if encoder_label else acvae_labelled
    module = model.module_
    assert module.encoder_label == encoder_label  # set by the fit, from its data
    x, c = _batch(model, X, y_semi)
    eps = torch.randn(400 if encoder_label else 40, 3, generator=torch.Generator().manual_seed(1))
    semi_supervised = module.semi_supervised
    module.semi_supervised = True  # a fully labelled fit's module, given unlabelled rows
    try:
        with torch.no_grad():
            loss = module.loss(x, lambda shape: eps[:shape[0]], beta=beta, c=c)[0]
            expected = _by_hand(module, x, c, eps, beta)
    finally:
        module.semi_supervised = semi_supervised
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-4)


def test_unlabelled_rows_change_the_loss_and_train_the_classifier(acvae_semi, semi):
    X, y_semi, _ = semi
    module = acvae_semi.module_
    x = torch.as_tensor(X[:32])
    eps = torch.zeros(320, 3)
    unlabelled = torch.zeros(32, 10)
    # An all-unlabelled batch: the classifier gets a gradient from the
    # marginalised label (its expected reconstruction and its entropy).
    module.zero_grad()
    module.loss(x, lambda shape: eps[:shape[0]], c=unlabelled)[0].backward()
    grads = [p.grad for p in module.classifier.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    module.zero_grad()
    # The loss is not the one the module computes without the M2 term.
    with torch.no_grad():
        m2 = module.loss(x, lambda shape: eps[:shape[0]], c=unlabelled)[0]
        module.semi_supervised = False
        try:
            plain = module.loss(x, lambda shape: eps[:shape[0]], c=unlabelled)[0]
        finally:
            module.semi_supervised = True
    assert abs(float(m2 - plain)) > 1e-3


def test_labelled_rows_decode_their_one_hot_label(acvae_semi, digits_small):
    """M2: a labelled row's decoder (and encoder) get its one-hot label, not the softmax.

    So, with no cross-entropy weight, an all-labelled batch gives the
    classifier no gradient; the plain (fully labelled) objective, whose
    decoder sees the classifier's softmax, does give it one.
    """
    X, y = digits_small
    module = acvae_semi.module_
    x = torch.as_tensor(X[:50])
    c = torch.as_tensor(acvae_semi._conditions_of(y[:50], 50))
    eps = torch.randn(500, 3, generator=torch.Generator().manual_seed(2))
    weight = module.classifier_weight
    module.classifier_weight = 0.0

    def classifier_gradient():
        module.zero_grad()
        module.loss(x, lambda shape: eps[:shape[0]], c=c)[0].backward()
        return sum(float(p.grad.abs().sum()) for p in module.classifier.parameters()
                   if p.grad is not None)

    try:
        assert classifier_gradient() == 0.0
        module.semi_supervised = False
        assert classifier_gradient() > 0.0
    finally:
        module.semi_supervised = True
        module.classifier_weight = weight
        module.zero_grad()
    # The cross-entropy itself is the same on both paths.
    with torch.no_grad():
        m2 = module.loss(x, lambda shape: eps[:shape[0]], c=c)
        module.semi_supervised = False
        try:
            plain = module.loss(x, lambda shape: eps[:shape[0]], c=c)
        finally:
            module.semi_supervised = True
    torch.testing.assert_close(m2[3]["classification"], plain[3]["classification"])


def test_encoder_takes_the_label_only_in_semi_supervised_fits(acvae_semi, acvae_labelled, semi):
    """q(z | x, y) for a fit with unlabelled rows; transform(X) gives it q(y | x)."""
    X, _, _ = semi
    module = acvae_semi.module_
    assert module.encoder_label and not acvae_labelled.module_.encoder_label
    assert module.net.encoder[0].in_features == X.shape[1] + 10
    assert acvae_labelled.module_.net.encoder[0].in_features == X.shape[1]
    x = torch.as_tensor(X[:20])
    with torch.no_grad():
        q = torch.softmax(module.classifier(x), dim=-1)
        expected = module.net.encode(x, q)[0].numpy()
    np.testing.assert_allclose(acvae_semi.transform(X[:20]), expected, rtol=1e-4, atol=1e-5)


def test_the_fit_trains_the_m2_objective(monkeypatch, semi, digits_small):
    X, y_semi, _ = semi
    calls = []
    original = AuxiliaryClassifierModule.semi_supervised_terms

    def counting(self, *args, **kwargs):
        if not torch.is_inference_mode_enabled():  # training steps, not the probe
            calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AuxiliaryClassifierModule, "semi_supervised_terms", counting)
    model = AuxiliaryClassifierVAE(max_iter=2, random_state=0, labelled_share=None,
                                   **SMALL).fit(X, y_semi)
    assert len(calls) == 2 * 5  # 300 rows in batches of 64: 5 steps per epoch
    calls.clear()
    AuxiliaryClassifierVAE(max_iter=2, random_state=0, **SMALL).fit(X, y_semi)
    assert len(calls) == 2 * 6  # 270 unlabelled rows and 90 labelled draws: 6 steps
    # Fully labelled data: the labelled objective only, no enumeration.
    calls.clear()
    _, y = digits_small
    labelled = AuxiliaryClassifierVAE(max_iter=2, random_state=0, **SMALL).fit(X, y)
    assert not labelled.module_.semi_supervised and not labelled.module_.encoder_label
    assert calls == []
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]


def test_unlabelled_data_improve_accuracy(digits):
    """3 labels per class: the unlabelled rows make the classifier better (seeded).

    The labelled-only model gets as many epochs of its 30 rows as steps as
    the semi-supervised one (more steps than it, in fact): its deficit is
    the missing unlabelled rows, not too short a training.
    """
    X, y = digits
    X_train, y_train, X_test, y_test = X[:600], y[:600], X[1200:], y[1200:]
    y_semi, keep = hide_labels(y_train, 3, seed=0)
    # A small code and beta=2 leave the class to the label part of the decoder.
    settings = dict(n_components=4, beta=2.0, classifier_weight=120.0, batch_size=128,
                    learning_rate=3e-3, random_state=0)
    labelled_only = AuxiliaryClassifierVAE(max_iter=800, **settings).fit(
        X_train[keep], y_train[keep]
    )
    semi_supervised = AuxiliaryClassifierVAE(max_iter=80, **settings).fit(X_train, y_semi)
    assert semi_supervised.score(X_test, y_test) > labelled_only.score(X_test, y_test) + 0.01


# ------------------------------------------------------------- the labelled share
def _epoch_order(conditions, share, seed=0):
    from skvae._data import TrainingData

    data = TrainingData(np.zeros((len(conditions), 2), np.float32), conditions,
                        labelled_share=share).to("cpu")
    return data.epoch_order(torch.Generator().manual_seed(seed)).numpy()


def test_an_epoch_repeats_the_labelled_rows_up_to_their_share():
    conditions = np.zeros((100, 3), np.float32)
    conditions[np.arange(7), np.arange(7) % 3] = 1.0  # rows 0-6 labelled
    order = _epoch_order(conditions, 0.25)
    unlabelled, labelled = order[order >= 7], order[order < 7]
    assert sorted(unlabelled) == list(range(7, 100))  # every unlabelled row once
    assert len(labelled) == round(0.25 / 0.75 * 93)  # 31: a quarter of the epoch
    counts = np.bincount(labelled, minlength=7)
    assert counts.max() - counts.min() <= 1  # each labelled row in turn
    assert not np.array_equal(order, np.sort(order))  # shuffled
    assert not np.array_equal(order, _epoch_order(conditions, 0.25, seed=1))
    # None, a share the labelled rows already have, or no unlabelled row: a permutation.
    every_row_labelled = np.tile(np.eye(3, dtype=np.float32), (34, 1))[:100]
    for share, c in [(None, conditions), (0.05, conditions), (0.5, every_row_labelled)]:
        assert sorted(_epoch_order(c, share)) == list(range(100))


def test_the_labelled_share_puts_labels_in_the_batches(monkeypatch, semi):
    """What the steps see: a quarter labelled rows by default, 10 % without it."""
    from skvae._data import TrainingData

    X, y_semi, keep = semi
    seen = []
    original = TrainingData.batch

    def batch(self, index):
        x, c = original(self, index)
        if not isinstance(index, slice):  # a training step's rows, not the probe's
            seen.append((len(c), int((c.sum(-1) != 0).sum())))
        return x, c

    monkeypatch.setattr(TrainingData, "batch", batch)
    for share, expected in [(0.25, 0.25), (0.5, 0.5), (None, keep.mean())]:
        seen.clear()
        AuxiliaryClassifierVAE(max_iter=1, random_state=0, labelled_share=share,
                               **SMALL).fit(X, y_semi)
        rows, labelled = map(sum, zip(*seen))
        assert labelled / rows == pytest.approx(expected, abs=0.01)


# ------------------------------------------------------------- labels and classes
def test_classes_exclude_the_unlabelled_mark(acvae_semi, semi, digits_small):
    X, y_semi, keep = semi
    _, y = digits_small
    np.testing.assert_array_equal(acvae_semi.classes_, np.arange(10))
    np.testing.assert_array_equal(acvae_semi.class_count_, np.bincount(y[keep], minlength=10))
    np.testing.assert_allclose(acvae_semi.class_prior_, np.full(10, 0.1))
    assert -1 not in set(acvae_semi.predict(X).tolist())
    assert acvae_semi.predict_proba(X[:5]).shape == (5, 10)


def test_string_labels_with_unlabelled_rows(semi):
    X, y_semi, _ = semi
    words = np.array("zero one two three four five six seven eight nine".split(), dtype=object)
    names = np.where(y_semi >= 0, words[np.maximum(y_semi, 0)], -1).astype(object)
    assert unlabelled_rows(names).sum() == (y_semi == -1).sum()
    model = ConditionalVAETransformer(max_iter=1, random_state=0, **SMALL).fit(X, names)
    assert sorted(model.classes_) == sorted(words)
    with pytest.raises(ValueError, match="string '-1'.*object array"):
        ConditionalVAETransformer(max_iter=1).fit(X, names.astype(str))


@pytest.mark.parametrize("Estimator", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_errors(Estimator, semi):
    X, y_semi, _ = semi
    model = Estimator(max_iter=1, random_state=0, **SMALL)
    with pytest.raises(ValueError, match="no labelled row: all 300 entries are -1"):
        model.fit(X, np.full(len(X), -1))
    assert not hasattr(model, "classes_")  # all or nothing
    with pytest.raises(ValueError, match="no labelled row"):
        clone(model).partial_fit(X, np.full(len(X), -1))
    with pytest.raises(ValueError, match="classes contains -1"):
        clone(model).partial_fit(X, y_semi, classes=np.arange(-1, 10))
    fitted = model.fit(X, y_semi)
    if Estimator is AuxiliaryClassifierVAE:
        for call in (lambda: fitted.sample(2, y=-1),
                     lambda: fitted.inverse_transform(np.zeros((2, 3)), y=[1, -1])):
            with pytest.raises(ValueError, match="-1, the mark of an unlabelled training row"):
                call()


def test_iwae_refuses_unlabelled_rows(semi):
    X, y_semi, _ = semi
    with pytest.raises(ValueError, match="n_importance=4.*unlabelled rows"):
        AuxiliaryClassifierVAE(n_importance=4, max_iter=1, **SMALL).fit(X, y_semi)


@pytest.mark.parametrize("Estimator", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_partial_fit_with_unlabelled_rows(Estimator, semi, digits_small):
    X, y_semi, keep = semi
    _, y = digits_small
    model = Estimator(max_iter=3, random_state=0, **SMALL)
    # Classes known up front: a first batch without any label is fine.
    model.partial_fit(X[~keep], y_semi[~keep], classes=np.arange(10))
    np.testing.assert_allclose(model.class_prior_, np.full(10, 0.1))  # no label yet
    model.partial_fit(X, y_semi)
    model.partial_fit(X[~keep], y_semi[~keep])
    assert model.n_iter_ == 3
    np.testing.assert_array_equal(model.classes_, np.arange(10))
    np.testing.assert_array_equal(model.class_count_, np.bincount(y[keep], minlength=10))


# ------------------------------------------------------------------ the CVAE
def test_cvae_unlabelled_rows_train_the_unknown_condition(monkeypatch, semi):
    X, y_semi, _ = semi
    seen = []
    original = VAEModule.loss

    def recording_loss(self, x, noise, *args, c=None, **kwargs):
        if not torch.is_inference_mode_enabled():
            seen.append((x.clone(), c.clone()))
        return original(self, x, noise, *args, c=c, **kwargs)

    monkeypatch.setattr(VAEModule, "loss", recording_loss)
    ConditionalVAETransformer(label_dropout=0.0, max_iter=1, random_state=0, **SMALL).fit(
        X, y_semi
    )
    x = torch.cat([s[0] for s in seen])
    c = torch.cat([s[1] for s in seen])
    assert x.shape[0] == len(X)  # every row, labelled or not, is in the loss
    zero = c.abs().sum(dim=1) == 0
    assert int(zero.sum()) == int((y_semi == -1).sum())
    assert torch.all(c[~zero].sum(dim=1) == 1)


def test_cvae_inference_with_unlabelled_rows(semi):
    X, y_semi, _ = semi
    model = ConditionalVAETransformer(max_iter=2, random_state=0, **SMALL).fit(X, y_semi)
    y = y_semi[:30]
    some = y == -1
    assert 0 < some.sum() < 30
    Z = model.transform(X[:30], y)
    np.testing.assert_allclose(Z[some], model.transform(X[:30][some]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        Z[~some], model.transform(X[:30][~some], y[~some]), rtol=1e-4, atol=1e-5
    )
    scores = model.score_samples(X[:30], y)
    np.testing.assert_allclose(scores[some], model.score_samples(X[:30][some]),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        model.sample(3, random_state=0, y=-1), model.sample(3, random_state=0),
        rtol=1e-4, atol=1e-5,
    )


# ---------------------------------------------------- other data paths, model files
@pytest.mark.parametrize("Estimator", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_streamed_rows_with_unlabelled_rows(Estimator, semi, tmp_path):
    X, y_semi, _ = semi
    path = tmp_path / "rows.npy"
    np.save(path, X)
    rows = np.load(path, mmap_mode="r")
    in_memory = Estimator(max_iter=2, random_state=0, **SMALL).fit(X, y_semi)
    streamed = Estimator(max_iter=2, random_state=0, data_on_device=False, **SMALL).fit(
        rows, y_semi
    )
    np.testing.assert_allclose(
        streamed.transform(X[:20]), in_memory.transform(X[:20]), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("Estimator", [ConditionalVAETransformer, AuxiliaryClassifierVAE])
def test_missing_values_with_unlabelled_rows(Estimator, semi):
    X, y_semi, _ = semi
    X = X.copy()
    X[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
    model = Estimator(max_iter=2, random_state=0, missing_values=np.nan, **SMALL).fit(X, y_semi)
    assert np.isfinite(model.history_[-1]["loss"])
    assert np.all(np.isfinite(model.transform(X[:10])))


def test_model_file_round_trip(acvae_semi, semi, tmp_path):
    X, y_semi, _ = semi
    path = tmp_path / "semi.skvae"
    skvae.save(acvae_semi, path)
    loaded = skvae.load(path)
    np.testing.assert_array_equal(loaded.classes_, acvae_semi.classes_)
    np.testing.assert_array_equal(loaded.class_count_, acvae_semi.class_count_)
    np.testing.assert_allclose(
        loaded.predict_proba(X[:20]), acvae_semi.predict_proba(X[:20]), rtol=1e-4, atol=1e-6
    )
    assert loaded.module_.encoder_label  # the encoder's structure, q(z | x, y), kept
    np.testing.assert_allclose(
        loaded.transform(X[:20]), acvae_semi.transform(X[:20]), rtol=1e-4, atol=1e-5
    )
    # Training goes on from the file with unlabelled rows.
    loaded.partial_fit(X, y_semi)
    assert loaded.module_.semi_supervised and loaded.n_iter_ == acvae_semi.n_iter_ + 1
