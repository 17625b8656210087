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
        if f not in ("latent_manifold.png", "validation_curve.png", "class_conditional.png",
                     "outliers.png")
    ]  # fmt: skip
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
    assert rows["Training set"] == "240 rows × 64 features"
    assert rows["Test set"] == "60 rows × 64 features"
    assert rows["Likelihood"] == "Bernoulli()"  # no likelihood_choice in these metrics
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


# ------------------------------------------------- the page explains itself
ROW = re.compile(r'<th scope="row">([^<]+)</th><td class="value">([^<]*)</td>')


def _anchors(page):
    """The ids of the page and the targets of its in-page links."""
    return re.findall(r'\bid="([^"]+)"', page), re.findall(r'href="#([^"]+)"', page)


def _full_metrics(vae, X_train, X_test, y_train=None, y_test=None, **changes):
    """Metrics as skvae fit makes them, with the description and the baseline."""
    base = _report.pca_baseline(vae, X_train, X_test, y_train, y_test)
    active = int((np.var(vae.transform(X_test), axis=0) > _report.ACTIVE_THRESHOLD).sum())
    computed = dict(
        n_components=vae.n_components, active_units=active, likelihood=repr(vae.likelihood_),
        baseline=base, **_report.describe_model(vae),
    )  # fmt: skip
    return _metrics(**{**computed, **changes})


def test_the_contents_link_to_every_section_and_figure(digits, tmp_path):
    vae = _fit(digits[:240], n_components=2)
    figures, skipped = _report.write_figures(vae, tmp_path, digits[240:], image_shape=(8, 8, 1))
    metrics = _full_metrics(vae, digits[:240], digits[240:], convergence_warning="not yet")
    page = _report.write_index(tmp_path, metrics, figures, skipped).read_text(encoding="utf-8")
    ids, links = _anchors(page)
    assert len(ids) == len(set(ids))  # unique
    assert links and set(links) <= set(ids)  # every link resolves
    nav = page[page.index("<nav") : page.index("</nav>")]
    sections = re.findall(r'<section id="([^"]+)">', page)
    assert sections == ["notes", "model", "metrics", "baseline", "hyper-parameters", "figures"]
    figure_ids = re.findall(r'<figure id="([^"]+)">', page)
    assert [f["file"].removesuffix(".png") for f in figures] == figure_ids
    assert re.findall(r'href="#([^"]+)"', nav) == [
        *sections[:-1], "figures", *figure_ids
    ]  # each section, the figures listed under theirs
    assert page.index("</nav>") < page.index('<section id="notes">')


