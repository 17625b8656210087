"""skvae._report: the figures and the page that ``skvae fit`` writes.

The whole command is tested in tests/test_cli.py; here the report's parts
on their own, with tiny models (one epoch on a few hundred digits).
"""

import re

import numpy as np
import pytest

from skvae import VAEOutlierDetector, VAETransformer, _report, cli
from skvae.datasets import load_digits

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:300]


def _fit(X, **params):
    params = {"max_iter": 1, "random_state": 0, **params}
    return VAETransformer(**params).fit(X)


def _metrics(**changes):
    """The entries of metrics.json that the page shows."""
    metrics = dict(
        data_name="digits", n_features=64, n_train=240, n_test=60,
        estimator="VAETransformer", architecture="MLP()", likelihood="Bernoulli()",
        prior="Normal()", n_components=2, n_iter=3, max_iter=3, fit_seconds=1.5,
        train_elbo=-40.5, test_elbo=-41.25, test_log_likelihood=-40.0, iwae_k=100,
        active_units=1, active_units_threshold=0.01, skvae_version="1.2.3",
        command="skvae fit --data digits",
    )  # fmt: skip
    return {**metrics, **changes}


def test_grid_shape_is_as_square_as_divisors_allow():
    assert [_report.grid_shape(n) for n in (1, 7, 12, 16, 64, 90)] == [
        (1, 1), (1, 7), (3, 4), (4, 4), (8, 8), (9, 10),
    ]  # fmt: skip
    for n in range(1, 200):
        rows, cols = _report.grid_shape(n)
        assert rows * cols == n and rows <= cols


def test_is_square():
    assert [n for n in range(30) if _report.is_square(n)] == [4, 9, 16, 25]


def test_the_fit_help_lists_the_figures_in_page_order():
    """--help of skvae fit names each file the writers draw, in their order."""
    listed = re.findall(r"^  (\S+\.png) ", cli._FIT_DESCRIPTION, re.M)
    assert tuple(listed) == _report.FIGURE_FILES
    assert [file for file, _ in _report.FIGURE_WRITERS] == list(_report.FIGURE_FILES)


def test_write_figures_draws_what_applies(digits, tmp_path):
    vae = _fit(digits, n_components=1)
    (tmp_path / "latent_manifold.png").write_bytes(b"left by an earlier run")
    (tmp_path / "notes.txt").write_text("mine")
    figures, skipped = _report.write_figures(vae, tmp_path, digits[:40], image_shape=(8, 8, 1))
    files = [f["file"] for f in figures]
    # A 1-D latent space has no manifold; an unconditional model no class grid.
    assert files == [
        f
        for f in _report.FIGURE_FILES
        if f not in ("latent_manifold.png", "class_conditional.png", "outliers.png")
    ]
    assert skipped == [
        {
            "file": "latent_manifold.png",
            "title": "Latent manifold",
            "reason": "a 1-D latent space has no 2-D grid (see the traversal)",
        }
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*files, "notes.txt"])
    for name in files:
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC, name
    for figure in figures:
        assert figure["title"] and figure["caption"].endswith(".")
    # No labels: the scatter plot is coloured by each point's ELBO.
    assert "coloured by their ELBO" in figures[0]["caption"]
    (kl_figure,) = [f for f in figures if "kl" in f]
    assert kl_figure["file"] == "kl_per_dimension.png"
    np.testing.assert_allclose(
        kl_figure["kl"], vae.kl_per_dimension(digits[:40]), rtol=1e-5, atol=1e-6
    )


def test_manifold_and_traversal_follow_the_most_active_dimensions(digits, tmp_path):
    vae = _fit(digits, n_components=12)
    labels = np.arange(40) % 3
    figures, skipped = _report.write_figures(
        vae, tmp_path, digits[:40], labels, label_name="digit", random_state=1
    )
    assert skipped == []
    captions = {f["file"]: f["caption"] for f in figures}
    variances = np.var(vae.transform(digits[:40]), axis=0)
    top_two = sorted(int(d) for d in np.argsort(-variances, kind="stable")[:2])
    assert f"z_{top_two[0]} (x) and z_{top_two[1]} (y)" in captions["latent_manifold.png"]
    assert "the two most active of 12 dimensions" in captions["latent_manifold.png"]
    assert "the 10 most active of the 12 latent dimensions" in captions["latent_traversal.png"]
    assert "coloured by digit" in captions["latent_scatter.png"]
    assert "projected on their first two principal components" in captions["latent_scatter.png"]


def test_a_prior_without_kl_per_dimension_is_skipped(digits, tmp_path):
    vae = _fit(digits, prior="mixture")
    figures, skipped = _report.write_figures(vae, tmp_path, digits[:40])
    assert [s["file"] for s in skipped] == ["kl_per_dimension.png"]
    assert "does not factorise" in skipped[0]["reason"]
    assert not any("kl" in f for f in figures)
    assert not (tmp_path / "kl_per_dimension.png").exists()


