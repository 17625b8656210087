"""Data-parallel training: torchrun with two CPU processes (gloo), skvae.distributed."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skvae import VAETransformer, distributed
from skvae._data import TrainingData
from skvae import load as load_model
from skvae.cli import main as cli_main

dist = pytest.importorskip("torch.distributed")
needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available",
)

N_ROWS, EPOCHS, BATCH = 1000, 10, 64
# The estimator of every fit here: a global batch of 64 (32 rows per process
# and step on two processes).
SETTINGS = dict(
    n_components=2,
    max_iter=EPOCHS,
    batch_size=BATCH,
    learning_rate=3e-3,
    random_state=0,
    device="cpu",
)

SCRIPT = """
import json, os, sys
import numpy as np
import torch
from sklearn.datasets import load_digits
import skvae
from skvae import VAETransformer, distributed
from skvae.callbacks import Callback
from skvae_plugins.mlp import MLP

out = sys.argv[1]
settings = json.loads(sys.argv[2])
torch.set_num_threads(1)
rank = int(os.environ["RANK"])
X = (load_digits().data[: {n_rows}] / 16).astype(np.float32)


def fit(name, **extra):
    params = {{**settings, **extra}}
    vae = VAETransformer(architecture=MLP(hidden_sizes=(64,)), **params).fit(X)
    np.savez(os.path.join(out, f"{{name}}_weights_{{rank}}.npz"),
             **{{k: v.numpy() for k, v in vae.module_.state_dict().items()}})
    with open(os.path.join(out, f"{{name}}_history_{{rank}}.json"), "w") as f:
        json.dump(vae.history_, f)
    if rank == 0:
        skvae.save(vae, os.path.join(out, f"{{name}}.skvae"))


fit("sync")
fit("early", early_stopping=True, n_iter_no_change=2, max_iter=25)


class StopOnRankOne(Callback):
    def on_epoch_end(self, run, record):
        return rank == 1 and record["epoch"] == 2


vae = VAETransformer(**{{**settings, "max_iter": 5}}).set_callbacks(StopOnRankOne()).fit(X)
with open(os.path.join(out, f"stop_{{rank}}.json"), "w") as f:
    json.dump(vae.n_iter_, f)
# A broken data-parallel fit: each rank trains on its shard, gradients not averaged.
distributed.DataParallel._sync_gradients = False
fit("nosync")
"""


def _weights(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _losses(history, key="loss"):
    return [record[key] for record in history]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Run the script under torchrun with two processes; return its output folder."""
    out = tmp_path_factory.mktemp("ddp")
    script = out / "fit_ddp.py"
    script.write_text(textwrap.dedent(SCRIPT.format(n_rows=N_ROWS)))
    env = {k: v for k, v in os.environ.items() if k not in distributed.TORCHRUN_VARS}
    env.update(OMP_NUM_THREADS="1", SKVAE_DISTRIBUTED="auto")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", "2", str(script), str(out), json.dumps(SETTINGS),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.fixture(scope="module")
def one_process():
    """The same fit on this process alone, with the same global batch."""
    from sklearn.datasets import load_digits
    from skvae_plugins.mlp import MLP

    X = (load_digits().data[:N_ROWS] / 16).astype(np.float32)
    with distributed.data_parallel(False):
        return VAETransformer(architecture=MLP(hidden_sizes=(64,)), **SETTINGS).fit(X)


@needs_gloo
def test_both_ranks_end_with_identical_weights_and_history(two_processes):
    for name in ("sync", "early"):
        w0 = _weights(two_processes / f"{name}_weights_0.npz")
        w1 = _weights(two_processes / f"{name}_weights_1.npz")
        assert w0.keys() == w1.keys()
        for key in w0:
            np.testing.assert_array_equal(w0[key], w1[key], err_msg=f"{name}: {key}")
        h0 = json.loads((two_processes / f"{name}_history_0.json").read_text())
        h1 = json.loads((two_processes / f"{name}_history_1.json").read_text())
        # All-reduced once per epoch: the same losses, hence the same early stop.
        assert len(h0) == len(h1)
        for key in ("loss", "reconstruction", "kl", "val_loss", "learning_rate"):
            assert _losses(h0, key) == _losses(h1, key)
    early = json.loads((two_processes / "early_history_0.json").read_text())
    assert all(r["val_loss"] is not None for r in early)


@needs_gloo
def test_a_stop_request_on_one_rank_stops_every_rank_at_the_same_epoch(two_processes):
    stopped = [json.loads((two_processes / f"stop_{rank}.json").read_text()) for rank in (0, 1)]
    assert stopped == [2, 2]


