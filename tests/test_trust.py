"""Silent failures made loud: divergence at the end, the likelihood's domain at
inference, inference during a fit in another thread, Ctrl-C, convergence and
scale warnings, checkpoint paths, counts and devices."""

import errno
import threading
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from skvae import (
    AuxiliaryClassifierVAE, ConditionalVAETransformer, VAEImputer, VAEOutlierDetector,
    VAETransformer,
)
from skvae import _checkpoint, _engine

FAST = dict(max_iter=2, batch_size=64, random_state=0)


def _weights(vae):
    return {k: v.detach().clone() for k, v in vae.module_.state_dict().items()}


# ------------------------------------------------------- divergence at the end
def test_divergence_in_the_last_epoch_is_caught(digits):
    """One batch: the loss is computed before the only step, which blows up."""
    X = digits[0][:100]
    vae = VAETransformer(max_iter=1, learning_rate=1e30, likelihood="gaussian", random_state=0)
    with pytest.raises(FloatingPointError, match="first training rows became nan.*epoch 1"):
        vae.fit(X)
    assert not hasattr(vae, "module_")  # nothing half-fitted
    with pytest.raises(FloatingPointError, match="first training rows"):
        VAETransformer(learning_rate=1e30, likelihood="gaussian", random_state=0).partial_fit(X)


def _blow_up_at_the_end_of_epoch(monkeypatch, epoch, steps):
    """Make the weights huge (finite) at the last step of the given (1-based) epoch."""
    original = _engine.Trainer.train_epoch
    calls = []

    def train_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) != epoch:
            return original(self, *args, **kwargs)
        done = []

        def blow_up(optimizer, args, kwargs):
            done.append(1)
            if len(done) == steps:
                with torch.no_grad():
                    for parameter in self.module.parameters():
                        parameter.mul_(1e30)

        hook = self.optimizer.register_step_post_hook(blow_up)
        try:
            return original(self, *args, **kwargs)
        finally:
            hook.remove()

    monkeypatch.setattr(_engine.Trainer, "train_epoch", train_epoch)
    return calls


def test_restore_also_covers_outputs_that_overflow(digits, monkeypatch):
    """Finite weights whose outputs overflow: restored and trained again at half the rate."""
    X = digits[0][:200]
    # The last step of epoch 2 (200 rows in batches of 64: 4 steps) makes huge weights.
    calls = _blow_up_at_the_end_of_epoch(monkeypatch, epoch=2, steps=4)
    vae = VAETransformer(max_iter=2, batch_size=64, on_divergence="restore", random_state=0)
    with pytest.warns(RuntimeWarning, match="first training rows became"):
        vae.fit(X)
    assert len(calls) == 3 and vae.n_iter_ == 2
    assert "first training rows" in vae.history_[-1]["divergences"][0]
    assert all(torch.isfinite(p).all() for p in vae.module_.parameters())
    assert np.isfinite(vae.transform(X)).all() and np.isfinite(vae.score_samples(X)).all()
    assert np.isfinite(vae.sample(20, random_state=0)).all()


def test_a_run_stopped_early_checks_the_outputs_of_its_last_epoch(digits, monkeypatch):
    """Under on_divergence="raise" only the last epoch is probed: a run that a
    callback stops before max_iter (here the training-loss rule, after epoch 2)
    is probed when it ends, and finite weights with overflowing outputs raise."""
    X = digits[0][:200]
    calls = _blow_up_at_the_end_of_epoch(monkeypatch, epoch=2, steps=4)
    vae = VAETransformer(max_iter=6, batch_size=64, tol=1e9, n_iter_no_change=1,
                         likelihood="gaussian", random_state=0)
    with pytest.raises(FloatingPointError, match="first training rows became .* at epoch 2"):
        vae.fit(X)
    assert len(calls) == 2 and not hasattr(vae, "module_")


