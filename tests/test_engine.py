"""The training loop on its own: strategies, callbacks, schedules, the training data."""

import math

import numpy as np
import pytest
import torch

from skvae import ConditionalVAETransformer, VAETransformer
from skvae._data import HostRows, TrainingData
from skvae._engine import EarlyStopping, Schedule, SingleProcess, Trainer, run
from skvae._optimizers import make_optimizer
from skvae._state import Snapshot, rebuild
from skvae.callbacks import CallbackError


def _trainer(X, seed=0, batch_size=50):
    vae = VAETransformer(n_components=2, random_state=seed)
    vae._validate_params()
    data = TrainingData(X)
    fit = vae._new_fit(data, n_epochs=5)
    return Trainer(fit.module, fit.optimizer, fit.generator, batch_size), data


def _schedule(epochs, **options):
    return Schedule(0, epochs, beta=lambda e: 1.0, learning_rate=lambda e: 1e-3, **options)


class CountingStrategy(SingleProcess):
    """The single-process strategy, counting what the loop asks of it."""

    def __init__(self):
        self.calls = {"start": 0, "begin_epoch": 0, "step_loss": 0, "end_epoch": 0, "finish": 0}

    def start(self, trainer, data, validation, seed):
        self.calls["start"] += 1
        return super().start(trainer, data, validation, seed)

    def begin_epoch(self, trainer, epoch):
        self.calls["begin_epoch"] += 1

    def step_loss(self, trainer, forward, xb, beta, cb):
        self.calls["step_loss"] += 1
        return forward(xb, beta, cb)

    def end_epoch(self, module, totals, n, checks):
        self.calls["end_epoch"] += 1
        return super().end_epoch(module, totals, n, checks)

    def finish(self, trainer):
        self.calls["finish"] += 1


class Recorder:
    def __init__(self, stop_after=None):
        self.events = []
        self.stop_after = stop_after

    def on_train_begin(self, run):
        self.events.append(("begin", run.first_epoch, run.stop_epoch))

    def on_epoch_begin(self, run):
        self.events.append(("epoch", run.epoch))

    def on_epoch_end(self, run, record):
        self.events.append(("end", record["epoch"], run.will_stop))
        return self.stop_after is not None and record["epoch"] >= self.stop_after

    def on_train_end(self, run):
        self.events.append(("done", run.outcome, len(run.history)))


def test_the_loop_goes_through_the_strategy_at_every_step(digits_small):
    X = digits_small[0]
    trainer, data = _trainer(X)
    strategy = CountingStrategy()
    result = run(trainer, data.to("cpu"), _schedule(3), strategy)
    steps_per_epoch = math.ceil(len(X) / 50)
    assert strategy.calls == {
        "start": 1, "begin_epoch": 3, "step_loss": 3 * steps_per_epoch, "end_epoch": 3, "finish": 1,
    }
    assert [r["epoch"] for r in result.history] == [1, 2, 3]


def test_callbacks_see_every_epoch_in_order_and_can_stop(digits_small):
    X = digits_small[0]
    trainer, data = _trainer(X)
    first, second = Recorder(stop_after=2), Recorder()
    result = run(trainer, data.to("cpu"), _schedule(5), callbacks=[first, second])
    assert result.stopped and len(result.history) == 2
    assert first.events == [
        ("begin", 0, 5), ("epoch", 0), ("end", 1, False), ("epoch", 1), ("end", 2, False),
        ("done", "stopped", 2),
    ]
    # A later callback sees that an earlier one asked to stop.
    assert second.events[4] == ("end", 2, True)


def test_a_failing_callback_is_named_and_still_ends(digits_small):
    X = digits_small[0]
    trainer, data = _trainer(X)

    class Broken:
        def on_epoch_end(self, run, record):
            raise ZeroDivisionError("oops")

    recorder = Recorder()
    with pytest.raises(CallbackError, match="Broken.on_epoch_end raised ZeroDivisionError") as info:
        run(trainer, data.to("cpu"), _schedule(3), callbacks=[recorder, Broken()])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert recorder.events[-1] == ("done", "failed", 1)


def test_early_stopping_is_a_callback_that_restores_the_best_weights(digits_small):
    X = digits_small[0]
    trainer, data = _trainer(X)
    train, validation = data.split(0.3, seed=0)
    stopper = EarlyStopping(tol=math.inf, patience=2, restore_best=True)  # no epoch counts
    result = run(trainer, train.to("cpu"), _schedule(10), callbacks=[stopper],
                 validation=validation.to("cpu"))
    assert result.stopped and len(result.history) == 2
    # The best epoch's weights are back at the end.
    assert all(torch.equal(trainer.module.state_dict()[k], v) for k, v in stopper.best_state.items())
    assert stopper.best == min(r["val_loss"] for r in result.history)


