"""Reliability: divergence, checkpoints and resume, Ctrl-C, early stopping, determinism."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import skvae
from skvae import ConditionalVAETransformer, VAETransformer
from skvae import _engine
from skvae._data import TrainingData


def _state(vae):
    """Everything but the torch objects, for comparisons."""
    return {
        k: v for k, v in vars(vae).items() if k not in ("module_", "optimizer_", "_generator")
    }


def _weights(vae):
    return {k: v.clone() for k, v in vae.module_.state_dict().items()}


def _assert_same_weights(a, b):
    wa, wb = a.module_.state_dict(), b.module_.state_dict()
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def _losses(vae):
    """The history without the timings."""
    return [{k: v for k, v in h.items() if k != "seconds"} for h in vae.history_]


def _count_epochs(monkeypatch):
    """Count the epochs trained from now on (calls of Trainer.train_epoch)."""
    original = _engine.Trainer.train_epoch
    calls = []

    def train_epoch(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_engine.Trainer, "train_epoch", train_epoch)
    return calls


def _checkpoint_state(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("model.json"))["checkpoint"]


# --------------------------------------------------------------------- divergence
def _poison_gradient_at_step(monkeypatch, step):
    """Make the gradients of training step ``step`` (1-based) NaN.

    Through clip_grad_norm_, which the trainer calls between backward() and
    the optimizer step when clip_grad_norm is set.
    """
    original = torch.nn.utils.clip_grad_norm_
    calls = []

    def clip(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        calls.append(1)
        if len(calls) == step:
            parameters[0].grad.fill_(float("nan"))
        return original(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)


# One training step per epoch: a poisoned last step leaves that epoch's
# loss finite and only the weights non-finite.
ONE_STEP = dict(batch_size=300, clip_grad_norm=1e6, learning_rate=1e-2, random_state=0)


def test_non_finite_gradient_is_caught_by_the_weights_check(digits_small, monkeypatch):
    X, _ = digits_small
    vae = VAETransformer(max_iter=5, **ONE_STEP)
    _poison_gradient_at_step(monkeypatch, 3)
    with pytest.raises(FloatingPointError) as excinfo:
        vae.fit(X)
    message = str(excinfo.value)
    assert "weights became non-finite" in message and "epoch 3" in message
    assert "Lower learning_rate" in message and "on_divergence='restore'" in message
    assert not hasattr(vae, "module_")  # clearly unfitted, as before the call


def test_non_finite_validation_loss_is_caught(digits_small, monkeypatch):
    X, _ = digits_small
    fitted = VAETransformer(max_iter=2, random_state=0).fit(X)
    before, weights = _state(fitted), _weights(fitted)
    original = _engine.Trainer.validation_loss
    calls = []

    def validation_loss(self, *args, **kwargs):
        calls.append(1)
        return math.nan if len(calls) == 2 else original(self, *args, **kwargs)

    monkeypatch.setattr(_engine.Trainer, "validation_loss", validation_loss)
    fitted.set_params(early_stopping=True, max_iter=4)
    with pytest.raises(FloatingPointError, match="validation loss became nan at epoch 2"):
        fitted.fit(X)
    fitted.set_params(early_stopping=False, max_iter=2)
    assert _state(fitted).keys() == before.keys() and fitted.history_ == before["history_"]
    for key, value in _weights(fitted).items():
        assert torch.equal(value, weights[key])


def test_restore_goes_back_to_the_last_good_epoch_and_halves_the_rate(digits_small, monkeypatch):
    X, _ = digits_small
    rate = ONE_STEP["learning_rate"]
    # The same run without the divergence: 2 epochs, then 3 at half the rate.
    expected = VAETransformer(max_iter=2, warm_start=True, **ONE_STEP).fit(X)
    expected.set_params(max_iter=3, learning_rate=rate / 2).fit(X)

    _poison_gradient_at_step(monkeypatch, 3)
    vae = VAETransformer(max_iter=5, on_divergence="restore", **ONE_STEP)
    with pytest.warns(RuntimeWarning, match="epoch 3.*restored the weights of epoch 2") as seen:
        vae.fit(X)
    # The warning names the user's line, not skvae's.
    assert {w.filename for w in seen if w.category is RuntimeWarning} == {__file__}
    assert vae.n_iter_ == 5 and [h["epoch"] for h in vae.history_] == [1, 2, 3, 4, 5]
    assert [h["learning_rate"] for h in vae.history_] == [rate] * 2 + [rate / 2] * 3
    notes = vae.history_[2]["divergences"]
    assert len(notes) == 1 and "weights became non-finite" in notes[0]
    assert all("divergences" not in h for i, h in enumerate(vae.history_) if i != 2)
    # Weights, optimizer state and random stream were all restored: the
    # retried epoch 3 is exactly the first half-rate epoch of `expected`.
    _assert_same_weights(vae, expected)
    np.testing.assert_array_equal(vae.transform(X), expected.transform(X))
    assert [h["loss"] for h in vae.history_] == [h["loss"] for h in expected.history_]


def test_restore_gives_up_after_a_bounded_number_of_halvings(digits_small):
    X, _ = digits_small
    vae = VAETransformer(
        max_iter=3, learning_rate=1e30, on_divergence="restore", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(FloatingPointError, match=f"halved the learning rate {_engine.MAX_LR_HALVINGS} times"):
            vae.fit(X)
    assert not hasattr(vae, "module_")


def test_divergence_checks_do_not_sync_with_the_host_per_step(digits_small, monkeypatch):
    """The finite checks and the restore snapshots read nothing back per step."""
    X, _ = digits_small
    calls = []
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith(("skvae", "skvae_plugins")):
                calls.append((_name, caller))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    epochs = 3
    VAETransformer(max_iter=epochs, batch_size=10, on_divergence="restore", random_state=0).fit(X)
    # One read per epoch (losses and the finite flag), and one for the check
    # that the weights the fit returns give finite outputs.
    assert len(calls) <= epochs + 1, calls


def test_log_variance_is_clamped():
    from skvae._model import LOG_VAR_MAX, LOG_VAR_MIN

    vae = VAETransformer(n_components=2, max_iter=1, random_state=0).fit(np.random.RandomState(0).rand(20, 3))
    net = vae.module_.net
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1e6)  # encoder outputs far outside any sane range
        _, log_var = vae.module_.encode(torch.full((4, 3), 1.0))
    assert float(log_var.min()) >= LOG_VAR_MIN and float(log_var.max()) <= LOG_VAR_MAX
    assert torch.isfinite(torch.exp(0.5 * log_var)).all()


# ------------------------------------------------------------------------- Ctrl-C
def _interrupt_at_step(monkeypatch, step):
    """Raise KeyboardInterrupt from inside the training loop, at step ``step``."""
    original = _engine.Trainer.loss
    calls = []

    def loss(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_engine.Trainer, "loss", loss)


def test_ctrl_c_keeps_the_last_completed_epoch(digits_small, monkeypatch):
    X, _ = digits_small
    params = dict(batch_size=100, random_state=0)  # 3 steps per epoch
    two_epochs = VAETransformer(max_iter=2, **params).fit(X)
    three_epochs = VAETransformer(max_iter=3, **params).fit(X)
    # Mid-epoch 3: its first step has already changed the weights.
    _interrupt_at_step(monkeypatch, 2 * 3 + 2)
    vae = VAETransformer(max_iter=10, **params)
    # Raised again once the estimator holds epoch 2: a script stops.
    with pytest.raises(KeyboardInterrupt, match=r"interrupted during epoch 3.*n_iter_=2"):
        vae.fit(X)
    monkeypatch.undo()
    assert vae.n_iter_ == 2 and len(vae.history_) == 2
    assert not vae.module_.training
    _assert_same_weights(vae, two_epochs)  # never half an epoch
    np.testing.assert_array_equal(vae.transform(X), two_epochs.transform(X))
    # The optimizer and the random stream are those of the end of epoch 2:
    # one more epoch gives the third epoch of an uninterrupted fit.
    vae.partial_fit(X)
    _assert_same_weights(vae, three_epochs)


def test_ctrl_c_through_train_epoch_on_the_third_call(digits_small, monkeypatch):
    X, _ = digits_small
    original = _engine.Trainer.train_epoch
    calls = []

    def train_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_engine.Trainer, "train_epoch", train_epoch)
    vae = VAETransformer(max_iter=10, random_state=0)
    with pytest.raises(KeyboardInterrupt, match="keeps the weights of the last completed epoch"):
        vae.fit(X)
    assert vae.n_iter_ == 2
    assert np.all(np.isfinite(vae.transform(X))) and np.isfinite(vae.score(X))


def test_ctrl_c_before_the_first_epoch_changes_nothing(digits_small, monkeypatch):
    X, _ = digits_small
    fitted = VAETransformer(max_iter=2, random_state=0).fit(X)
    before, weights = _state(fitted), _weights(fitted)
    _interrupt_at_step(monkeypatch, 2)
    fresh = VAETransformer(max_iter=5, random_state=1)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X)
    assert vars(fresh) == vars(VAETransformer(max_iter=5, random_state=1))
    monkeypatch.undo()
    _interrupt_at_step(monkeypatch, 2)
    fitted.set_params(random_state=1)
    with pytest.raises(KeyboardInterrupt):
        fitted.fit(X)
    fitted.set_params(random_state=0)
    assert _state(fitted).keys() == before.keys() and fitted.history_ == before["history_"]
    for key, value in _weights(fitted).items():
        assert torch.equal(value, weights[key])


# ---------------------------------------------------------------- early stopping
def _validation_loss_of(vae, X, batch_size):
    """The early-stopping objective of the estimator's current weights."""
    _, validation = TrainingData(X).split(vae.validation_fraction, vae._seed)
    trainer = _engine.Trainer(vae.module_, vae.optimizer_, vae._generator, batch_size)
    return trainer.validation_loss(validation.to(vae._device), 1.0, vae._seed + 1)