@pytest.mark.parametrize("on_divergence, probes", [("raise", 1), ("restore", 4)])
def test_the_probe_runs_once_a_fit_unless_divergences_are_restored(
    digits, monkeypatch, on_divergence, probes
):
    original = _engine.Trainer._probe_loss
    calls = []

    def probe_loss(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(_engine.Trainer, "_probe_loss", probe_loss)
    VAETransformer(on_divergence=on_divergence, **{**FAST, "max_iter": 4}).fit(digits[0][:200])
    assert len(calls) == probes


# --------------------------------------------------- the domain at inference
@pytest.fixture(scope="module")
def bernoulli_vae(digits):
    return VAETransformer(**FAST).fit(digits[0][:300])


@pytest.mark.parametrize(
    "call",
    [
        lambda vae, X: vae.transform(X),
        lambda vae, X: vae.score_samples(X),
        lambda vae, X: vae.score_samples(X, method="iwae", n_importance=2),
        lambda vae, X: vae.score(X),
        lambda vae, X: vae.log_likelihood(X, n_importance=2),
        lambda vae, X: vae.kl_per_dimension(X),
        lambda vae, X: vae.active_units(X),
    ],
    ids=["transform", "score_samples", "iwae", "score", "log_likelihood", "kl", "active_units"],
)
@pytest.mark.parametrize("shift", ["times16", "minus_half"])
def test_inference_checks_the_likelihoods_domain(bernoulli_vae, digits, call, shift):
    X = digits[0][:50]
    bad = 16 * X if shift == "times16" else X - 0.5
    with pytest.raises(ValueError) as fit_error:
        VAETransformer(**FAST, likelihood="bernoulli").fit(bad)
    with pytest.raises(ValueError) as error:
        call(bernoulli_vae, bad)
    assert str(error.value) == str(fit_error.value)  # the same message as fit's
    assert "needs data in [0, 1]" in str(error.value)


def test_inference_on_a_memmap_checks_the_domain_batch_by_batch(bernoulli_vae, digits, tmp_path):
    X = np.tile(digits[0], (2, 1))[:2100]  # three inference batches
    X[2050, 3] = 2.0  # in the last one
    path = tmp_path / "X.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\].*to 2"):
        bernoulli_vae.transform(np.load(path, mmap_mode="r"))


def test_conditional_models_check_the_domain(digits):
    X, y = digits[0][:200], digits[1][:200]
    cvae = ConditionalVAETransformer(**FAST).fit(X, y)
    aux = AuxiliaryClassifierVAE(**FAST).fit(X, y)
    for call in (
        lambda: cvae.transform(16 * X),
        lambda: cvae.score_samples(16 * X, y),
        lambda: aux.predict(X - 0.5),
        lambda: aux.predict_proba(16 * X),
    ):
        with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
            call()


# ------------------------------------- inference during a fit in another thread
def test_inference_during_a_fit_in_another_thread_changes_no_training_state(digits):
    """transform from another thread mid-epoch waits for the epoch's end.

    Without the module lock, transform puts the batch-norm network in eval
    mode in the middle of the epoch: the steps after it use the running
    statistics and stop updating them, and the weights differ.
    """
    X = digits[0][:256]
    from skvae_plugins.conv import Conv

    params = dict(
        architecture=Conv(image_shape=(8, 8, 1), filters=(4,), batch_norm=True),
        batch_size=32,
        random_state=0,
        max_iter=1,
        warm_start=True,
    )

    def make():
        return VAETransformer(**params).fit(X)

    def refit(vae, inference=None):
        vae.set_params(max_iter=2)
        steps = []

        def hook(module, args):
            if module.training:
                steps.append(1)
                if inference is not None and len(steps) == 3:
                    inference["asked"].set()
                    # Give the other thread time to run transform now (it
                    # must not: it waits for the end of the epoch).
                    inference["done"].wait(timeout=1.0)

        norm = next(m for m in vae.module_.modules() if isinstance(m, torch.nn.BatchNorm2d))
        handle = norm.register_forward_pre_hook(hook)
        errors = []

        def fit():
            try:
                vae.fit(X)
            except BaseException as exc:  # seen by the main thread
                errors.append(exc)
                inference and inference["asked"].set()

        try:
            worker = threading.Thread(target=fit)
            worker.start()
            if inference is not None:
                assert inference["asked"].wait(timeout=60)
                inference["Z"] = vae.transform(X)
                inference["done"].set()
            worker.join(timeout=120)
        finally:
            handle.remove()
        assert not errors and not worker.is_alive() and vae.n_iter_ == 3
        return vae

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = refit(make())
        inference = {"asked": threading.Event(), "done": threading.Event()}
        disturbed = refit(make(), inference)
    assert np.isfinite(inference["Z"]).all()
    expected, got = _weights(reference), _weights(disturbed)
    for name in expected:
        np.testing.assert_allclose(
            got[name].numpy(), expected[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name
        )


# ------------------------------------------------------------------- Ctrl-C
def _interrupt_in_epoch(monkeypatch, epoch):
    original = _engine.Trainer.train_epoch
    calls = []

    def train_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_engine.Trainer, "train_epoch", train_epoch)


