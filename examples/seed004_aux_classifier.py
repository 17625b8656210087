"""Seed 004: a VAE with an auxiliary digit classifier, generating a chosen digit.

Reproduces the post on VAEs whose latent code is joined by a classifier's
softmax (a TensorFlow MNIST model): encoder Dense 128 (sigmoid) -> mean and
variance 1e-5 + exp(h) of a 10-D code; a classifier Dense 128 (sigmoid) -> 10
logits whose softmax is appended to z; decoder Dense 128 (sigmoid) -> sigmoid
means of a Gaussian with standard deviation 0.5; loss = reconstruction + KL +
10 x the classifier's cross-entropy; Adam 1e-3, batch 100, 20 epochs.
``skvae.AuxiliaryClassifierVAE`` is that model (``classifier_weight=10``, a
[128] sigmoid classifier by default).

The ``sigmoid_mlp`` preset is the post's encoder and decoder (sigmoid output
included), but its ``build`` takes no ``decoder_conditions``, so
AuxiliaryClassifierVAE refuses it. The few lines of ``SeedSigmoidMLP`` below
widen its decoder's first layer by the classifier's 10 outputs, which gives the
post's network exactly. (The built-in alternative, ``MLP(hidden_sizes=(128,),
activation="sigmoid")``, has a linear decoder output and a log-variance head.)

Like the post, after every epoch it decodes one shared z ~ N(0, I) with the class
part set to each digit's one-hot vector: a grid of epochs x digits. It also draws
the final model's digits from several shared codes, and the VAE and classifier
loss curves, and prints the classifier's test accuracy.

Data: MNIST when ``skvae.datasets.load_mnist`` finds its files (it downloads
them with ``--dataset mnist``), else Fashion-MNIST when its files are found
(Debian's package ``dataset-fashion-mnist`` puts them in /usr/share/datasets),
else scikit-learn's 8x8 digits. The output says which.

Run::

    python examples/seed004_aux_classifier.py                    # 20 epochs, ~10 min on 2 cores
    python examples/seed004_aux_classifier.py --dataset digits   # 8x8 digits, seconds
    SKVAE_QUICK=1 python examples/seed004_aux_classifier.py      # a few seconds

Figures go to ``--out`` (default ``runs/seed004_aux_classifier``).
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from torch import nn  # noqa: E402

from skvae import AuxiliaryClassifierVAE  # noqa: E402
from skvae.plotting import (  # noqa: E402
    ClassConditionalDisplay,
    SamplesDisplay,
    TrainingCurvesDisplay,
)
from skvae_plugins.gaussian import Gaussian  # noqa: E402
from skvae_plugins.presets import SigmoidMLP  # noqa: E402
from _common import QUICK, load_data, save  # noqa: E402



class SeedSigmoidMLP(SigmoidMLP):
    """``sigmoid_mlp`` whose decoder also takes a condition (the classifier's softmax)."""

    name = "seed004_sigmoid_mlp"

    def build(self, n_features, n_components, n_outputs, *, decoder_conditions=0):
        net = super().build(n_features, n_components, n_outputs)
        first = net.decoder[0]  # Dense 128 on z: widen it to [z, softmax]
        net.decoder[0] = nn.Linear(n_components + decoder_conditions, first.out_features)
        return net


def parse_args():
    name = Path(__file__).stem
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / name,
                        help=f"folder for the figures (default runs/{name})")
    parser.add_argument("--epochs", type=int, default=2 if QUICK else 20,
                        help="epochs (default 20, quick 2)")
    parser.add_argument("--dataset", choices=["auto", "mnist", "fashion", "digits"], default="auto",
                        help="auto: MNIST, else Fashion-MNIST, else 8x8 digits (files found "
                             "only); mnist or fashion downloads them if missing")
    parser.add_argument("--n-train", type=int, default=1000 if QUICK else None,
                        help="use only the first N training images (default all, quick 1000)")
    return parser.parse_args()






def main():
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    title, X_train, y_train, X_test, y_test, names, shape = load_data(
        args.dataset, args.n_train, 500 if QUICK else None
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
        max_iter=args.epochs,
        random_state=0,
    )

    # One epoch at a time, as the post: after each, one shared z with every class.
    rng = np.random.RandomState(0)
    per_epoch = []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.partial_fit(X_train, y_train)
        z = np.repeat(rng.normal(size=(1, 10)), len(model.classes_), axis=0)
        per_epoch.append(model.inverse_transform(z, y=model.classes_))
        r = model.history_[-1]
        print(f"epoch {r['epoch']:2d}: VAE loss {r['reconstruction'] + r['kl']:8.2f}  "
              f"classifier loss {r['classification']:.4f}")
    seconds = time.perf_counter() - start
    print(f"fitted {model.n_iter_} epochs in {seconds:.1f} s")
    print(f"test accuracy of the auxiliary classifier: {model.score(X_test, y_test):.4f}")

    class_labels = [str(n) for n in names]
    samples = SamplesDisplay(np.stack(per_epoch), (len(per_epoch), len(model.classes_)),
                             image_shape=shape).plot(title="One z per epoch, decoded with each class")
    h = shape[0] + 1  # tile height plus the 1-pixel gap
    samples.ax_.set_yticks(np.arange(len(per_epoch)) * h + (shape[0] - 1) / 2,
                           [f"epoch {e + 1}" for e in range(len(per_epoch))])
    samples.ax_.set_xticks(np.arange(len(model.classes_)) * h + (shape[1] - 1) / 2, class_labels,
                           rotation=90 if title == "Fashion-MNIST" else 0)
    samples.ax_.tick_params(length=0, labelsize="small")
    save(samples.figure_, args.out / "samples_per_epoch.png")

    final = ClassConditionalDisplay.from_estimator(
        model, n_samples=8, random_state=0,
        title=f"{title}: 8 shared codes z, class part set to each class",
    )
    final.ax_.set_yticks(final.ax_.get_yticks(), class_labels)
    save(final.figure_, args.out / "class_conditional.png")

    # The post's two curves: the VAE loss and the (unweighted) classifier loss.
    history = [{"epoch": r["epoch"], "vae": r["reconstruction"] + r["kl"],
                "classification": r["classification"]} for r in model.history_]
    curves = TrainingCurvesDisplay(history).plot(keys=["vae", "classification"])
    curves.axes_[0].set_title("VAE loss (reconstruction + KL)")
    curves.axes_[0].set_ylabel("nats per sample")
    curves.axes_[1].set_title("classifier loss (cross-entropy)")
    save(curves.figure_, args.out / "loss_curves.png")


if __name__ == "__main__":
    main()