ES = dict(
    max_iter=100,
    learning_rate=1e-2,
    batch_size=32,
    early_stopping=True,
    validation_fraction=0.3,
    n_iter_no_change=3,
    tol=0.0,
    random_state=0,
)


def test_early_stopping_restores_the_best_weights(digits_small):
    X, _ = digits_small
    vae = VAETransformer(**ES).fit(X)
    val = [h["val_loss"] for h in vae.history_]
    best = int(np.argmin(val))
    assert best < len(val) - 1, "the last epoch must not be the best for this test"
    restored = _validation_loss_of(vae, X, ES["batch_size"])
    assert restored == pytest.approx(val[best], rel=1e-6, abs=0)
    assert restored != pytest.approx(val[-1], rel=1e-6, abs=0)


def test_ctrl_c_with_early_stopping_keeps_the_best_epoch(digits_small, monkeypatch):
    X, _ = digits_small
    full = VAETransformer(**ES).fit(X)
    stop = full.n_iter_
    # _loss calls per epoch: 7 training steps (300 - 90 held-out rows, by 32)
    # and 3 validation batches (90 rows).
    calls = math.ceil(210 / 32) + math.ceil(90 / 32)
    _interrupt_at_step(monkeypatch, (stop - 1) * calls + 1)  # in the last epoch
    vae = VAETransformer(**ES)
    with pytest.raises(KeyboardInterrupt, match=r"best epoch's weights.*n_iter_=" + str(stop - 1)):
        vae.fit(X)
    val = [h["val_loss"] for h in vae.history_]
    assert _validation_loss_of(vae, X, ES["batch_size"]) == pytest.approx(min(val), rel=1e-6)