def test_the_page_notes_a_fit_that_did_not_converge(digits, tmp_path):
    """max_iter=1: skvae fit records the ConvergenceWarning; the page shows it first."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        vae = _fit(digits, max_iter=1, n_components=2)
    (message,) = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    metrics = _full_metrics(vae, digits[:240], digits[240:], convergence_warning=message,
                            active_units=2)  # fmt: skip
    page = _report.write_index(tmp_path, metrics, []).read_text(encoding="utf-8")
    notes = re.findall(r'<p class="note">(.*?)</p>', page)
    assert len(notes) == 1
    assert notes[0].startswith("<strong>Training did not converge.</strong>")
    assert "reached max_iter=1" in notes[0] and "--epochs" in notes[0]
    assert page.index('class="note"') < page.index('<section id="model">')
    quiet = _report.write_index(tmp_path, _metrics(active_units=2), []).read_text(encoding="utf-8")
    assert 'class="note"' not in quiet and 'id="notes"' not in quiet


@pytest.mark.parametrize(
    "active, expected",
    [(0, "None of the 3 latent units is active: the variance of their"),
     (1, "2 of the 3 latent units are inactive: the variance of their"),
     (2, "1 of the 3 latent units is inactive: the variance of its")],
)  # fmt: skip
def test_the_page_notes_collapsed_latent_units(active, expected, tmp_path):
    page = _report.write_index(tmp_path, _metrics(n_components=3, active_units=active), [])
    (note,) = re.findall(r'<p class="note">(.*?)</p>', page.read_text(encoding="utf-8"))
    assert note.startswith(f"<strong>Latent units collapsed.</strong> {expected} posterior")
    assert ("the codes carry almost nothing" in note) == (active == 0)
    if active:
        assert f"the model uses {active} of its 3 dimensions" in note


def test_the_page_shows_the_data_shape_likelihood_choice_and_hyper_parameters(digits, tmp_path):
    vae = _fit(digits[:240], n_components=3, beta=0.5, random_state=4)
    metrics = _full_metrics(vae, digits[:240], digits[240:], image_shape=[8, 8, 1])
    page = _report.write_index(tmp_path, metrics, []).read_text(encoding="utf-8")
    rows = dict(ROW.findall(page))
    assert rows["Training set"] == "240 rows × 64 features"
    assert rows["One row as an image"] == "8 × 8 × 1 (height × width × channels)"
    assert rows["Likelihood"] == (
        "Bernoulli() (chosen by likelihood=&#x27;auto&#x27;: every training value lies in [0, 1])"
    )
    given = page[page.index('id="hyper-parameters-table"') : page.index("<details>")]
    assert dict(ROW.findall(given)) == {
        "beta": "0.5", "max_iter": "1", "n_components": "3", "random_state": "4"
    }  # fmt: skip
    folded = page[page.index("<details>") : page.index("</details>")]
    assert dict(ROW.findall(folded))["likelihood"] == "&#x27;auto&#x27;"
    assert len(ROW.findall(folded)) == len(vae.get_params(deep=False)) - 4


def test_describe_model_says_what_auto_picked():
    rng = np.random.RandomState(0)
    wide = _fit(rng.normal(size=(60, 4)).astype(np.float32))
    assert _report.describe_model(wide)["likelihood_choice"] == (
        "chosen by likelihood='auto': some training values lie outside [0, 1]"
    )
    given = _fit(rng.rand(60, 4), likelihood="continuous_bernoulli")
    description = _report.describe_model(given)
    assert description["likelihood_choice"] == "given: likelihood='continuous_bernoulli'"
    assert description["columns"] is None
    assert "likelihood" not in description["params_at_default"]


def test_a_table_shows_the_likelihood_of_each_column(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({
        "mass": rng.normal(4000, 500, 80),
        "island": pd.Categorical(rng.choice(["Dream", "Biscoe", "Torgersen"], 80)),
        "male": rng.rand(80) < 0.5,
    })  # fmt: skip
    vae = _fit(frame, n_components=2)
    description = _report.describe_model(vae)
    assert description["likelihood_choice"].startswith("chosen by likelihood='auto' for each")
    assert {c["name"]: c["likelihood"] for c in description["columns"]} == (
        vae.table_schema_.likelihoods
    )
    assert _report.pca_baseline(vae, frame[:60], frame[60:]) is None
    metrics = _metrics(n_features=3, baseline=None, **description)
    page = _report.write_index(tmp_path, metrics, []).read_text(encoding="utf-8")
    table = page[page.index('id="columns-table"') : page.index("</table>", page.index("columns-"))]
    cells = re.findall(r"<tr><th[^>]*>([^<]+)</th>((?:<td[^>]*>[^<]*</td>)+)</tr>", table)
    parsed = {name: re.findall(r">([^<]*)</td>", tds) for name, tds in cells}
    for column in vae.table_schema_.columns:
        assert parsed[column.name] == [column.dtype, column.kind, column.likelihood]
    assert 'href="#baseline"' not in page  # no baseline for a table


# ------------------------------------------------------------- the baseline
def _direct_pca_error(X_train, X, k):
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k, random_state=0).fit(X_train)
    return float(np.mean(np.sum((X - pca.inverse_transform(pca.transform(X))) ** 2, axis=1)))


def _direct_accuracy(Z_train, Z_test, y_train, y_test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))
    return model.fit(Z_train, y_train).score(Z_test, y_test)


@pytest.fixture(scope="module")
def labelled():
    X, y = load_digits(return_X_y=True)
    return X[:240], X[240:360], y[:240], y[240:360]


def test_the_pca_baseline_equals_a_direct_computation(labelled):
    X_train, X_test, y_train, y_test = labelled
    vae = _fit(X_train, n_components=3, max_iter=3)
    base = _report.pca_baseline(vae, X_train, X_test, y_train, y_test)
    assert base["n_components"] == 3
    err = base["reconstruction_error"]
    for part, X in (("train", X_train), ("test", X_test)):
        np.testing.assert_allclose(err["pca"][part], _direct_pca_error(X_train, X, 3), rtol=1e-4)
        direct = np.mean(np.sum((X - vae.inverse_transform(vae.transform(X))) ** 2, axis=1))
        np.testing.assert_allclose(err["vae"][part], direct, rtol=1e-4)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=3, random_state=0).fit(X_train)
    acc = base["accuracy"]
    np.testing.assert_allclose(acc["pca"], _direct_accuracy(
        pca.transform(X_train), pca.transform(X_test), y_train, y_test), atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(acc["vae"], _direct_accuracy(
        vae.transform(X_train), vae.transform(X_test), y_train, y_test), atol=1e-12)  # fmt: skip
    most_frequent = np.bincount(y_train).argmax()
    assert acc["chance"] == pytest.approx(np.mean(y_test == most_frequent))
    # PCA is the best linear reconstruction: more components, less error.
    assert err["pca"]["train"] > _direct_pca_error(X_train, X_train, 10)
    # A Bernoulli likelihood: no log-likelihood of PCA beside its nats.
    assert base["pca_test_log_likelihood"] is None


def test_the_pca_baseline_appears_on_the_page(labelled, tmp_path):
    X_train, X_test, y_train, y_test = labelled
    vae = _fit(X_train, n_components=2)
    metrics = _full_metrics(vae, X_train, X_test, y_train, y_test)
    page = _report.write_index(tmp_path, metrics, []).read_text(encoding="utf-8")
    section = page[page.index('<section id="baseline">') :]
    section = section[: section.index("</section>")]
    assert "<h2>Baseline: PCA with 2 components</h2>" in section
    rows = re.findall(
        r'<tr><th scope="row">([^<]+)</th><td class="value num">([^<]*)</td>'
        r'<td class="value num">([^<]*)</td></tr>', section
    )  # fmt: skip
    table = {name: (vae_value, pca_value) for name, vae_value, pca_value in rows}
    base = metrics["baseline"]
    for name, part in (("training", "train"), ("test", "test")):
        expected = tuple(f"{base['reconstruction_error'][m][part]:.3f}" for m in ("vae", "pca"))
        assert table[f"Reconstruction error, {name} set"] == expected
        expected_pca = _direct_pca_error(X_train, X_train if part == "train" else X_test, 2)
        assert float(table[f"Reconstruction error, {name} set"][1]) == pytest.approx(
            expected_pca, abs=1e-3
        )
    acc = base["accuracy"]
    key = "Test accuracy of a logistic regression on the codes (predicting the most " \
          f"frequent class: {acc['chance']:.1%})"  # fmt: skip
    assert table[key] == (f"{acc['vae']:.1%}", f"{acc['pca']:.1%}")
    assert "gives nats of a discrete distribution" in section


def test_the_baseline_of_a_continuous_likelihood_adds_pcas_log_likelihood(labelled, tmp_path):
    from sklearn.decomposition import PCA

    X_train, X_test, _, _ = labelled
    vae = _fit(X_train, n_components=2, likelihood="gaussian")
    base = _report.pca_baseline(vae, X_train, X_test)
    expected = PCA(n_components=2, random_state=0).fit(X_train).score(X_test)
    np.testing.assert_allclose(base["pca_test_log_likelihood"], expected, rtol=1e-4)
    assert base["accuracy"] is None  # no labels
    metrics = _full_metrics(vae, X_train, X_test, test_log_likelihood=-50.0)
    page = _report.write_index(tmp_path, metrics, []).read_text(encoding="utf-8")
    assert (
        '<th scope="row">Test log-likelihood (nats per sample; VAE: IWAE bound)</th>'
        f'<td class="value num">-50.000</td><td class="value num">{expected:.3f}</td>'
    ) in page
    assert "No labels: no accuracy of the codes." in page


def test_the_baseline_with_missing_entries_scores_the_observed_ones(labelled):
    X_train, X_test, _, _ = labelled
    rng = np.random.RandomState(0)
    X_train, X_test = X_train.copy(), X_test.copy()
    X_train[rng.rand(*X_train.shape) < 0.2] = np.nan
    X_test[rng.rand(*X_test.shape) < 0.2] = np.nan
    vae = _fit(X_train, n_components=2, missing_values=np.nan, likelihood="gaussian")
    base = _report.pca_baseline(vae, X_train, X_test)
    from sklearn.decomposition import PCA

    means = np.nanmean(X_train, axis=0)
    filled = np.where(np.isnan(X_train), means, X_train)
    pca = PCA(n_components=2, random_state=0).fit(filled)
    test_filled = np.where(np.isnan(X_test), means, X_test)
    observed = ~np.isnan(X_test)
    residual = np.where(observed, X_test - pca.inverse_transform(pca.transform(test_filled)), 0)
    expected = np.mean(np.sum(residual**2, axis=1))
    np.testing.assert_allclose(base["reconstruction_error"]["pca"]["test"], expected, rtol=1e-4)
    assert np.isfinite(base["reconstruction_error"]["vae"]["test"])
    assert base["pca_test_log_likelihood"] is None  # not with missing entries


def test_pca_gets_at_most_as_many_components_as_the_data_allow():
    X = np.random.RandomState(0).rand(40, 3)
    vae = _fit(X, n_components=5)
    assert _report.pca_baseline(vae, X[:30], X[30:])["n_components"] == 3


def test_a_conditional_model_reconstructs_with_labels_and_encodes_without(labelled):
    from skvae import ConditionalVAETransformer

    X_train, X_test, y_train, y_test = labelled
    cvae = ConditionalVAETransformer(n_components=2, max_iter=1, random_state=0)
    cvae.fit(X_train, y_train)
    base = _report.pca_baseline(cvae, X_train, X_test, y_train, y_test, conditional=True)
    recon = cvae.inverse_transform(cvae.transform(X_test, y_test), y_test)
    expected = np.mean(np.sum((X_test - recon) ** 2, axis=1))
    np.testing.assert_allclose(base["reconstruction_error"]["vae"]["test"], expected, rtol=1e-4)
    expected = _direct_accuracy(cvae.transform(X_train), cvae.transform(X_test), y_train, y_test)
    np.testing.assert_allclose(base["accuracy"]["vae"], expected, atol=1e-12)
    assert base["conditional"] is True
    remark = _report._baseline_remark(_metrics(), base)
    assert "reconstructs each row given its label" in remark
    plain = _report._baseline_remark(_metrics(), {**base, "conditional": False})
    assert "given its label" not in plain


# ---------------------------------------------------------------- figures
def _png_size(path):
    """(width, height) in pixels from a PNG's header."""
    import struct

    return struct.unpack(">II", path.read_bytes()[16:24])


