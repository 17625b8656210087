"""VAEOutlierDetector: scikit-learn's outlier-detector contract, scores, explanation, files."""

import numpy as np
import pytest
from _kernels import expected_order_failures
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import skvae
from skvae import VAETransformer
from skvae._outlier import VAEOutlierDetector
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.mlp import MLP

RTOL, ATOL = 1e-4, 1e-5


@parametrize_with_checks(
    [
        VAEOutlierDetector(max_iter=5),
        VAEOutlierDetector(
            n_components=3,
            architecture=MLP(hidden_sizes=(16,), activation="tanh"),
            likelihood=Gaussian(scale=0.5),
            max_iter=4,
            contamination=0.1,
            score_method="iwae",
            n_score_draws=8,
        ),
        VAEOutlierDetector(max_iter=3, score_method="reconstruction", contamination=0.2),
        VAEOutlierDetector(max_iter=3, missing_values=np.nan),
    ],
    expected_failed_checks=expected_order_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _small(**params):
    defaults = dict(
        n_components=3, architecture=MLP(hidden_sizes=(32,)), max_iter=15, random_state=0
    )
    return VAEOutlierDetector(**{**defaults, **params})


@pytest.fixture(scope="module")
def zeros_detector(digits):
    """A detector fitted on 120 zeros (normal rows)."""
    X, y = digits
    return _small().fit(X[y == 0][:120])


def test_contract_of_the_outputs(zeros_detector, digits):
    X, y = digits
    rows = X[:200]
    scores = zeros_detector.score_samples(rows)
    decision = zeros_detector.decision_function(rows)
    predicted = zeros_detector.predict(rows)
    assert scores.dtype == np.float64 and scores.shape == (200,)
    np.testing.assert_allclose(decision, scores - zeros_detector.offset_)
    np.testing.assert_array_equal(predicted, np.where(decision >= 0, 1, -1))
    assert zeros_detector.__sklearn_tags__().estimator_type == "outlier_detector"
    # Zeros are normal, the other digits are not: the scores rank them.
    assert roc_auc_score(y[:200] == 0, scores) > 0.95
    assert (predicted[y[:200] != 0] == -1).mean() > 0.8


@pytest.mark.parametrize("contamination", [0.05, 0.2])
def test_contamination_sets_the_share_of_training_outliers(digits, contamination):
    X, y = digits
    train = X[y == 3][:100]
    detector = _small(max_iter=5, contamination=contamination).fit(train)
    share = (detector.predict(train) == -1).mean()
    assert share == pytest.approx(contamination, abs=0.011)


def test_auto_contamination_is_tukeys_lower_fence(zeros_detector, digits):
    X, y = digits
    scores = zeros_detector.score_samples(X[y == 0][:120])
    q1, q3 = np.percentile(scores, [25, 75])
    assert zeros_detector.offset_ == pytest.approx(q1 - 1.5 * (q3 - q1), rel=RTOL, abs=ATOL)


def test_fit_predict_is_fit_then_predict(digits):
    X, y = digits
    train = X[y == 5][:80]
    labels = _small(max_iter=4, contamination=0.1).fit_predict(train)
    again = _small(max_iter=4, contamination=0.1).fit(train).predict(train)
    np.testing.assert_array_equal(labels, again)
    assert set(np.unique(labels)) == {-1, 1}


def test_score_methods(zeros_detector, digits):
    X, _ = digits
    rows = X[:50]
    elbo = zeros_detector.score_samples(rows, method="elbo")
    # score_method="elbo" is the parent's ELBO, same draws.
    np.testing.assert_allclose(
        elbo, VAETransformer.score_samples(zeros_detector, rows), rtol=RTOL, atol=ATOL
    )
    iwae = zeros_detector.score_samples(rows, method="iwae", n_importance=64)
    recon = zeros_detector.score_samples(rows, method="reconstruction")
    # The IWAE bound is tighter than the ELBO (on average over rows); the
    # reconstruction term is the ELBO without its (non-negative) KL term.
    assert iwae.mean() > elbo.mean()
    assert np.all(recon >= elbo - 1e-3)
    # The parameter picks the method; the draws are fixed: deterministic.
    by_param = clone(zeros_detector).set_params(score_method="reconstruction")
    by_param.__dict__.update(
        {k: v for k, v in zeros_detector.__dict__.items() if k.endswith("_") or k.startswith("_")}
    )
    np.testing.assert_array_equal(by_param.score_samples(rows), recon)
    np.testing.assert_array_equal(zeros_detector.score_samples(rows, method="reconstruction"), recon)


def test_scores_do_not_depend_on_the_other_rows(zeros_detector, digits):
    X, _ = digits
    rows = X[:40]
    alone = np.concatenate([zeros_detector.score_samples(rows[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(zeros_detector.score_samples(rows)[:5], alone, rtol=RTOL, atol=ATOL)


def test_reconstruction_errors_sum_to_the_reconstruction_term(zeros_detector, digits):
    X, y = digits
    rows = X[:30]
    errors = zeros_detector.reconstruction_errors(rows)
    assert errors.shape == (30, 64) and errors.dtype == np.float64
    recon = zeros_detector.score_samples(rows, method="reconstruction")
    np.testing.assert_allclose(errors.sum(axis=1), -recon, rtol=RTOL, atol=1e-3)
    # Bernoulli: every feature's error is a cross-entropy, >= 0.
    assert np.all(errors >= 0)


def test_reconstruction_errors_point_at_the_corrupted_pixels(zeros_detector, digits):
    X, y = digits
    zero = X[y == 0][130:131].copy()
    corrupted = zero.copy()
    patch = np.zeros((8, 8), dtype=bool)
    patch[3:5, 3:5] = True  # the hole in the middle of a zero
    corrupted[0, patch.ravel()] = 1.0
    errors = zeros_detector.reconstruction_errors(np.vstack([zero, corrupted]))
    gain = errors[1] - errors[0]
    # The corrupted pixels carry most of the added error.
    assert gain[patch.ravel()].sum() > 0.5 * gain.sum()
    assert zeros_detector.score_samples(corrupted)[0] < zeros_detector.score_samples(zero)[0]


def test_out_of_domain_rows_are_refused_by_every_method(zeros_detector, digits):
    X, _ = digits
    bad = 16 * X[:5]
    methods = ["score_samples", "decision_function", "predict", "reconstruction_errors", "transform"]
    for name in methods:
        with pytest.raises(ValueError, match=r"\[0, 1\]|domain|bernoulli|Bernoulli"):
            getattr(zeros_detector, name)(bad)


def test_bad_parameters_are_refused_and_leave_the_detector_unfitted(digits):
    X, _ = digits
    for params in ({"contamination": 0.7}, {"contamination": 0.0}, {"score_method": "score"},
                   {"n_score_draws": 0}):
        detector = _small(**params)
        with pytest.raises(InvalidParameterError):
            detector.fit(X[:50])
        assert not hasattr(detector, "offset_")
        with pytest.raises(NotFittedError):
            detector.predict(X[:5])
    with pytest.raises(ValueError, match="method must be one of"):
        _small(max_iter=1).fit(X[:50]).score_samples(X[:5], method="ssim")


def test_save_and_load_round_trip(zeros_detector, digits, tmp_path):
    X, _ = digits
    path = tmp_path / "detector.skvae"
    skvae.save(zeros_detector, path)
    loaded = skvae.load(path)
    assert type(loaded) is VAEOutlierDetector
    assert loaded.offset_ == zeros_detector.offset_
    assert loaded.get_params()["contamination"] == "auto"
    np.testing.assert_allclose(
        loaded.decision_function(X[:20]), zeros_detector.decision_function(X[:20]),
        rtol=RTOL, atol=ATOL,
    )
    np.testing.assert_array_equal(loaded.predict(X[:20]), zeros_detector.predict(X[:20]))


def test_a_transformer_file_with_an_offset_is_refused(zeros_detector, tmp_path):
    # offset_ belongs to detectors: a VAETransformer file that sets it was modified.
    path = tmp_path / "detector.skvae"
    skvae.save(zeros_detector, path)
    import json
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    model = json.loads(members["model.json"])
    model["estimator"] = "VAETransformer"
    for name in ("contamination", "score_method", "n_score_draws"):
        model["params"].pop(name)
    members["model.json"] = json.dumps(model).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(skvae.ModelFileError, match="offset_"):
        skvae.load(path)


def test_checkpointed_fit_resumes_and_sets_the_offset(digits, tmp_path):
    X, y = digits
    train = X[y == 1][:60]
    path = tmp_path / "fit.skvae"
    first = _small(max_iter=3, checkpoint_path=str(path)).fit(train)
    assert path.exists()
    # A second fit with the same file resumes the finished fit: same offset.
    again = _small(max_iter=3, checkpoint_path=str(path)).fit(train)
    assert again.offset_ == pytest.approx(first.offset_, rel=RTOL, abs=ATOL)



def test_ctrl_c_keeps_the_last_epoch_with_its_offset(digits, monkeypatch):
    from skvae import _engine

    X, y = digits
    train = X[y == 2][:100]
    original, calls = _engine.Trainer.train_epoch, []

    def train_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_engine.Trainer, "train_epoch", train_epoch)
    detector = _small(max_iter=10, contamination=0.1)
    with pytest.raises(KeyboardInterrupt):
        detector.fit(train)
    monkeypatch.undo()
    assert detector.n_iter_ == 2
    # The offset is that of the kept model, not a placeholder.
    expected = np.percentile(detector.score_samples(train), 10)
    assert detector.offset_ == pytest.approx(expected, rel=RTOL, abs=ATOL)


def test_in_a_pipeline_and_grid_search(digits):
    X, y = digits
    train = 16 * X[y == 0][:90]
    pipe = make_pipeline(MinMaxScaler(clip=True), _small(max_iter=3))
    pipe.fit(train)
    assert set(np.unique(pipe.predict(16 * X[:40]))) <= {-1, 1}
    search = GridSearchCV(
        _small(max_iter=3), {"n_components": [2, 3]}, cv=2
    ).fit(X[y == 0][:60])
    assert search.best_params_["n_components"] in (2, 3)



def test_missing_values(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    X_missing = X.copy()
    X_missing[rng.random(X_missing.shape) < 0.2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _small(max_iter=2).fit(X_missing[:50])
    detector = _small(max_iter=30, missing_values=np.nan).fit(X_missing[y == 0])
    scores = detector.score_samples(X_missing[:300])
    assert np.isfinite(scores).all()
    assert roc_auc_score(y[:300] == 0, scores) > 0.9
    assert set(np.unique(detector.predict(X_missing[:300]))) <= {-1, 1}
    errors = detector.reconstruction_errors(X_missing[:20])
    np.testing.assert_array_equal(np.isnan(errors), np.isnan(X_missing[:20]))
    recon = detector.score_samples(X_missing[:20], method="reconstruction")
    np.testing.assert_allclose(np.nansum(errors, axis=1), -recon, rtol=RTOL, atol=1e-3)
    # A complete row scores as with fewer missing entries: finite either way.
    assert np.isfinite(detector.decision_function(X[:5])).all()


# ------------------------------------------------------------------ display
def test_display_shows_the_most_anomalous_rows_with_their_errors(zeros_detector, digits):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skvae.plotting import OutlierDisplay

    X, y = digits
    rows = X[y == 0][120:150].copy()
    block = np.zeros((8, 8), dtype=bool)
    block[2:6, 3:5] = True
    rows[7, block.ravel()] = 1.0  # a bright bar through the hole of one zero
    display = OutlierDisplay.from_estimator(zeros_detector, rows, n_samples=5)
    scores = zeros_detector.score_samples(rows)
    np.testing.assert_array_equal(display.indices, np.argsort(scores, kind="stable")[:5])
    assert display.indices[0] == 7
    np.testing.assert_allclose(
        display.errors, zeros_detector.reconstruction_errors(rows[display.indices]),
        rtol=RTOL, atol=ATOL,
    )
    # Two rows of 5 digits of 8 x 8 pixels, 1 pixel apart: the images, then the heat.
    assert display.image_.shape == (17, 44)
    heat = np.ma.filled(np.ma.asarray(display.heat_.get_array(), dtype=float), np.nan)
    assert np.all(np.isnan(heat[:8])) and np.isfinite(heat[9:]).any()
    assert display.colorbar_ is not None
    plt.close(display.figure_)


def test_display_of_a_table_is_a_heat_map_with_the_feature_names(digits):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from skvae.plotting import OutlierDisplay

    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(80, 5)), columns=list("abcde"))
    detector = _small(n_components=2, max_iter=5).fit(table)
    display = OutlierDisplay.from_estimator(detector, table, n_samples=4)
    assert display.image_ is None and display.heat_.get_array().shape == (4, 5)
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == list("abcde")
    with pytest.raises(ValueError, match="alpha"):
        display.plot(alpha=2)
    plt.close("all")