# ------------------------------------------------------------------- checkpoints
_KILL_SCRIPT = r"""
import sys, time
import numpy as np
import torch
torch.set_num_threads(1)
from sklearn.datasets import load_digits
import skvae._engine as engine
from skvae import VAETransformer

path, log, params = sys.argv[1], sys.argv[2], eval(sys.argv[3])
original = engine.Trainer.train_epoch

def train_epoch(self, *args, **kwargs):
    out = original(self, *args, **kwargs)
    with open(log, "a") as f:
        f.write("trained\n")
    time.sleep(0.25)  # slow enough to be killed in the middle of the fit
    return out

engine.Trainer.train_epoch = train_epoch
X = (load_digits().data / 16.0).astype(np.float32)[:300]
VAETransformer(**params, checkpoint_path=path).fit(X)
"""

KILL_PARAMS = dict(max_iter=12, batch_size=32, random_state=0, device="cpu")


def test_resume_after_sigkill_equals_an_uninterrupted_fit(digits_small, tmp_path, monkeypatch):
    X, _ = digits_small
    path, log = tmp_path / "fit.skvae", tmp_path / "epochs.log"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(path), str(log), repr(KILL_PARAMS)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[1].decode()
            if path.exists() and _checkpoint_state(path)["epoch"] >= 2:
                break
            assert time.monotonic() < deadline, "no checkpoint of epoch 2 in time"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    trained = log.read_text().count("trained")
    state = _checkpoint_state(path)
    assert 2 <= state["epoch"] < KILL_PARAMS["max_iter"] and not state["finished"]
    assert state["epoch"] >= trained - 1  # at most the epoch in progress was lost
    # The checkpoint is a model file of its last epoch.
    assert skvae.load(path).n_iter_ == state["epoch"]

    trained = _count_epochs(monkeypatch)
    resumed = VAETransformer(**KILL_PARAMS, checkpoint_path=path).fit(X)
    assert len(trained) == KILL_PARAMS["max_iter"] - state["epoch"]  # resumed, not restarted
    monkeypatch.undo()
    uninterrupted = VAETransformer(**KILL_PARAMS).fit(X)
    assert resumed.n_iter_ == uninterrupted.n_iter_ == KILL_PARAMS["max_iter"]
    assert _losses(resumed) == _losses(uninterrupted)
    _assert_same_weights(resumed, uninterrupted)
    np.testing.assert_array_equal(resumed.transform(X), uninterrupted.transform(X))
    assert resumed.score(X) == uninterrupted.score(X)
    assert _checkpoint_state(path)["finished"]


