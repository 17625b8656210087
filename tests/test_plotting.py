"""The displays of skvae.plotting: what they compute and what they draw."""

import inspect

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

import skvae.plotting  # noqa: E402
from skvae import (  # noqa: E402
    AuxiliaryClassifierVAE,
    ConditionalVAETransformer,
    VAETransformer,
)
from skvae.plotting import (  # noqa: E402
    ClassConditionalDisplay,
    KLPerDimensionDisplay,
    LatentManifoldDisplay,
    LatentScatterDisplay,
    LatentTraversalDisplay,
    ReconstructionDisplay,
    SamplesDisplay,
    TrainingCurvesDisplay,
)
from skvae.plotting._base import _draw_grid, _resolve_image_shape  # noqa: E402
from skvae_plugins.conv import Conv  # noqa: E402

N = 300  # training rows of the small models


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:N], y[:N]


@pytest.fixture(scope="module")
def vae(data):
    X, _ = data
    return VAETransformer(n_components=2, max_iter=5, random_state=0).fit(X)


@pytest.fixture(scope="module")
def vae3(data):
    X, _ = data
    return VAETransformer(n_components=3, max_iter=2, random_state=0).fit(X)


@pytest.fixture(scope="module")
def flat():
    """A 10-feature dataset (not an image) and a model of it."""
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(200, 2)) @ rng.normal(size=(2, 10))).astype(np.float32)
    return X, VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)


