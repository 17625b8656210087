"""
Seed 004: a VAE with an auxiliary classifier, generating a chosen class
=======================================================================

Reproduces the post on VAEs whose latent code is joined by a classifier's
softmax (Yoel Zeldes, "Variational autoencoders: theory and working code", a
TensorFlow MNIST model): encoder Dense 128 (sigmoid) -> mean and variance
1e-5 + exp(h) of a 10-D code; a classifier Dense 128 (sigmoid) -> 10 logits
whose softmax is appended to z; decoder Dense 128 (sigmoid) -> sigmoid means
of a Gaussian with standard deviation 0.5; loss = reconstruction + KL + 10 x
the classifier's cross-entropy; Adam 1e-3, batch 100, 20 epochs.
:class:`skvae.AuxiliaryClassifierVAE` is that model (``classifier_weight=10``,
a [128] sigmoid classifier).

Like the post, after every epoch it decodes one shared z ~ N(0, I) with the
class part set to each class's one-hot vector: a grid of epochs x classes.
It also draws the final model's classes from several shared codes, and the
VAE and classifier loss curves, and prints the classifier's test accuracy.

The post trained on all 60,000 images; the gallery trains on the first
12,000 (under a minute on two CPU cores). Set ``N_TRAIN = None`` for the
post's run (about ten minutes).

Data: MNIST when :func:`skvae.datasets.load_mnist` finds its files, else
Fashion-MNIST when its files are found (Debian's ``dataset-fashion-mnist``
puts them in /usr/share/datasets), else scikit-learn's 8x8 digits. The
output says which; nothing is downloaded unless ``DOWNLOAD = True``.
"""

# %%
# The post's network
# ------------------
# The ``sigmoid_mlp`` preset is the post's encoder and decoder (sigmoid output
# included), but its ``build`` takes no ``decoder_conditions``, so
# ``AuxiliaryClassifierVAE`` refuses it. The few lines of ``SeedSigmoidMLP``
# widen its decoder's first layer by the classifier's 10 outputs, which gives
# the post's network exactly. (The built-in alternative,
# ``MLP(hidden_sizes=(128,), activation="sigmoid")``, has a linear decoder
# output and a log-variance head.)
import time

import matplotlib.pyplot as plt
import numpy as np
from torch import nn

from skvae import AuxiliaryClassifierVAE
from skvae.plotting import ClassConditionalDisplay, SamplesDisplay, TrainingCurvesDisplay
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.presets import SigmoidMLP
from _common import load_data, quick, save
# sphinx_gallery_thumbnail_number = 3

DATASET = "auto"  # MNIST, else Fashion-MNIST; or "mnist", "fashion", "digits"
DOWNLOAD = False  # True: download the DATASET's files when missing
N_TRAIN = quick(12000, 1000)  # None: every training image
EPOCHS = quick(20, 2)


class SeedSigmoidMLP(SigmoidMLP):
    """``sigmoid_mlp`` whose decoder also takes a condition (the classifier's softmax)."""

    name = "seed004_sigmoid_mlp"

    def build(self, n_features, n_components, n_outputs, *, decoder_conditions=0):
        net = super().build(n_features, n_components, n_outputs)
        first = net.decoder[0]  # Dense 128 on z: widen it to [z, softmax]
        net.decoder[0] = nn.Linear(n_components + decoder_conditions, first.out_features)
        return net


title, X_train, y_train, X_test, y_test, names, shape = load_data(
    DATASET, N_TRAIN, quick(None, 500), download=DOWNLOAD
)
model = AuxiliaryClassifierVAE(
    n_components=10,  # z_dim
    architecture=SeedSigmoidMLP(output_activation="sigmoid"),
    likelihood=Gaussian(scale=0.5),  # decoder_std
    classifier_hidden_sizes=(128,),
    classifier_activation="sigmoid",
    classifier_weight=10.0,  # digit_classification_weight
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=100,
    max_iter=EPOCHS,
    random_state=0,
)

# %%
# Training, one epoch at a time
# -----------------------------
# As the post: ``partial_fit`` runs one epoch; after each, one shared z is
# decoded with every class.
rng = np.random.RandomState(0)
per_epoch = []
start = time.perf_counter()
for epoch in range(EPOCHS):
    model.partial_fit(X_train, y_train)
    z = np.repeat(rng.normal(size=(1, 10)), len(model.classes_), axis=0)
    per_epoch.append(model.inverse_transform(z, y=model.classes_))
    r = model.history_[-1]
    print(f"epoch {r['epoch']:2d}: VAE loss {r['reconstruction'] + r['kl']:8.2f}  "
          f"classifier loss {r['classification']:.4f}")
print(f"fitted {model.n_iter_} epochs in {time.perf_counter() - start:.1f} s")
print(f"test accuracy of the auxiliary classifier: {model.score(X_test, y_test):.4f}")

# %%
# The post's two curves: the VAE loss and the (unweighted) classifier loss.
history = [{"epoch": r["epoch"], "vae": r["reconstruction"] + r["kl"],
            "classification": r["classification"]} for r in model.history_]
curves = TrainingCurvesDisplay(history).plot(keys=["vae", "classification"])
curves.axes_[0].set_title("VAE loss (reconstruction + KL)")
curves.axes_[0].set_ylabel("nats per sample")
curves.axes_[1].set_title("classifier loss (cross-entropy)")
save(curves.figure_, "loss_curves.png")

# %%
# Choosing the class
# ------------------
# One row per epoch: the same z, decoded with each class's one-hot vector in
# place of the classifier's softmax. The class part steers what is drawn (a
# trouser, a shoe or a top from the same z); z, trained alongside it, holds
# the rest, and some of the class too: classes that share a silhouette
# (pullover, coat, shirt, bag) come out alike.
class_labels = [str(n) for n in names]
samples = SamplesDisplay(np.stack(per_epoch), (len(per_epoch), len(model.classes_)),
                         image_shape=shape).plot(title="One z per epoch, decoded with each class")
h = shape[0] + 1  # tile height plus the 1-pixel gap
samples.ax_.set_yticks(np.arange(len(per_epoch)) * h + (shape[0] - 1) / 2,
                       [f"epoch {e + 1}" for e in range(len(per_epoch))])
samples.ax_.set_xticks(np.arange(len(model.classes_)) * h + (shape[1] - 1) / 2, class_labels,
                       rotation=90 if title == "Fashion-MNIST" else 0)
samples.ax_.tick_params(length=0, labelsize="small")
save(samples.figure_, "samples_per_epoch.png")

# %%
# The final model: eight shared codes (columns), each decoded with every
# class (rows).
final = ClassConditionalDisplay.from_estimator(
    model, n_samples=8, random_state=0,
    title=f"{title}: 8 shared codes z, class part set to each class",
)
final.ax_.set_yticks(final.ax_.get_yticks(), class_labels)
save(final.figure_, "class_conditional.png")

plt.show()