def test_resume_with_early_stopping_and_labels(digits_small, tmp_path, monkeypatch):
    """The early-stopping state and the class counts survive an interruption."""
    X, y = digits_small
    params = dict(ES, n_iter_no_change=2)
    for cls, fit_args in ((VAETransformer, ()), (ConditionalVAETransformer, (y,))):
        path = tmp_path / f"{cls.__name__}.skvae"
        uninterrupted = cls(**params).fit(X, *fit_args)
        assert 4 <= uninterrupted.n_iter_ < params["max_iter"]
        _interrupt_at_step(monkeypatch, 3 * 10 + 1)  # in epoch 4 (7 + 3 calls an epoch)
        with pytest.raises(KeyboardInterrupt, match="resume from the checkpoint"):
            cls(**params, checkpoint_path=path).fit(X, *fit_args)
        monkeypatch.undo()
        assert _checkpoint_state(path)["epoch"] == 3
        trained = _count_epochs(monkeypatch)
        resumed = cls(**params, checkpoint_path=path, verbose=0).fit(X, *fit_args)
        assert len(trained) == uninterrupted.n_iter_ - 3
        assert resumed.n_iter_ == uninterrupted.n_iter_
        assert _losses(resumed) == _losses(uninterrupted)
        _assert_same_weights(resumed, uninterrupted)
        np.testing.assert_array_equal(resumed.transform(X), uninterrupted.transform(X))
        # A finished checkpoint is taken as it is, with no training.
        again = cls(**params, checkpoint_path=path).fit(X, *fit_args)
        assert len(trained) == uninterrupted.n_iter_ - 3
        monkeypatch.undo()
        _assert_same_weights(again, uninterrupted)
        assert _losses(again) == _losses(uninterrupted)


def test_a_checkpoint_of_another_fit_is_an_error(digits_small, tmp_path):
    X, _ = digits_small
    path = tmp_path / "fit.skvae"
    VAETransformer(max_iter=2, random_state=0, checkpoint_path=path).fit(X)
    content = path.read_bytes()
    fitted = VAETransformer(max_iter=2, random_state=0).fit(X)
    before, weights = _state(fitted), _weights(fitted)
    cases = [
        ({"learning_rate": 0.01}, X, r"other parameters \(learning_rate=0.001 in the checkpoint, 0.01 now\)"),
        ({"random_state": 1}, X, "random_state=0 in the checkpoint, 1 now"),
        ({}, X[:200], "other training data"),
    ]
    for change, data, message in cases:
        fitted.set_params(checkpoint_path=path, **change)
        with pytest.raises(ValueError, match=message) as excinfo:
            fitted.fit(data)
        assert "Delete the file" in str(excinfo.value)
        fitted.set_params(checkpoint_path=None, learning_rate=1e-3, random_state=0)
        assert _state(fitted).keys() == before.keys() and fitted.history_ == before["history_"]
        for key, value in _weights(fitted).items():
            assert torch.equal(value, weights[key])
        assert path.read_bytes() == content  # left alone
    with pytest.raises(ValueError, match="ConditionalVAETransformer, not of a VAETransformer|of a VAETransformer, not"):
        ConditionalVAETransformer(max_iter=2, random_state=0, checkpoint_path=path).fit(
            X, np.arange(len(X)) % 3
        )
    # Parameters that do not change the fit may differ.
    VAETransformer(max_iter=2, random_state=0, verbose=0, warm_start=True, checkpoint_path=str(path)).fit(X)