@pytest.fixture(scope="module")
def cvae(data):
    X, y = data
    return ConditionalVAETransformer(n_components=2, max_iter=2, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def aux(data):
    X, y = data
    return AuxiliaryClassifierVAE(n_components=2, max_iter=2, random_state=0).fit(X, y)


def _labels(axis_ticklabels):
    return [t.get_text() for t in axis_ticklabels]


# ------------------------------------------------------------ scatter
def test_scatter_offsets_are_the_posterior_means(vae, data):
    X, y = data
    display = LatentScatterDisplay.from_estimator(vae, X, y, label_name="digit")
    np.testing.assert_allclose(display.scatter_.get_offsets(), vae.transform(X), rtol=1e-6)
    assert display.figure_ is display.ax_.figure
    np.testing.assert_array_equal(display.classes_, np.arange(10))
    assert _labels(display.colorbar_.ax.get_yticklabels()) == [str(d) for d in range(10)]
    assert display.colorbar_.ax.get_ylabel() == "digit"
    assert display.ax_.get_xlabel() == "$z_{0}$"


def test_scatter_continuous_labels_get_a_continuous_colorbar(vae, data):
    X, _ = data
    ink = X.mean(axis=1)
    display = LatentScatterDisplay.from_estimator(vae, X, ink)
    assert display.classes_ is None
    np.testing.assert_allclose(display.scatter_.get_array(), ink, rtol=1e-6)
    assert display.colorbar_ is not None


def test_scatter_without_labels(vae, data):
    X, _ = data
    display = LatentScatterDisplay.from_estimator(vae, X)
    assert display.colorbar_ is None
    assert display.scatter_.get_offsets().shape == (N, 2)
    swapped = LatentScatterDisplay.from_estimator(vae, X, projection=(1, 0))
    np.testing.assert_allclose(swapped.scatter_.get_offsets(), vae.transform(X)[:, ::-1])


def test_scatter_many_integer_values_are_continuous(vae, data):
    X, _ = data
    counts = np.arange(N) % 50  # 50 integer values: a quantity, not classes
    display = LatentScatterDisplay.from_estimator(vae, X, counts, cmap="plasma")
    assert display.classes_ is None
    assert display.scatter_.get_cmap().name == "plasma"
    strings = LatentScatterDisplay.from_estimator(vae, X, np.where(counts < 25, "a", "b"))
    np.testing.assert_array_equal(strings.classes_, ["a", "b"])


def test_scatter_projections_of_a_3d_latent(vae3, data):
    X, y = data
    Z = vae3.transform(X).astype(np.float64)
    pca = LatentScatterDisplay.from_estimator(vae3, X, y)
    np.testing.assert_allclose(
        pca.scatter_.get_offsets(), PCA(n_components=2).fit_transform(Z), rtol=1e-5, atol=1e-6
    )
    assert "PC 1" in pca.ax_.get_xlabel()
    first = LatentScatterDisplay.from_estimator(vae3, X, y, projection="first")
    np.testing.assert_allclose(first.scatter_.get_offsets(), Z[:, :2], rtol=1e-6)
    pair = LatentScatterDisplay.from_estimator(vae3, X, y, projection=(2, 0))
    np.testing.assert_allclose(pair.scatter_.get_offsets(), Z[:, [2, 0]], rtol=1e-6)
    assert pair.ax_.get_xlabel() == "$z_{2}$"
    for bad in ["tsne", (0, 0), (0, 3), (0, 1, 2)]:
        with pytest.raises(ValueError, match="projection"):
            LatentScatterDisplay.from_estimator(vae3, X, y, projection=bad)


def test_scatter_1d_latent_is_value_against_label(data):
    X, y = data
    vae1 = VAETransformer(n_components=1, max_iter=1, random_state=0).fit(X)
    display = LatentScatterDisplay.from_estimator(vae1, X, y)
    offsets = display.scatter_.get_offsets()
    np.testing.assert_allclose(offsets[:, 0], vae1.transform(X)[:, 0], rtol=1e-6)
    assert np.all(np.abs(offsets[:, 1] - y) <= 0.3)  # the label, jittered
    assert _labels(display.ax_.get_yticklabels()) == [str(d) for d in range(10)]


def test_scatter_draws_into_the_given_ax(vae, data):
    X, y = data
    fig, ax = plt.subplots()
    n_figures = len(plt.get_fignums())
    display = LatentScatterDisplay.from_estimator(vae, X, y, ax=ax, s=3)
    assert display.ax_ is ax and display.figure_ is fig
    assert len(plt.get_fignums()) == n_figures
    assert display.scatter_ in ax.collections


# ----------------------------------------------------------- manifold
def test_manifold_grid_image_and_ticks(vae):
    display = LatentManifoldDisplay.from_estimator(vae)  # default: 15 x 15 over [-4, 4]^2
    assert display.image_.shape == (15 * 8, 15 * 8)
    xlabels = _labels(display.ax_.get_xticklabels())
    ylabels = _labels(display.ax_.get_yticklabels())
    assert len(xlabels) == len(ylabels) == 15
    assert (xlabels[0], xlabels[-1]) == ("-4.0", "4.0")
    assert (ylabels[0], ylabels[-1]) == ("4.0", "-4.0")  # large z_1 at the top
    # The decoded grid is inverse_transform of the grid points.
    Z = np.array([[x, y] for y in display.grid_y for x in display.grid_x], dtype=np.float32)
    np.testing.assert_allclose(
        display.decoded.reshape(-1, 64), vae.inverse_transform(Z), rtol=1e-5, atol=1e-6
    )
    # Top-left tile: z = (-4, +4), an upright 8 x 8 image (not transposed).
    # A row alone and the same row in the grid's batch: a BLAS may round a row
    # differently at another position in the batch (MKL's AVX2 kernels do).
    top_left = vae.inverse_transform(np.array([[-4.0, 4.0]], dtype=np.float32))[0]
    np.testing.assert_allclose(
        display.image_[:8, :8], top_left.reshape(8, 8), rtol=1e-5, atol=1e-6
    )
    bottom_right = vae.inverse_transform(np.array([[4.0, -4.0]], dtype=np.float32))[0]
    np.testing.assert_allclose(
        display.image_[-8:, -8:], bottom_right.reshape(8, 8), rtol=1e-5, atol=1e-6
    )


def test_manifold_quantile_grid_and_extent(vae):
    display = LatentManifoldDisplay.from_estimator(vae, grid="quantile", grid_size=5)
    np.testing.assert_allclose(display.grid_x, norm.ppf((np.arange(5) + 0.5) / 5))
    wide = LatentManifoldDisplay.from_estimator(vae, grid_size=(3, 2), extent=(-1, 2))
    np.testing.assert_allclose(wide.grid_x, [-1, 0.5, 2])
    np.testing.assert_allclose(wide.grid_y, [-1, 2])
    assert wide.image_.shape == (2 * 8, 3 * 8)
    with pytest.raises(ValueError, match="grid must be"):
        LatentManifoldDisplay.from_estimator(vae, grid="log")


def test_manifold_needs_dims_beyond_two_latent_dimensions(vae3, data):
    with pytest.raises(ValueError, match=r"n_components=3.*dims=\(i, j\)"):
        LatentManifoldDisplay.from_estimator(vae3)
    display = LatentManifoldDisplay.from_estimator(vae3, dims=(0, 2), grid_size=3)
    Z = np.array([[x, 0.0, y] for y in display.grid_y for x in display.grid_x], dtype=np.float32)
    np.testing.assert_allclose(
        display.decoded.reshape(-1, 64), vae3.inverse_transform(Z), rtol=1e-5, atol=1e-6
    )
    assert display.ax_.get_ylabel() == "$z_{2}$"
    with pytest.raises(ValueError, match="dims"):
        LatentManifoldDisplay.from_estimator(vae3, dims=(0, 3))
    vae1 = VAETransformer(n_components=1, max_iter=1, random_state=0).fit(data[0])
    with pytest.raises(ValueError, match="LatentTraversalDisplay"):
        LatentManifoldDisplay.from_estimator(vae1)


# ------------------------------------------------------------ samples
def test_samples_are_estimator_samples(vae):
    display = SamplesDisplay.from_estimator(vae, grid_size=(2, 3), random_state=0)
    expected = vae.sample(6, random_state=0)
    np.testing.assert_array_equal(display.samples, expected)
    assert display.image_.shape == (2 * 8 + 1, 3 * 8 + 2)  # 1-pixel gaps
    np.testing.assert_allclose(display.image_[9:17, 9:17], expected[4].reshape(8, 8))
    assert np.isnan(display.image_[8, 0])  # the gap is blank
    assert display.ax_.get_title() == "Samples from the model"


def test_samples_of_a_class_and_bad_grid(cvae, vae):
    display = SamplesDisplay.from_estimator(cvae, grid_size=2, y=3, random_state=0)
    np.testing.assert_array_equal(display.samples, cvae.sample(4, random_state=0, y=3))
    with pytest.raises(ValueError, match="only for estimators fitted with labels"):
        SamplesDisplay.from_estimator(vae, y=3)
    with pytest.raises(ValueError, match="grid_size"):
        SamplesDisplay.from_estimator(vae, grid_size=0)


# ----------------------------------------------------- reconstruction
def test_reconstructions_below_originals(vae, data):
    X, _ = data
    display = ReconstructionDisplay.from_estimator(vae, X, n_samples=5)
    np.testing.assert_allclose(display.originals, X[:5])
    np.testing.assert_allclose(
        display.reconstructions, vae.inverse_transform(vae.transform(X[:5])), rtol=1e-6
    )
    assert display.image_.shape == (2 * 8 + 1, 5 * 8 + 4)
    np.testing.assert_allclose(display.image_[:8, :8], X[0].reshape(8, 8))
    np.testing.assert_allclose(display.image_[9:, :8], display.reconstructions[0].reshape(8, 8))
    assert _labels(display.ax_.get_yticklabels()) == ["original", "reconstruction"]


def test_reconstruction_rows_wrap(vae, data):
    X, _ = data
    display = ReconstructionDisplay.from_estimator(vae, X, n_samples=7, n_cols=3)
    assert display.image_.shape == (6 * 8 + 5, 3 * 8 + 2)
    assert _labels(display.ax_.get_yticklabels()) == ["original", "reconstruction"] * 3
    assert np.isnan(display.image_[-1, -1])  # 7 samples in 9 places: the last are blank


def test_reconstruction_of_labelled_models(cvae, aux, data):
    X, y = data
    display = ReconstructionDisplay.from_estimator(cvae, X, y, n_samples=4)
    expected = cvae.inverse_transform(cvae.transform(X[:4], y[:4]), y=y[:4])
    np.testing.assert_allclose(display.reconstructions, expected, rtol=1e-6)
    display = ReconstructionDisplay.from_estimator(aux, X, n_samples=4)
    expected = aux.inverse_transform(aux.transform(X[:4]), y=aux.predict(X[:4]))
    np.testing.assert_allclose(display.reconstructions, expected, rtol=1e-6)


def test_reconstruction_errors_are_written_under_each_reconstruction(vae, data):
    X, _ = data
    display = ReconstructionDisplay.from_estimator(vae, X, n_samples=5, show_errors=True)
    expected = np.sum((X[:5] - vae.inverse_transform(vae.transform(X[:5]))) ** 2, axis=1)
    np.testing.assert_allclose(display.errors_, expected, rtol=1e-4, atol=1e-5)
    labels = [f"{e:.2f}" for e in display.errors_]
    assert _labels(display.ax_.get_xticklabels()) == labels  # one row: the tick labels
    assert [t.get_text() for t in display.error_labels_] == labels
    assert "squared error" in display.ax_.get_xlabel()
    # Several rows: a label at the foot of each reconstruction, none on the axis.
    wrapped = ReconstructionDisplay.from_estimator(vae, X, n_samples=7, n_cols=3, show_errors=True)
    assert [t.get_text() for t in wrapped.error_labels_] == [
        f"{e:.2f}" for e in wrapped.errors_
    ]
    assert [t.get_text() for t in wrapped.ax_.texts] == [f"{e:.2f}" for e in wrapped.errors_]
    assert _labels(wrapped.ax_.get_xticklabels()) == []
    # Off by default: the errors are there, not drawn.
    plain = ReconstructionDisplay.from_estimator(vae, X, n_samples=5)
    np.testing.assert_allclose(plain.errors_, display.errors_)
    assert plain.error_labels_ == [] and len(plain.ax_.texts) == 0


def test_reconstruction_errors_leave_missing_entries_out():
    originals = np.array([[0.0, np.nan, 1.0], [1.0, 1.0, 1.0]])
    recons = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 1.0]])
    display = ReconstructionDisplay(originals, recons, image_shape=None).plot(show_errors=True)
    np.testing.assert_allclose(display.errors_, [0.5, 1.0])


