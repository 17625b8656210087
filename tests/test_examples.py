"""The example gallery: every examples/plot_*.py runs (in quick mode) and draws its figures.

The gallery itself (docs/, sphinx-gallery) runs the same scripts at full size;
here each one runs with SKVAE_QUICK=1 on tiny data, as a script, and must
write the PNG files listed in FIGURES.
"""

import ast
import concurrent.futures
import importlib.util
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: The figures each example writes into $SKVAE_EXAMPLES_OUT/<example>/.
FIGURES = {
    "plot_quickstart": ["grid_search.png", "reconstructions.png", "samples.png"],
    "plot_seed000_textures": ["training_curves.png", "samples.png", "reconstructions.png",
                              "traversal.png"],
    "plot_seed001_conv_mnist": ["training_curves.png", "latent_scatter.png",
                                "latent_manifold.png"],
    "plot_seed002_mlp_mnist": ["samples.png", "latent_manifold.png", "latent_scatter.png"],
    "plot_seed003_cifar_gray": ["training_cost.png", "reconstructions.png"],
    "plot_seed004_aux_classifier": ["loss_curves.png", "samples_per_epoch.png",
                                    "class_conditional.png"],
    "plot_task_outliers": ["roc.png", "scores.png", "least_normal.png", "auroc_per_class.png"],
    "plot_task_imputation": ["mcar_completions.png", "half_completions.png",
                             "multiple_imputation.png"],
    "plot_task_mixed_table": ["measurements.png", "species_island.png"],
    "plot_task_few_labels": ["accuracy.png", "class_conditional.png"],
}

#: Packages an example needs beyond skvae's test extra.
NEEDS = {"plot_task_mixed_table": "palmerpenguins"}


def run_example(script, out, **env):
    """Run ``script`` in quick mode from ``out``'s parent, figures into ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "SKVAE_QUICK": "1", "MPLBACKEND": "Agg",
             "SKVAE_EXAMPLES_OUT": str(out), **env},
        cwd=out.parent, capture_output=True, text=True, timeout=600,
    )


#: Quick runs at once: one per core (two at most), each on one torch thread.
PARALLEL_RUNS = max(1, min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def quick_runs(request, tmp_path_factory):
    """The quick runs of the selected examples, started together on first use.

    A quick run is mostly the start of a Python process and single-threaded
    work on tiny data, so :data:`PARALLEL_RUNS` of them share the machine
    (each with one torch thread) in about the time of one after the other
    divided by that number. Maps an example's name to ``(result, out)``.
    """
    selected = [
        item.callspec.params["script"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_example_runs_quick"
    ]
    root = tmp_path_factory.mktemp("examples")
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def run(script):
        out = root / script.stem / "out"
        no_data = str(root / script.stem / "no-data")
        return run_example(script, out, SKVAE_DATA=no_data, **threads), out

    runnable = [  # the test skips the others
        script for script in selected
        if script.stem not in NEEDS or importlib.util.find_spec(NEEDS[script.stem])
    ]
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {script.stem: pool.submit(run, script) for script in runnable}
        yield futures
        for future in futures.values():  # runs not started yet (a stopped session)
            future.cancel()


def assert_figures(script, out):
    folder = out / script.stem
    for name in FIGURES[script.stem]:
        path = folder / name
        assert path.is_file(), f"{script.name} did not write {name}"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, f"{path} is not a PNG image"
    written = sorted(p.name for p in folder.iterdir())
    assert written == sorted(FIGURES[script.stem]), f"{script.name} wrote {written}"


def test_every_example_is_listed():
    assert [p.stem for p in SCRIPTS] == sorted(FIGURES)


def test_every_seed_post_has_an_example():
    seeds = sorted(p.stem for p in SCRIPTS if p.stem.startswith("plot_seed"))
    assert [s[len("plot_seed"):][:3] for s in seeds] == ["000", "001", "002", "003", "004"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_is_in_sphinx_gallery_form(script):
    """A docstring whose first line is the title, underlined with '=', then '# %%' cells."""
    source = script.read_text()
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring, f"{script.name} has no docstring"
    lines = docstring.strip("\n").splitlines()
    assert len(lines) >= 3, f"{script.name}: a title, its underline and a paragraph"
    title, underline = lines[0], lines[1]
    assert title.strip() and title == title.strip(), f"{script.name}: title {title!r}"
    assert set(underline) == {"="} and len(underline) >= len(title), (
        f"{script.name}: the title must be underlined with '=' at least as long as it"
    )
    assert source.count("\n# %%\n") >= 2, f"{script.name}: no '# %%' cells"
    assert "argparse" not in source and "__main__" not in source  # sphinx-gallery runs it as is


def test_gallery_header_exists():
    header = (EXAMPLES / "README.rst").read_text().splitlines()
    title = next(i for i, line in enumerate(header) if line and not line.startswith(".."))
    assert set(header[title + 1]) == {"="}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs_quick(script, quick_runs):
    if script.stem in NEEDS:
        pytest.importorskip(NEEDS[script.stem])
    result, out = quick_runs[script.stem].result()
    assert result.returncode == 0, result.stdout + result.stderr
    assert_figures(script, out)
    if script.stem == "plot_quickstart":
        assert "best parameters" in result.stdout
        assert re.search(r"held-out ELBO: -\d+\.\d+", result.stdout)
    if script.stem == "plot_seed003_cifar_gray" and "not on this machine" in result.stdout:
        assert "DOWNLOAD = True" in result.stdout  # says how to get CIFAR-10
        assert "grey patches" in result.stdout  # and what it trains on instead


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
    # Whether or not CIFAR-10 is on this machine, run the CIFAR path on fake files.
    fake_cifar10(tmp_path / "data")
    out = tmp_path / "out"
    script = EXAMPLES / "plot_seed003_cifar_gray.py"
    result = run_example(script, out, SKVAE_DATA=str(tmp_path / "data"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not on this machine" not in result.stdout
    assert "Number of minibatches: 1" in result.stdout
    assert re.search(r"^\s+2\s+\d+\.\d+\s+704\.72$", result.stdout, re.M)  # epoch 2 next to the post's
    assert_figures(script, out)


def load_common(monkeypatch):
    """examples/_common.py as a module."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location("_common_under_test", EXAMPLES / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figures_go_where_asked(monkeypatch, tmp_path):
    common = load_common(monkeypatch)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / "plot_quickstart.py")])
    monkeypatch.setenv("SKVAE_EXAMPLES_OUT", str(tmp_path))
    assert common.output_folder() == tmp_path / "plot_quickstart"
    monkeypatch.delenv("SKVAE_EXAMPLES_OUT")
    assert common.output_folder() == Path("runs") / "plot_quickstart"  # a script run
    monkeypatch.setitem(sys.modules, "sphinx_gallery", object())
    assert common.output_folder() is None  # the gallery keeps its own copies


def test_quick_switch(monkeypatch):
    monkeypatch.setenv("SKVAE_QUICK", "1")
    assert load_common(monkeypatch).quick("full", "small") == "small"
    monkeypatch.setenv("SKVAE_QUICK", "0")
    assert load_common(monkeypatch).quick("full", "small") == "full"
