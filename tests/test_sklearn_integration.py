"""VAETransformer inside scikit-learn: Pipeline, GridSearchCV, clone, pickling, pandas."""

import io
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAETransformer
from skvae_plugins.mlp import MLP


def test_pipeline_with_a_classifier_on_the_latent_space(digits):
    X, y = digits
    pipe = make_pipeline(
        VAETransformer(n_components=8, max_iter=10, batch_size=32, random_state=0),
        LogisticRegression(max_iter=2000),
    )
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.75  # chance is 0.1


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_tunes_nested_plugin_params_by_name(digits_small, n_jobs):
    X, _ = digits_small
    pipe = Pipeline(
        [("scale", MinMaxScaler(clip=True)), ("vae", VAETransformer(max_iter=3, random_state=0))]
    )
    grid = {"vae__architecture__hidden_sizes": [(16,), (64, 32)], "vae__beta": [0.5, 1.0]}
    search = GridSearchCV(pipe, grid, cv=2, n_jobs=n_jobs, error_score="raise").fit(X)
    results = search.cv_results_
    assert len(results["params"]) == 4
    assert np.all(np.isfinite(results["mean_test_score"]))
    # Ranked by VAETransformer.score (mean ELBO), with no scoring argument.
    best = search.best_estimator_.named_steps["vae"]
    assert best.architecture_.hidden_sizes == search.best_params_["vae__architecture__hidden_sizes"]
    assert search.best_score_ == pytest.approx(np.max(results["mean_test_score"]))
    # The template is untouched.
    assert pipe.named_steps["vae"].architecture == "mlp"


def test_grid_search_over_plugin_choice(digits_small):
    X, _ = digits_small
    search = GridSearchCV(
        VAETransformer(max_iter=2, random_state=0),
        {"likelihood": ["bernoulli", "gaussian"], "architecture": [MLP(hidden_sizes=(8,)), "mlp"]},
        cv=2,
    ).fit(X)
    assert len(search.cv_results_["params"]) == 4


def test_clone_gives_an_unfitted_equal_estimator(digits_small):
    X, _ = digits_small
    arch = MLP(hidden_sizes=(12,))
    vae = VAETransformer(architecture=arch, max_iter=2, random_state=0).fit(X)
    copy = clone(vae)
    assert not hasattr(copy, "module_")
    assert copy.architecture is not arch and copy.architecture.hidden_sizes == (12,)
    np.testing.assert_array_equal(copy.fit(X).transform(X), vae.transform(X))


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trip(digits_small, tmp_path, dump):
    X, _ = digits_small
    vae = VAETransformer(max_iter=2, random_state=0).fit(X)
    if dump == "pickle":
        restored = pickle.loads(pickle.dumps(vae))
    else:
        joblib.dump(vae, tmp_path / "vae.joblib")
        restored = joblib.load(tmp_path / "vae.joblib")
    np.testing.assert_array_equal(restored.transform(X), vae.transform(X))
    np.testing.assert_array_equal(restored.score_samples(X), vae.score_samples(X))
    # Training state survives: both continue identically.
    vae.partial_fit(X)
    restored.partial_fit(X)
    np.testing.assert_array_equal(restored.transform(X), vae.transform(X))


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
def test_model_from_a_gpu_unpickles_without_one(digits_small):
    """State pickled from a CUDA model is CPU tensors plus the device it came from."""
    X, _ = digits_small
    vae = VAETransformer(max_iter=2, random_state=0).fit(X)
    expected = vae.transform(X)
    vae._device = torch.device("cuda")  # as if fitted on a GPU
    restored = pickle.loads(pickle.dumps(vae))
    assert restored._device == torch.device("cpu")
    assert next(restored.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(restored.transform(X), expected)
    restored.partial_fit(X)  # and it can keep training on the CPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_fit_unpickles_in_a_cpu_only_process(digits_small, tmp_path):
    X, _ = digits_small
    vae = VAETransformer(max_iter=2, device="cuda", random_state=0).fit(X)
    assert next(vae.module_.parameters()).is_cuda
    path = tmp_path / "gpu.pkl"
    path.write_bytes(pickle.dumps(vae))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Z.npy", vae.transform(X))
    code = (
        "import pickle, numpy as np, torch; assert not torch.cuda.is_available();"
        f"m = pickle.loads(open(r'{path}', 'rb').read());"
        f"Z = m.transform(np.load(r'{tmp_path / 'X.npy'}'));"
        f"np.testing.assert_allclose(Z, np.load(r'{tmp_path / 'Z.npy'}'), atol=1e-4)"
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_set_output_pandas_and_feature_names(digits_small):
    X, _ = digits_small
    columns = [f"pixel_{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=columns)
    vae = VAETransformer(n_components=3, max_iter=2, random_state=0).set_output(transform="pandas")
    out = vae.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["vaetransformer0", "vaetransformer1", "vaetransformer2"]
    assert list(vae.feature_names_in_) == columns
    pipe = make_pipeline(MinMaxScaler(clip=True), VAETransformer(max_iter=2, random_state=0))
    pipe.set_output(transform="pandas")
    assert list(pipe.fit_transform(df).columns) == ["vaetransformer0", "vaetransformer1"]
    with pytest.raises(ValueError, match="feature names"):
        vae.transform(df.rename(columns={"pixel_0": "other"}))


def test_torch_objects_are_not_parameters():
    """get_params holds plain values only, so clone and repr stay cheap and safe."""
    params = VAETransformer().get_params(deep=True)
    assert not any(isinstance(v, (torch.nn.Module, torch.Tensor)) for v in params.values())
    buffer = io.StringIO()
    print(VAETransformer(n_components=3), file=buffer)
    assert buffer.getvalue().strip() == "VAETransformer(n_components=3)"


def test_unpickling_rebuilds_the_fitted_optimizer_not_the_current_parameter(digits_small):
    X, _ = digits_small
    vae = VAETransformer(max_iter=2, optimizer="rmsprop", random_state=0).fit(X)
    vae.set_params(optimizer="sgd")  # changed after the fit, not refitted
    restored = pickle.loads(pickle.dumps(vae))
    assert isinstance(restored.optimizer_, torch.optim.RMSprop)
    vae.partial_fit(X)
    restored.partial_fit(X)
    np.testing.assert_array_equal(restored.transform(X), vae.transform(X))