def test_streamed_and_in_memory_training_data_give_the_same_batches(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((40, 3)).astype(np.float32)
    C = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 40)]
    path = tmp_path / "X.npy"
    np.save(path, X)
    M = np.load(path, mmap_mode="r")
    memory = TrainingData(X, C)
    streamed = TrainingData(HostRows(M, np.float32), C)
    assert streamed.streamed and not memory.streamed
    assert memory.digest() == streamed.digest()
    for a, b in zip(memory.split(0.25, 3), streamed.split(0.25, 3)):
        a, b = a.to("cpu"), b.to("cpu")
        index = torch.tensor([5, 0, 7, 2])
        (xa, ca), (xb, cb) = a.batch(index), b.batch(index)
        torch.testing.assert_close(xa, xb)
        torch.testing.assert_close(ca, cb)
    assert TrainingData(X).to("cpu").batch(slice(0, 3))[1] is None


def test_a_labelled_model_trains_on_a_memmap_as_in_memory(digits_small, tmp_path):
    X, y = digits_small
    X = X.astype(np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    M = np.load(path, mmap_mode="r")
    params = dict(n_components=2, max_iter=2, batch_size=64, random_state=0)
    memory = ConditionalVAETransformer(data_on_device=True, **params).fit(X, y)
    streamed = ConditionalVAETransformer(data_on_device=False, **params).fit(M, y)
    losses = [h["loss"] for h in memory.history_]
    np.testing.assert_allclose([h["loss"] for h in streamed.history_], losses, rtol=1e-5)
    np.testing.assert_allclose(streamed.transform(X, y), memory.transform(X, y), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ConditionalVAETransformer(data_on_device=False, **params).fit(M, y[:-1])
    with pytest.raises(ValueError, match="requires y"):
        ConditionalVAETransformer(data_on_device=False, **params).fit(M)


def test_snapshot_and_rebuild_put_state_back():
    module = torch.nn.Linear(3, 2)
    optimizer = make_optimizer("adam", module.parameters(), 0.1)
    generator = torch.Generator().manual_seed(1)
    snapshot = Snapshot(module, optimizer, generator)
    before = module.weight.detach().clone()
    draw = torch.rand(3, generator=generator)
    module(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    snapshot.restore()
    assert torch.equal(module.weight, before) and not optimizer.state
    assert torch.equal(torch.rand(3, generator=generator), draw)
    fitted = rebuild(module, torch.device("cpu"), optimizer_name="sgd", learning_rate=0.5,
                     seed=7, generator_state=generator.get_state(), generator_device_type="cuda")
    # A generator state saved on another device type is not used: seeded instead.
    assert torch.equal(torch.rand(2, generator=fitted.generator),
                       torch.rand(2, generator=torch.Generator().manual_seed(7)))
    assert fitted.optimizer.param_groups[0]["lr"] == 0.5


def test_snapshot_taken_every_epoch_reuses_buffers_and_restores_the_latest_copy():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    optimizer = make_optimizer("adam", module.parameters(), 0.1)
    generator = torch.Generator().manual_seed(1)

    def step():
        optimizer.zero_grad()
        module.train()
        module(torch.randn(5, 3, generator=generator)).square().sum().backward()
        optimizer.step()

    snapshot = Snapshot(module, optimizer, generator, tag=0)  # before the optimizer has state
    step()
    buffers = None
    for tag in range(1, 5):
        snapshot.take(tag)
        ids = {id(t) for t in snapshot.weights.values()}
        if tag == 3:
            assert ids == buffers  # the copy before the last one's buffers, reused
        buffers = buffers if tag != 1 else ids
        expected = {k: v.detach().clone() for k, v in module.state_dict().items()}
        moments = [optimizer.state[p]["exp_avg"].clone() for p in module.parameters()]
        steps = [float(optimizer.state[p]["step"]) for p in module.parameters()]
        draw = torch.rand(2, generator=generator)
        step()
    for _ in range(2):  # a snapshot can be restored more than once
        snapshot.restore()
        assert snapshot.tag == 4
        assert all(torch.equal(module.state_dict()[k], v) for k, v in expected.items())
        assert all(torch.equal(optimizer.state[p]["exp_avg"], m)
                   for p, m in zip(module.parameters(), moments))
        assert [float(optimizer.state[p]["step"]) for p in module.parameters()] == steps
        assert torch.equal(torch.rand(2, generator=generator), draw)
        step()  # changes the restored tensors, not the snapshot's copies