def test_a_file_that_is_not_a_checkpoint_is_never_overwritten(digits_small, tmp_path):
    X, _ = digits_small
    model = skvae.save(VAETransformer(max_iter=1, random_state=0).fit(X), tmp_path / "m.skvae")
    other = tmp_path / "notes.txt"
    other.write_text("precious")
    for path in (model, other):
        content = path.read_bytes()
        vae = VAETransformer(max_iter=2, checkpoint_path=path)
        with pytest.raises(ValueError, match="not a checkpoint.*not overwritten"):
            vae.fit(X)
        assert not hasattr(vae, "module_") and path.read_bytes() == content
    # A warm-start continuation writes checkpoints but refuses to overwrite too.
    vae = VAETransformer(max_iter=1, warm_start=True, random_state=0).fit(X)
    vae.set_params(checkpoint_path=other)
    with pytest.raises(ValueError, match="not overwritten"):
        vae.fit(X)
    assert vae.n_iter_ == 1 and other.read_text() == "precious"


def test_checkpoint_writes_are_atomic(digits_small, tmp_path, monkeypatch):
    X, _ = digits_small
    path = tmp_path / "fit.skvae"
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync")
        return real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        if events.count("replace") == 3:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    vae = VAETransformer(max_iter=5, random_state=0, checkpoint_path=path)
    # A failed write warns, naming checkpoint_path, and the fit keeps going.
    with pytest.warns(UserWarning, match=r"checkpoint_path=.*fit.skvae.*after epoch 3"):
        vae.fit(X)
    monkeypatch.undo()
    # Data synced before each rename; the failed write left the last whole file.
    assert events[:4] == ["fsync", "replace", "fsync", "fsync"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.skvae"]
    assert _checkpoint_state(path)["epoch"] == 2
    assert vae.n_iter_ == 5
    # ... and a fit resumes from it.
    trained = _count_epochs(monkeypatch)
    resumed = VAETransformer(max_iter=5, random_state=0, checkpoint_path=path).fit(X)
    assert len(trained) == 3
    monkeypatch.undo()
    _assert_same_weights(resumed, VAETransformer(max_iter=5, random_state=0).fit(X))


def test_checkpoint_needs_a_representable_random_state(digits_small, tmp_path):
    X, _ = digits_small
    vae = VAETransformer(
        max_iter=1, random_state=np.random.RandomState(0), checkpoint_path=tmp_path / "c.skvae"
    )
    with pytest.raises(ValueError, match="checkpoint_path is set.*random_state"):
        vae.fit(X)
    assert not (tmp_path / "c.skvae").exists()


def test_partial_fit_ignores_checkpoints(digits_small, tmp_path):
    X, _ = digits_small
    path = tmp_path / "c.skvae"
    VAETransformer(max_iter=1, random_state=0, checkpoint_path=path).partial_fit(X)
    assert not path.exists()


# ------------------------------------------------------------------- determinism
def test_same_seed_gives_bit_identical_results_on_the_cpu(digits_small):
    X, _ = digits_small
    params = dict(n_components=3, max_iter=3, batch_size=64, random_state=42, device="cpu")
    a = VAETransformer(**params).fit(X)
    b = VAETransformer(**params).fit(X)
    _assert_same_weights(a, b)
    assert _losses(a) == _losses(b)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    Z = a.transform(X[:20])
    np.testing.assert_array_equal(a.inverse_transform(Z), b.inverse_transform(Z))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(
        a.score_samples(X[:20], method="iwae", n_importance=8),
        b.score_samples(X[:20], method="iwae", n_importance=8),
    )
    for decode in ("mean", "draw"):
        np.testing.assert_array_equal(
            a.sample(10, random_state=3, decode=decode), b.sample(10, random_state=3, decode=decode)
        )
    c = VAETransformer(**{**params, "random_state": 43}).fit(X)
    assert not np.array_equal(a.transform(X), c.transform(X))


def test_the_docs_say_what_holds_on_a_gpu():
    # The docstring says it in short and links the guide's page, which says how.
    doc = VAETransformer.__doc__
    assert "on a GPU, models equal in distribution" in doc and ":doc:`/reproducibility`" in doc
    page = (Path(__file__).resolve().parents[1] / "docs" / "reproducibility.md").read_text()
    assert "torch.use_deterministic_algorithms(True)" in page
    assert "CUBLAS_WORKSPACE_CONFIG" in page and "in distribution" in page