def test_tick_labels_of_latent_values_are_distinct():
    from skvae.plotting._base import _tick_labels

    values = np.linspace(-0.5, 0.5, 15)
    labels = _tick_labels(values)
    assert len(set(labels)) == 15 and labels[0] == "-0.50" and labels[7] == "0.00"
    assert _tick_labels(np.linspace(-3, 3, 4)) == ["-3.0", "-1.0", "1.0", "3.0"]


def test_manifold_ticks_tell_close_values_apart(vae):
    manifold = LatentManifoldDisplay.from_estimator(vae, grid_size=15, extent=0.5)
    for labels in (manifold.ax_.get_xticklabels(), manifold.ax_.get_yticklabels()):
        assert len(set(_labels(labels))) == 15


# ---------------------------------------------------------- traversal
def test_traversal_varies_one_dimension_per_row(vae3, data):
    X, _ = data
    display = LatentTraversalDisplay.from_estimator(vae3, X=X[0], n_steps=5, extent=2)
    base = vae3.transform(X[:1])[0]
    codes = display.latent_codes
    assert codes.shape == (3, 5, 3)
    np.testing.assert_allclose(display.values, np.linspace(-2, 2, 5))
    for row, d in enumerate(display.dims):
        others = [j for j in range(3) if j != d]
        np.testing.assert_allclose(codes[row][:, others], np.tile(base[others], (5, 1)), rtol=1e-6)
        np.testing.assert_allclose(codes[row][:, d], display.values, rtol=1e-6)
    np.testing.assert_allclose(
        display.decoded.reshape(-1, 64),
        vae3.inverse_transform(codes.reshape(-1, 3)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert _labels(display.ax_.get_xticklabels()) == ["-2.0", "-1.0", "0.0", "1.0", "2.0"]
    assert "posterior mean" in display.ax_.get_title()


def test_traversal_spies_on_inverse_transform(vae3, monkeypatch):
    decoded_inputs = []
    original = type(vae3).inverse_transform

    def spy(self, Z, *args, **kwargs):
        decoded_inputs.append(np.array(Z))
        return original(self, Z, *args, **kwargs)

    monkeypatch.setattr(type(vae3), "inverse_transform", spy)
    LatentTraversalDisplay.from_estimator(vae3, dims=1, n_steps=4)
    (Z,) = decoded_inputs
    np.testing.assert_array_equal(Z[:, [0, 2]], 0.0)  # the others at the prior mean
    np.testing.assert_allclose(Z[:, 1], np.linspace(-3, 3, 4))
    with pytest.raises(ValueError, match="dims"):
        LatentTraversalDisplay.from_estimator(vae3, dims=[3])
    with pytest.raises(ValueError, match="one sample"):
        LatentTraversalDisplay.from_estimator(vae3, X=np.zeros((2, 64)))


# ---------------------------------------------------- training curves
def test_training_curves_equal_history(vae):
    display = TrainingCurvesDisplay.from_estimator(vae)
    assert list(display.lines_) == ["loss", "reconstruction", "kl", "beta", "learning_rate"]
    epochs = [h["epoch"] for h in vae.history_]
    for key, line in display.lines_.items():
        np.testing.assert_allclose(line.get_xdata(), epochs)
        np.testing.assert_allclose(line.get_ydata(), [h[key] for h in vae.history_])
    assert len(display.axes_) == 5
    assert all(ax.figure is display.figure_ for ax in display.axes_)


def test_training_curves_skip_none_values():
    history = [
        {"epoch": 1, "loss": 3.0, "reconstruction": None, "kl": None, "beta": 1.0,
         "learning_rate": 0.1, "val_loss": None, "seconds": 0.1},
        {"epoch": 2, "loss": 2.0, "reconstruction": None, "kl": None, "beta": 1.0,
         "learning_rate": 0.1, "val_loss": 2.5, "seconds": 0.1, "classification": 0.7},
    ]  # IWAE: no reconstruction or KL terms
    display = TrainingCurvesDisplay(history).plot()
    assert list(display.lines_) == ["loss", "val_loss", "beta", "learning_rate", "classification"]
    np.testing.assert_allclose(display.lines_["val_loss"].get_xdata(), [2])
    np.testing.assert_allclose(display.lines_["classification"].get_ydata(), [0.7])
    with pytest.raises(ValueError, match="no values of 'kl'"):
        TrainingCurvesDisplay(history).plot(keys=["kl"])


def test_training_curves_into_given_axes(vae):
    fig, ax = plt.subplots()
    one = TrainingCurvesDisplay.from_estimator(vae, keys="loss", ax=ax)
    assert one.axes_[0] is ax and one.bounding_ax_ is None and one.figure_ is fig
    fig, ax = plt.subplots()
    split = TrainingCurvesDisplay.from_estimator(vae, keys=["loss", "kl"], ax=ax)
    assert split.bounding_ax_ is ax and not ax.axison
    assert all(a.figure is fig for a in split.axes_)
    fig, axes = plt.subplots(1, 2)
    pair = TrainingCurvesDisplay.from_estimator(vae, keys=["loss", "beta"], ax=axes)
    assert list(pair.axes_) == list(axes)
    with pytest.raises(ValueError, match="one per key"):
        TrainingCurvesDisplay.from_estimator(vae, keys=["loss"], ax=axes)


# ------------------------------------------------------------------ KL
def test_kl_bars_equal_kl_per_dimension(vae3, data):
    X, _ = data
    display = KLPerDimensionDisplay.from_estimator(vae3, X)
    heights = [bar.get_height() for bar in display.bars_]
    np.testing.assert_allclose(heights, vae3.kl_per_dimension(X), rtol=1e-6)
    active = vae3.active_units(X)
    colours = [bar.get_facecolor() for bar in display.bars_]
    for is_active, colour in zip(active, colours):
        assert (colour == matplotlib.colors.to_rgba("C0")) == bool(is_active)
    assert f"{active.sum()} of 3 active" in display.ax_.get_title()
    assert _labels(display.ax_.get_xticklabels()) == ["$z_{0}$", "$z_{1}$", "$z_{2}$"]


# ----------------------------------------------------- class-conditional
@pytest.mark.parametrize("model", ["cvae", "aux"])
def test_class_conditional_rows_decode_shared_codes(model, request):
    est = request.getfixturevalue(model)
    display = ClassConditionalDisplay.from_estimator(est, n_samples=4, random_state=0)
    assert display.decoded.shape == (10, 4, 64)
    assert display.latent_codes.shape == (4, 2)
    for i, c in enumerate(est.classes_):
        np.testing.assert_allclose(
            display.decoded[i], est.inverse_transform(display.latent_codes, y=c), rtol=1e-6
        )
    assert _labels(display.ax_.get_yticklabels()) == [str(c) for c in range(10)]
    # The codes are draws from the prior, as sample() draws them for one class.
    # sample decodes 4 rows, inverse_transform padded batches: float32 GEMMs of
    # other shapes (6e-8 apart here), means in [0, 1].
    np.testing.assert_allclose(
        display.decoded[3], est.sample(4, random_state=0, y=3), rtol=1e-5, atol=1e-6
    )


def test_class_conditional_subset_and_unlabelled_model(cvae, vae):
    display = ClassConditionalDisplay.from_estimator(cvae, classes=[7, 1], n_samples=2)
    assert display.decoded.shape == (2, 2, 64)
    assert _labels(display.ax_.get_yticklabels()) == ["7", "1"]
    with pytest.raises(ValueError, match="fitted with labels"):
        ClassConditionalDisplay.from_estimator(vae)


# ------------------------------------------------------ images vs flat
def test_flat_data_gives_line_plots(flat):
    X, model = flat
    samples = SamplesDisplay.from_estimator(model, grid_size=(2, 3), random_state=0)
    assert samples.im_ is None and samples.image_ is None
    assert isinstance(samples.lines_, LineCollection)
    segments = samples.lines_.get_segments()
    assert len(segments) == 6 and all(len(s) == 10 for s in segments)
    recon = ReconstructionDisplay.from_estimator(model, X, n_samples=3)
    assert len(recon.lines_.get_segments()) == 6  # originals and reconstructions
    manifold = LatentManifoldDisplay.from_estimator(model, grid_size=3)
    assert len(manifold.lines_.get_segments()) == 9
    assert _labels(manifold.ax_.get_xticklabels()) == ["-4.0", "0.0", "4.0"]


def test_conv_estimator_gives_images(data):
    X, _ = data
    conv = VAETransformer(
        architecture=Conv(image_shape=(8, 8, 1), filters=(4,)), max_iter=1, random_state=0
    ).fit(X[:100])
    display = SamplesDisplay.from_estimator(conv, grid_size=2, random_state=0, image_shape="auto")
    assert display.image_shape == (8, 8, 1) and display.im_ is not None
    assert display.image_.shape == (17, 17)


def test_image_shape_argument(vae, data):
    X, _ = data
    lines = ReconstructionDisplay.from_estimator(vae, X, n_samples=2, image_shape=None)
    assert lines.im_ is None and lines.lines_ is not None
    strips = SamplesDisplay.from_estimator(vae, grid_size=2, image_shape=(4, 16), random_state=0)
    assert strips.image_.shape == (9, 33)
    with pytest.raises(ValueError, match="holds 60 values but the samples have 64"):
        SamplesDisplay.from_estimator(vae, image_shape=(6, 10))
    with pytest.raises(ValueError, match="image_shape must be"):
        SamplesDisplay.from_estimator(vae, image_shape="square")


def test_images_follow_the_channel_order():
    # Two 2x3 images, 2 channels: pixel (r, c) of channel k is 100 k + 10 r + c.
    r, c, k = np.meshgrid(np.arange(2), np.arange(3), np.arange(2), indexing="ij")
    value = 100 * k + 10 * r + c  # (H, W, C)
    hwc = value.reshape(1, 1, -1)
    chw = np.moveaxis(value, -1, 0).reshape(1, 1, -1)
    ax = Figure().add_subplot()
    a = _draw_grid(ax, hwc, (2, 3, 2), True, value_range=(0, 200))
    b = _draw_grid(ax, chw, (2, 3, 2), False, value_range=(0, 200))
    # Channels side by side, each an upright (H, W) image.
    expected = np.concatenate([value[..., 0], value[..., 1]], axis=1)
    np.testing.assert_array_equal(a.image, expected)
    np.testing.assert_array_equal(b.image, expected)
    rgb = _draw_grid(ax, np.random.RandomState(0).rand(1, 2, 12), (2, 2, 3), True)
    assert rgb.image.shape == (2, 5, 4)  # RGBA, blank column transparent
    assert rgb.image[0, 2, 3] == 0.0


def test_image_shape_read_from_the_architecture():
    class Arch:
        image_shape = (4, 4, 3)
        channels_last = True

    class Est:
        architecture_ = Arch()

    assert _resolve_image_shape(Est(), "auto", None, 48) == ((4, 4, 3), True)
    assert _resolve_image_shape(Est(), "auto", False, 48) == ((4, 4, 3), False)
    assert _resolve_image_shape(None, "auto", None, 49) == ((7, 7, 1), False)
    assert _resolve_image_shape(None, "auto", None, 3) == (None, False)


def test_line_cells_put_each_value_in_its_cell():
    ax = Figure().add_subplot()
    samples = np.zeros((2, 3, 5))
    samples[1, 2] = [-1.0, -0.5, 0.0, 0.5, 1.0]
    samples[0, 1] = np.nan  # an empty cell: no frame, no line
    ghost = np.full_like(samples, 0.5)
    grid = _draw_grid(ax, samples, None, value_range=(-1.0, 1.0), ghost=ghost)
    # A cell is n_features - 1 = 4 wide and 0.6 * 4 = 2.4 high, 1 and 0.72 apart;
    # values -1 to 1 span it from the bottom (large y) to the top.
    frames, zero, ghost_lines = ax.collections[:3]
    assert len(frames.get_paths()) == len(zero.get_segments()) == 5
    last = grid.lines.get_segments()[-1]  # cell (1, 2)
    np.testing.assert_allclose(last[:, 0], 2 * 5.0 + np.arange(5))
    np.testing.assert_allclose(last[:, 1], 3.12 + 2.4 * (1 - (samples[1, 2] + 1) / 2))
    np.testing.assert_allclose(zero.get_segments()[-1][:, 1], 3.12 + 1.2)
    np.testing.assert_allclose(ghost_lines.get_segments()[0][:, 1], 2.4 * 0.25)
    np.testing.assert_allclose(grid.x_centers, [2.0, 7.0, 12.0])
    np.testing.assert_allclose(grid.y_centers, [1.2, 4.32])


def test_displays_read_no_private_estimator_state():
    # Displays use the public API only (transform, inverse_transform, sample,
    # module_, skvae.base.map_batches), so that any fitted skvae estimator works.
    import ast
    from pathlib import Path

    private = []
    for path in Path(skvae.plotting.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            chain = []
            while isinstance(node, ast.Attribute):
                chain.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name) and node.id in ("estimator", "vae", "model"):
                if any(a.startswith("_") for a in chain):
                    private.append(f"{path.name}: {node.id}.{'.'.join(reversed(chain))}")
    assert not private, private


# ---------------------------------------------------------- general
def test_given_ax_is_used_and_no_figure_is_made(vae, cvae, data):
    X, y = data
    fig = Figure()  # not known to pyplot
    calls = [
        lambda ax: LatentScatterDisplay.from_estimator(vae, X, y, ax=ax),
        lambda ax: LatentManifoldDisplay.from_estimator(vae, grid_size=3, ax=ax),
        lambda ax: SamplesDisplay.from_estimator(vae, grid_size=2, ax=ax),
        lambda ax: ReconstructionDisplay.from_estimator(vae, X, n_samples=2, ax=ax),
        lambda ax: LatentTraversalDisplay.from_estimator(vae, n_steps=3, ax=ax),
        lambda ax: KLPerDimensionDisplay.from_estimator(vae, X, ax=ax),
        lambda ax: ClassConditionalDisplay.from_estimator(cvae, n_samples=2, ax=ax),
        lambda ax: TrainingCurvesDisplay.from_estimator(vae, keys="kl", ax=ax),
    ]
    for call in calls:
        ax = fig.add_subplot()
        display = call(ax)
        assert display.figure_ is fig
        assert getattr(display, "ax_", None) is ax or display.axes_[0] is ax
        assert ax.has_data() or ax.images
    assert plt.get_fignums() == []


def test_plot_again_on_new_axes(vae):
    display = SamplesDisplay.from_estimator(vae, grid_size=2, random_state=0)
    fig, ax = plt.subplots()
    again = display.plot(ax=ax, cmap="viridis")
    assert again is display and display.ax_ is ax
    assert display.im_.get_cmap().name == "viridis"


def test_every_display_documents_itself():
    for name in skvae.plotting.__all__:
        cls = getattr(skvae.plotting, name)
        doc = inspect.getdoc(cls)
        assert "Examples\n--------" in doc, name
        assert "Parameters\n----------" in inspect.getdoc(cls.from_estimator), name
        assert "Returns\n-------" in inspect.getdoc(cls.plot), name
