"""Plots of fitted VAEs, as scikit-learn style displays.

Each display computes what to draw from a fitted estimator with
``Display.from_estimator(estimator, ..., ax=None, **kwargs)`` and draws it
with ``display.plot(ax=None, ...)``; both return the display, which keeps
the matplotlib objects (``figure_``, ``ax_`` or ``axes_``, and the artists)
for further styling. As in scikit-learn, a new figure is made with
``matplotlib.pyplot.subplots`` only when no ``ax`` is given; nothing else
touches pyplot's state.

- :class:`LatentScatterDisplay`: posterior means coloured by a label (where
  the data lie in the latent space);
- :class:`LatentManifoldDisplay`: decoded grid over two latent dimensions
  (what the decoder makes of each region);
- :class:`LatentTraversalDisplay`: one latent dimension swept at a time
  (what each dimension changes in the output);
- :class:`SamplesDisplay`: generated samples;
- :class:`ReconstructionDisplay`: originals above reconstructions (what the
  model keeps of each sample);
- :class:`ClassConditionalDisplay`: samples of each class from shared codes
  (what the label controls, and what z does);
- :class:`TrainingCurvesDisplay`: the curves of ``history_``;
- :class:`KLPerDimensionDisplay`: KL of each latent dimension, active units
  marked;
- :class:`OutlierDisplay`: an outlier detector's most anomalous rows, their
  per-feature errors as a heat overlay (which pixels make them unlikely).

Samples are drawn as images when their shape is known: from the
estimator's architecture (conv plugins have ``image_shape`` and
``channels_last``), from an ``image_shape=(height, width[, channels])``
argument, or, by default, as a square grey image when the number of
features is a perfect square (64 features: 8 x 8). Other samples are drawn
as small line plots of their values; ``image_shape=None`` asks for those.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from sklearn.datasets import load_digits
>>> from skvae import VAETransformer
>>> from skvae.plotting import SamplesDisplay
>>> X = load_digits().data[:300] / 16
>>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
>>> display = SamplesDisplay.from_estimator(vae, grid_size=4, random_state=0)
>>> display.figure_.savefig("samples.png")  # doctest: +SKIP
"""

from ._latent import LatentManifoldDisplay, LatentScatterDisplay, LatentTraversalDisplay
from ._outlier import OutlierDisplay
from ._samples import ClassConditionalDisplay, ReconstructionDisplay, SamplesDisplay
from ._training import KLPerDimensionDisplay, TrainingCurvesDisplay

__all__ = [
    "ClassConditionalDisplay",
    "KLPerDimensionDisplay",
    "LatentManifoldDisplay",
    "LatentScatterDisplay",
    "LatentTraversalDisplay",
    "OutlierDisplay",
    "ReconstructionDisplay",
    "SamplesDisplay",
    "TrainingCurvesDisplay",
]