def test_every_figure_has_the_same_width(digits, tmp_path):
    """All figures are FIGURE_WIDTH inches at 120 dpi, 960 pixels: one scale on the page."""
    vae = _fit(digits, n_components=3, early_stopping=True, max_iter=3)
    labels = np.arange(40) % 3
    figures, _ = _report.write_figures(vae, tmp_path, digits[:40], labels, image_shape=(8, 8, 1))
    assert len(figures) == 8  # all but the class grid and the outliers
    widths = {f["file"]: _png_size(tmp_path / f["file"])[0] for f in figures}
    assert set(widths.values()) == {round(_report.FIGURE_WIDTH * 120)}, widths


def test_fit_width_keeps_the_aspect_of_wide_figures():
    from matplotlib.figure import Figure

    assert _report.fit_width(Figure(figsize=(12, 3))).get_size_inches().tolist() == [8.0, 2.0]
    assert _report.fit_width(Figure(figsize=(5, 3))).get_size_inches().tolist() == [8.0, 3.0]
    constrained = _report.fit_width(Figure(figsize=(5, 3), layout="constrained"))
    assert constrained.get_layout_engine().get()["w_pad"] == pytest.approx(0.1)


def test_the_validation_curve_marks_the_best_epoch(digits, tmp_path):
    vae = _fit(digits, early_stopping=True, validation_fraction=0.2, max_iter=4)
    figures, skipped = _report.write_figures(vae, tmp_path, digits[:40])
    (figure,) = [f for f in figures if f["file"] == "validation_curve.png"]
    assert (tmp_path / "validation_curve.png").read_bytes()[:8] == PNG_MAGIC
    val = [(r["epoch"], r["val_loss"]) for r in vae.history_]
    best_epoch, best = min(val, key=lambda pair: pair[1])
    assert f"is at epoch {best_epoch} (dashed)" in figure["caption"]
    assert f"the lowest validation loss, {best:.3f}," in figure["caption"]
    assert "the 20% of the training rows held out" in figure["caption"]
    assert "validation_curve.png" not in [s["file"] for s in skipped]
    # After a KL warm-up: the best epoch among those early stopping compares.
    warm = _fit(digits, early_stopping=True, kl_warmup=0.5, max_iter=4)
    figures, _ = _report.write_figures(warm, tmp_path, digits[:40])
    (figure,) = [f for f in figures if f["file"] == "validation_curve.png"]
    best_epoch, best = min(
        [(r["epoch"], r["val_loss"]) for r in warm.history_ if r["epoch"] > 2],
        key=lambda pair: pair[1],
    )
    assert f"the lowest validation loss after the KL warm-up, {best:.3f}, is at epoch " \
           f"{best_epoch} (dashed)" in figure["caption"]  # fmt: skip
    plain = _report.write_figures(_fit(digits), tmp_path, digits[:40])[0]
    assert "validation_curve.png" not in [f["file"] for f in plain]
    assert not (tmp_path / "validation_curve.png").exists()  # the earlier one, removed


def test_reconstructions_are_shown_with_their_error(digits, tmp_path):
    vae = _fit(digits, n_components=2)
    figures, _ = _report.write_figures(vae, tmp_path, digits[:40], image_shape=(8, 8, 1))
    caption = {f["file"]: f["caption"] for f in figures}["reconstructions.png"]
    assert "under each reconstruction its squared error" in caption