def test_ctrl_c_stops_a_grid_search(digits, monkeypatch):
    """A KeyboardInterrupt in the first candidate's fit ends the whole search."""
    X = digits[0][:200]
    fits = []
    original = VAETransformer.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VAETransformer, "fit", counting_fit)
    _interrupt_in_epoch(monkeypatch, 2)
    search = GridSearchCV(VAETransformer(**FAST), {"n_components": [2, 3]}, cv=2)
    with pytest.raises(KeyboardInterrupt):
        search.fit(X)
    assert len(fits) == 1
    assert not hasattr(search, "best_estimator_")


def test_ctrl_c_keeps_a_checkpoint_that_resumes_to_the_uninterrupted_fit(digits, tmp_path, monkeypatch):
    X = digits[0][:200]
    params = dict(max_iter=4, batch_size=64, random_state=0)
    uninterrupted = VAETransformer(**params).fit(X)
    path = tmp_path / "fit.skvae"
    _interrupt_in_epoch(monkeypatch, 3)
    vae = VAETransformer(**params, checkpoint_path=path)
    with pytest.raises(KeyboardInterrupt, match="n_iter_=2.*resume from the checkpoint"):
        vae.fit(X)
    assert vae.n_iter_ == 2 and np.isfinite(vae.transform(X)).all()
    monkeypatch.undo()
    resumed = VAETransformer(**params, checkpoint_path=path).fit(X)
    assert resumed.n_iter_ == 4
    expected = _weights(uninterrupted)
    for name, value in _weights(resumed).items():  # same process, same kernels
        assert torch.equal(value, expected[name]), name


# --------------------------------------------------------------- convergence
@pytest.mark.parametrize("estimator", [VAETransformer, VAEOutlierDetector, VAEImputer])
def test_convergence_warning_when_max_iter_ends_while_improving(digits, estimator):
    X = digits[0][:200]
    with pytest.warns(ConvergenceWarning, match="max_iter=2") as seen:
        estimator(**FAST).fit(X)
    # The warning names the user's line, however deep in skvae it was raised.
    assert {w.filename for w in seen if w.category is ConvergenceWarning} == {__file__}


def test_no_convergence_warning_after_an_early_stop_or_partial_fit(digits):
    X = digits[0][:200]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # A huge tol: no epoch counts as an improvement; stops after 2.
        vae = VAETransformer(max_iter=50, n_iter_no_change=2, tol=1e9, random_state=0).fit(X)
        assert vae.n_iter_ < 50
        VAETransformer(random_state=0).partial_fit(X)