@needs_gloo
def test_without_gradient_averaging_the_ranks_weights_differ(two_processes):
    # The check above catches a data-parallel fit that does not all-reduce
    # the gradients: each rank's model then drifts on its own shard.
    w0 = _weights(two_processes / "nosync_weights_0.npz")
    w1 = _weights(two_processes / "nosync_weights_1.npz")
    assert max(float(np.abs(w0[k] - w1[k]).max()) for k in w0) > 1e-2


@needs_gloo
def test_two_processes_track_one_process_with_the_same_global_batch(two_processes, one_process):
    two = _losses(json.loads((two_processes / "sync_history_0.json").read_text()))
    one = _losses(one_process.history_)
    assert len(two) == len(one) == EPOCHS
    # Different random streams (per-rank shuffles and noise), the same
    # expected step: the curves agree within 3% at every epoch and 2% at
    # the end (measured: under 0.5%), while training lowers the loss by 30%.
    relative = np.abs(np.array(two) - np.array(one)) / np.array(one)
    assert relative.max() < 0.03, (two, one)
    assert relative[-1] < 0.02, (two, one)
    assert two[-1] < 0.8 * two[0]


@needs_gloo
def test_rank_zero_model_is_an_ordinary_fitted_estimator(two_processes):
    vae = load_model(two_processes / "sync.skvae")
    assert isinstance(vae, VAETransformer)
    assert vae.n_iter_ == EPOCHS
    weights = _weights(two_processes / "sync_weights_0.npz")
    for key, value in vae.module_.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), weights[key])
    from sklearn.datasets import load_digits

    X = (load_digits().data[:50] / 16).astype(np.float32)
    assert vae.transform(X).shape == (50, 2)
    assert np.isfinite(vae.score(X))


# ------------------------------------------------- single-process behaviour
def test_not_distributed_outside_torchrun(monkeypatch):
    for name in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is running in this process")
    assert distributed.setup("auto", "cpu") is None
    assert distributed.setup(False, "cpu") is None
    with pytest.raises(ValueError, match="torchrun"):
        distributed.setup(True, "cpu")
    with pytest.raises(ValueError, match="'auto', True or False"):
        distributed.setup("yes", "cpu")
    assert distributed.is_writer()


def test_mode_from_the_environment_and_the_context(monkeypatch):
    monkeypatch.delenv(distributed.ENV_VAR, raising=False)
    assert distributed.mode() == "auto"
    monkeypatch.setenv(distributed.ENV_VAR, "0")
    assert distributed.mode() is False
    with distributed.data_parallel(True):
        assert distributed.mode() is True
        with distributed.data_parallel("auto"):
            assert distributed.mode() == "auto"
    assert distributed.mode() is False
    monkeypatch.setenv(distributed.ENV_VAR, "maybe")
    with pytest.raises(ValueError, match=distributed.ENV_VAR):
        distributed.mode()


def test_forced_data_parallel_fit_outside_torchrun_is_an_error(monkeypatch):
    for name in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is running in this process")
    X = np.random.RandomState(0).rand(20, 4)
    vae = VAETransformer(max_iter=1, random_state=0, device="cpu")
    with distributed.data_parallel(True), pytest.raises(ValueError, match="torchrun"):
        vae.fit(X)
    assert not hasattr(vae, "module_")


def test_cli_distributed_outside_torchrun_exits_2(monkeypatch, tmp_path, capsys):
    for name in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is running in this process")
    status = cli_main(
        ["fit", "--distributed", "--epochs", "1", "--n-train", "50", "--quiet",
         "--out", str(tmp_path / "run")]
    )
    assert status == 2
    assert "torchrun" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_shards_are_disjoint_equal_and_cover_the_rows():
    class Fake(distributed.DataParallel):
        def __init__(self, rank, world_size):
            self.rank, self.world_size = rank, world_size

    for n, world in [(10, 2), (11, 2), (7, 3), (2, 4)]:
        X = torch.arange(n, dtype=torch.float32).reshape(n, 1)
        data = TrainingData(X)
        shards = [Fake(r, world).shard_train(data, seed=5).rows.ravel() for r in range(world)]
        sizes = {len(s) for s in shards}
        assert sizes == {-(-n // world)}  # equal lengths: the same steps on every rank
        rows = torch.cat(shards)
        assert set(rows.tolist()) == set(range(n))  # every row, at most world - 1 twice
        assert len(rows) - n < world
        if n % world == 0:
            assert len(set(rows.tolist())) == len(rows)  # disjoint
        val = [Fake(r, world).shard_validation(data).rows.ravel() for r in range(world)]
        assert sorted(torch.cat(val).tolist()) == list(range(n))
    assert Fake(0, 2).local_batch_size(64) == 32
    assert Fake(0, 4).local_batch_size(2) == 1