def test_write_index_shows_metrics_figures_and_what_was_not_drawn(tmp_path):
    figures = [
        {"file": "samples.png", "title": "Samples", "caption": "Decoded <z> & more."},
        {"file": "latent scatter.png", "title": "Latent space", "caption": "Codes."},
    ]
    skipped = [{"file": "latent_manifold.png", "title": "Latent manifold", "reason": "1-D"}]
    metrics = _metrics(data_name="<script>", test_log_likelihood=None, n_iter=2)
    path = _report.write_index(tmp_path, metrics, figures, skipped)
    assert path == tmp_path / "index.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Decoded &lt;z&gt; &amp; more." in page
    assert re.findall(r'<img src="([^"]+)"', page) == ["samples.png", "latent%20scatter.png"]
    assert "Figure 1. Samples." in page and "Figure 2. Latent space." in page
    assert "<li>Latent manifold (latent_manifold.png): 1-D.</li>" in page
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td class="value">([^<]*)</td>', page))
    assert rows["Test ELBO (nats per sample)"] == "-41.250"
    assert rows["Test log-likelihood, IWAE bound with k=100 (nats per sample)"] == "n/a"
    assert rows["Epochs"] == "2 of 3 (stopped early)"
    assert rows["Fit time"] == "1.5 s"
    assert rows["Active latent units"] == "1 of 2 (variance of the posterior mean &gt; 0.01)"
    assert "<code>skvae fit --data digits</code> with skvae 1.2.3" in page


def test_write_index_without_skipped_figures_has_no_such_section(tmp_path):
    page = _report.write_index(tmp_path, _metrics(), []).read_text(encoding="utf-8")
    assert "Not drawn" not in page and "<figure" not in page
    assert "Epochs</th><td class=\"value\">3 of 3</td>" in page


def test_a_detector_gets_its_most_anomalous_rows(digits, tmp_path):
    detector = VAEOutlierDetector(
        max_iter=1, random_state=0, contamination=0.1, score_method="elbo"
    ).fit(digits)
    X_test = digits[:40]
    figures, skipped = _report.write_figures(detector, tmp_path, X_test, image_shape=(8, 8, 1))
    assert skipped == []
    assert figures[-1]["file"] == "outliers.png" == _report.FIGURE_FILES[-1]
    assert (tmp_path / "outliers.png").read_bytes()[:8] == PNG_MAGIC
    caption = figures[-1]["caption"]
    n_flagged = int(np.sum(detector.predict(X_test) == -1))
    assert "The 10 test rows with the lowest score (the ELBO)" in caption
    assert f"{n_flagged} of the 40 test rows score below it" in caption
    assert "per-pixel error as a heat overlay" in caption
    assert "Missing entries" not in caption


def test_the_outlier_figure_of_a_table_is_a_heat_map(tmp_path):
    X = np.random.RandomState(0).normal(size=(60, 5)).astype(np.float32)
    detector = VAEOutlierDetector(max_iter=1, random_state=0, score_method="iwae").fit(X)
    figures, _ = _report.write_figures(detector, tmp_path, X[:4])
    caption = figures[-1]["caption"]
    assert figures[-1]["file"] == "outliers.png"
    assert "The 4 test rows with the lowest score (the IWAE bound)" in caption
    assert "one line per row, one column per feature" in caption


def test_captions_say_where_entries_are_missing(digits, tmp_path):
    X = digits.copy()
    X[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
    detector = VAEOutlierDetector(max_iter=1, random_state=0, missing_values=np.nan).fit(X)
    figures, _ = _report.write_figures(detector, tmp_path, X[:20], image_shape=(8, 8, 1))
    captions = {f["file"]: f["caption"] for f in figures}
    for file in ("reconstructions.png", "outliers.png"):
        assert captions[file].endswith("Missing entries (NaN) are left blank."), file
    assert (tmp_path / "outliers.png").read_bytes()[:8] == PNG_MAGIC


def test_write_index_shows_a_detectors_offset_and_the_missing_entries(tmp_path):
    metrics = _metrics(
        estimator="VAEOutlierDetector", score_method="elbo", contamination=0.1,
        offset=-31.4894, train_outlier_share=0.1, test_outlier_share=0.125,
        train_missing_share=0.2031, test_missing_share=0.25,
    )  # fmt: skip
    page = _report.write_index(tmp_path, metrics, []).read_text(encoding="utf-8")
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td class="value">([^<]*)</td>', page))
    assert rows["Outlier score"] == "elbo (contamination 0.1)"
    assert rows["Offset (decision_function = score - offset)"] == "-31.489"
    assert rows["Training rows predicted outliers"] == "10.0%"
    assert rows["Test rows predicted outliers"] == "12.5%"
    assert rows["Missing entries, training set"] == "20.3%"
    assert rows["Missing entries, test set"] == "25.0%"
    plain = _report.write_index(tmp_path, _metrics(), []).read_text(encoding="utf-8")
    assert "Offset" not in plain and "Missing entries" not in plain