# ---------------------------------------------------------------------- scale
def test_data_on_a_large_scale_warns_and_points_to_standard_scaler():
    X = load_wine().data.astype(np.float32)
    for likelihood in ("gaussian", "laplace", "student_t"):
        with pytest.warns(UserWarning, match=r"feature 12: mean 746.*StandardScaler"):
            VAETransformer(likelihood=likelihood, max_iter=1, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        scaled = StandardScaler().fit_transform(X)
        VAETransformer(likelihood="gaussian", max_iter=1, random_state=0).fit(scaled)


# ---------------------------------------------------------------- checkpoints
def _no_training(monkeypatch):
    def train_epoch(self, *args, **kwargs):
        raise AssertionError("training started before the checkpoint path was checked")

    monkeypatch.setattr(_engine.Trainer, "train_epoch", train_epoch)


@pytest.mark.parametrize(
    "make_path, message",
    [
        (lambda tmp: "", "is empty"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: tmp / "missing" / "fit.skvae", "does not exist"),
    ],
    ids=["empty", "folder", "missing-folder"],
)
def test_checkpoint_path_is_checked_before_training(digits, tmp_path, monkeypatch, make_path, message):
    _no_training(monkeypatch)
    vae = VAETransformer(**FAST, checkpoint_path=make_path(tmp_path))
    with pytest.raises(ValueError, match=f"checkpoint_path=.*{message}"):
        vae.fit(digits[0][:100])
    assert not hasattr(vae, "module_")


def test_unwritable_checkpoint_folder_is_refused_before_training(digits, tmp_path, monkeypatch):
    # The tests may run as root, for whom a read-only folder is writable:
    # make creating the file fail as it does for a user without permission.
    def mkstemp(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_checkpoint.tempfile, "mkstemp", mkstemp)
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match="checkpoint_path=.*cannot write.*Permission denied"):
        VAETransformer(**FAST, checkpoint_path=tmp_path / "fit.skvae").fit(digits[0][:100])


def test_checkpoint_write_failure_warns_and_keeps_the_model(digits, tmp_path, monkeypatch):
    from skvae import _io

    writes = []

    def disk_full(*args, **kwargs):
        writes.append(1)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".fit.skvae.x.tmp"))

    monkeypatch.setattr(_io, "save_checkpoint", disk_full)
    X = digits[0][:200]
    vae = VAETransformer(max_iter=3, batch_size=64, random_state=0, checkpoint_path=tmp_path / "fit.skvae")
    with pytest.warns(UserWarning, match=r"checkpoint_path=.*fit.skvae.*No space left") as caught:
        vae.fit(X)
    assert vae.n_iter_ == 3 and np.isfinite(vae.transform(X)).all()
    assert len(writes) == 1  # warned once, then no more attempts
    assert not any(".tmp" in str(w.message) for w in caught)
    monkeypatch.undo()
    plain = VAETransformer(max_iter=3, batch_size=64, random_state=0).fit(X)
    expected = _weights(plain)
    for name, value in _weights(vae).items():
        assert torch.equal(value, expected[name]), name


# ------------------------------------------------------------ counts, devices
def test_bools_are_not_counts(bernoulli_vae, digits):
    with pytest.raises(ValueError, match="n_samples must be a positive integer, got True"):
        bernoulli_vae.sample(True)
    with pytest.raises(ValueError, match="n_importance must be a positive integer"):
        bernoulli_vae.score_samples(digits[0][:5], n_importance=True)


@pytest.mark.parametrize("device", ["meta", "meta:0"])
def test_meta_device_says_which_devices_are_allowed(digits, device):
    with pytest.raises(ValueError, match=r"'meta.*use 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        VAETransformer(**FAST, device=device).fit(digits[0][:50])


def test_skvae_encode_refuses_data_outside_the_domain(bernoulli_vae, digits, tmp_path, capsys):
    import skvae
    from skvae.cli import main

    model = skvae.save(bernoulli_vae, tmp_path / "model.skvae")
    np.save(tmp_path / "bad.npy", 16 * digits[0][:50])
    out = tmp_path / "codes.npy"
    assert main(["encode", str(model), str(tmp_path / "bad.npy"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skvae: error:") and "needs data in [0, 1]" in err
    assert "Traceback" not in err and not out.exists()


def test_public_map_batches_validates_and_batches_like_transform(bernoulli_vae, digits):
    from skvae.base import map_batches

    X = digits[0][:1500]  # two inference batches
    means = map_batches(bernoulli_vae, lambda xb: bernoulli_vae.module_.encode(xb)[0], X, 2)
    np.testing.assert_array_equal(means, bernoulli_vae.transform(X))  # the same path
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        map_batches(bernoulli_vae, lambda xb: xb, 16 * X, 64)
    with pytest.raises(ValueError, match="features"):
        map_batches(bernoulli_vae, lambda xb: xb, X[:, :10], 10)
