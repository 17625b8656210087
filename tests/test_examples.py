"""The examples run."""

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_example_runs():
    env = {**os.environ, "SKVAE_QUICK": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )
    assert "best parameters" in result.stdout
    assert re.search(r"held-out ELBO: -\d+\.\d+", result.stdout)


# ---------------------------------------------------------------------------
# examples/seed*.py: one script per seed post, each run in its quick mode.
# ---------------------------------------------------------------------------
#: The figures each seed script writes into --out.
SEED_FIGURES = {
    "seed000_textures": ["samples.png", "reconstructions.png", "traversal.png", "training_curves.png"],
    "seed001_conv_mnist": ["latent_scatter.png", "latent_manifold.png", "training_curves.png"],
    "seed002_mlp_mnist": ["samples.png", "latent_manifold.png", "latent_scatter.png"],
    "seed003_cifar_gray": ["reconstructions.png", "training_cost.png"],
    "seed004_aux_classifier": ["samples_per_epoch.png", "class_conditional.png", "loss_curves.png"],
}
SEED_SCRIPTS = sorted((REPO / "examples").glob("seed*.py"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_seed_script(script, out, **env):
    return subprocess.run(
        [sys.executable, str(script), "--out", str(out)],
        env={**os.environ, "SKVAE_QUICK": "1", **env},
        cwd=out.parent, capture_output=True, text=True, timeout=300,
    )


def assert_figures(script, out):
    for name in SEED_FIGURES[script.stem]:
        path = out / name
        assert path.is_file(), f"{script.name} did not write {name}"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, f"{path} is not a PNG image"


def test_every_seed_post_has_a_script():
    assert [p.stem for p in SEED_SCRIPTS] == sorted(SEED_FIGURES)


@pytest.mark.parametrize("script", SEED_SCRIPTS, ids=lambda p: p.stem)
def test_seed_example_runs_quick(script, tmp_path):
    out = tmp_path / "out"
    result = run_seed_script(script, out)
    assert result.returncode == 0, result.stdout + result.stderr
    if script.stem == "seed003_cifar_gray" and result.stdout.startswith("skipping"):
        assert "--download" in result.stdout  # says how to get CIFAR-10
        return
    assert_figures(script, out)


def fake_cifar10(root, n_per_batch=200):
    """A tiny cifar-10-batches-py folder of random images under root/cifar-10."""
    folder = root / "cifar-10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.randint(0, 256, size=(n_per_batch, 3072)).astype(np.uint8),
            "labels": rng.randint(0, 10, size=n_per_batch).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def test_seed003_trains_on_cifar10_files(tmp_path):
    # Whether or not CIFAR-10 is on this machine, run the training path on fake files.
    fake_cifar10(tmp_path / "data")
    out = tmp_path / "out"
    result = run_seed_script(REPO / "examples" / "seed003_cifar_gray.py", out,
                             SKVAE_DATA=str(tmp_path / "data"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipping" not in result.stdout
    assert "Number of minibatches: 1" in result.stdout
    assert re.search(r"^\s+2\s+\d+\.\d+\s+704\.72$", result.stdout, re.M)  # epoch 2 next to the post's
    assert_figures(REPO / "examples" / "seed003_cifar_gray.py", out)
