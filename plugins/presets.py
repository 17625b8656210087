"""Named architectures that reproduce the seed posts' networks layer for layer.

=====================  ======================================================
name                   network
=====================  ======================================================
``csnl_small_dense``   seed 000 SmallDenseVAE: 420-210-105 / 200-400-800 ReLU
``csnl_dense``         seed 000 DenseVAE: 1024-512-512-256-256 /
                       512-512-1024-1024-2048 ReLU
``keras_conv``         seed 001 conv VAE: Conv 8, 16 (k3 s2) + BN, Dense 20
``keras_dcgan_conv``   seed 001 DCGAN-like: Conv 128-256-512-1024 (k5 s2) + BN
``cifar_gray_mlp``     seed 003: 1024-512 / 256-512 sigmoid, truncated-normal
``sigmoid_mlp``        seed 004: 128 / 128 sigmoid, variance 1e-5 + exp(h)
=====================  ======================================================

The MLP presets accept any number of features (tabular data included); the
conv presets need rows that are flattened images (see :mod:`skvae_plugins.conv`
for the flattening order). In every preset the latent size is the estimator's
``n_components`` and the decoder's last layer is linear, giving the
likelihood's parameters (logits for Bernoulli, where the seeds applied a
sigmoid inside the network), except ``sigmoid_mlp(output_activation="sigmoid")``.
"""

from numbers import Real

import torch
from torch import nn

from skvae.base import Architecture, EncoderDecoder
from skvae.hookspecs import hookimpl
from skvae_plugins.conv import VariationalHead, build_conv_network
from skvae.base import ACTIVATIONS

__all__ = [
    "CsnlSmallDense",
    "CsnlDense",
    "KerasConv",
    "KerasDCGANConv",
    "CifarGrayMLP",
    "SigmoidMLP",
]


def _dense_stack(n_in, sizes, activation):
    """Dense -> activation per size; returns (layers, width of the last)."""
    layers = []
    for size in sizes:
        layers += [nn.Linear(n_in, size), ACTIVATIONS[activation]()]
        n_in = size
    return layers, n_in


def _mlp_network(
    n_features, n_components, n_outputs, encoder_sizes, decoder_sizes, activation,
    parametrization, output_activation=None,
):
    body, width = _dense_stack(n_features, encoder_sizes, activation)
    encoder = nn.Sequential(*body, VariationalHead(width, n_components, parametrization))
    body, width = _dense_stack(n_components, decoder_sizes, activation)
    body.append(nn.Linear(width, n_outputs))
    if output_activation is not None:
        body.append(ACTIVATIONS[output_activation]())
    return EncoderDecoder(encoder, nn.Sequential(*body))


# ------------------------------------------------------------------- seed 000
class CsnlSmallDense(Architecture):
    """Seed 000's ``SmallDenseVAE`` (the csnl library), layer for layer.

    Encoder: Dense 420 -> 210 -> 105, each followed by ReLU; then a Dense
    mean and a Dense log-sigma (read as log-variance = 2 * log-sigma).
    Decoder: Dense 200 -> 400 -> 800 with ReLU, then a linear Dense to the
    likelihood's parameters. Any number of features.

    Examples
    --------
    >>> from skvae_plugins.presets import CsnlSmallDense
    >>> net = CsnlSmallDense().build(n_features=784, n_components=2, n_outputs=784)
    >>> [layer.out_features for layer in net.decoder if hasattr(layer, "out_features")]
    [200, 400, 800, 784]
    >>> net.encoder[-1].parametrization
    'log_sigma'
    """

    name = "csnl_small_dense"

    def build(self, n_features, n_components, n_outputs):
        return _mlp_network(
            n_features, n_components, n_outputs,
            (420, 210, 105), (200, 400, 800), "relu", "log_sigma",
        )


class CsnlDense(Architecture):
    """Seed 000's ``DenseVAE`` (the csnl library), layer for layer.

    Encoder: Dense 1024 -> 512 -> 512 -> 256 -> 256, each followed by ReLU;
    then a Dense mean and a Dense log-sigma. Decoder: Dense 512 -> 512 ->
    1024 -> 1024 -> 2048 with ReLU, then a linear Dense to the likelihood's
    parameters. On 784 features, a 2-D latent space and a Bernoulli
    likelihood (784 outputs) it has 7,334,164 parameters, as in the seed.

    Examples
    --------
    >>> from skvae_plugins.presets import CsnlDense
    >>> net = CsnlDense().build(n_features=784, n_components=2, n_outputs=784)
    >>> sum(p.numel() for p in net.parameters())
    7334164
    """

    name = "csnl_dense"

    def build(self, n_features, n_components, n_outputs):
        return _mlp_network(
            n_features, n_components, n_outputs,
            (1024, 512, 512, 256, 256), (512, 512, 1024, 1024, 2048), "relu", "log_sigma",
        )


# ------------------------------------------------------------------- seed 001
class KerasConv(Architecture):
    """Seed 001's small convolutional VAE (MachineCurve, Keras), layer for layer.

    Encoder: Conv2D 8 (k3, s2, "same") ReLU + BN; Conv2D 16 (k3, s2) ReLU +
    BN; Flatten; Dense 20 ReLU + BN; Dense mean and Dense log-variance.
    Decoder: Dense to the last conv shape (7*7*16 on 28x28) ReLU + BN;
    reshape; ConvTranspose 16 (k3, s2) ReLU + BN; ConvTranspose 8 (k3, s2)
    ReLU + BN; ConvTranspose C (k3, s1) with a linear output (the logits of
    the seed's sigmoid). On 28x28x1 with a 2-D latent space it has the
    seed's Keras counts (trainable parameters plus batch-norm running
    statistics): encoder 17,208, decoder 9,137. Batch norm uses torch's
    defaults (Keras: momentum 0.99, epsilon 1e-3).

    This is :class:`skvae_plugins.conv.Conv` with ``filters=(8, 16)``,
    ``kernel_size=3``, ``strides=2``, ``batch_norm=True`` and
    ``dense_units=20``; any image size works.

    Parameters
    ----------
    image_shape : tuple of int (height, width, channels) or None, default=None
        Shape of one image; None means a square single-channel image.
    channels_last : bool, default=False
        Whether rows of X are flattened ``(H, W, C)`` (Keras, numpy) rather
        than ``(C, H, W)`` (torch); see :class:`skvae_plugins.conv.Conv`.

    Examples
    --------
    >>> from skvae_plugins.presets import KerasConv
    >>> net = KerasConv().build(n_features=784, n_components=2, n_outputs=784)
    >>> net.decoder[0]
    Linear(in_features=2, out_features=784, bias=True)
    """

    name = "keras_conv"
    _settings = dict(
        filters=(8, 16), kernel_size=3, strides=2, batch_norm=True, dense_units=20,
        activation="relu", output_kernel_size=3,
    )

    def __init__(self, image_shape=None, channels_last=False):
        self.image_shape = image_shape
        self.channels_last = channels_last

    def build(self, n_features, n_components, n_outputs):
        return build_conv_network(
            n_features, n_components, n_outputs,
            image_shape=self.image_shape, channels_last=self.channels_last,
            owner=type(self).__name__, **self._settings,
        )


class KerasDCGANConv(KerasConv):
    """Seed 001's DCGAN-like convolutional VAE, with its shapes computed.

    Encoder: Conv2D 128 -> 256 -> 512 -> 1024 (k5, s2, "same"), each ReLU +
    BN; Flatten; Dense 20 ReLU + BN; Dense mean and Dense log-variance.
    Decoder: Dense to the last conv shape ReLU + BN; reshape;
    ConvTranspose 1024 -> 512 -> 256 -> 128 (k5, s2) ReLU + BN; ConvTranspose
    C (k3, s1), linear. The post's printed sizes do not fit its code (four
    stride-2 layers on 28x28); here the sizes are computed,
    28 -> 14 -> 7 -> 4 -> 2 and back with output padding to 28 exactly. About
    61 million parameters on 28x28: a GPU model.

    Parameters
    ----------
    image_shape : tuple of int (height, width, channels) or None, default=None
        Shape of one image; None means a square single-channel image.
    channels_last : bool, default=False
        Whether rows of X are flattened ``(H, W, C)`` rather than ``(C, H, W)``.

    Examples
    --------
    >>> from skvae_plugins.presets import KerasDCGANConv
    >>> KerasDCGANConv(image_shape=(32, 32, 3), channels_last=True)
    KerasDCGANConv(channels_last=True, image_shape=(32, 32, 3))
    """

    name = "keras_dcgan_conv"
    _settings = dict(
        filters=(128, 256, 512, 1024), kernel_size=5, strides=2, batch_norm=True,
        dense_units=20, activation="relu", output_kernel_size=3,
    )


# ------------------------------------------------------------------- seed 003
def _positive_real(value):
    return isinstance(value, Real) and not isinstance(value, bool) and value > 0


class CifarGrayMLP(Architecture):
    """Seed 003's sigmoid MLP for grey 32x32 CIFAR-10 images, layer for layer.

    Encoder: Dense 1024 -> 512, each followed by a sigmoid; Dense mean and
    Dense log-variance. Decoder: Dense 256 -> 512 with sigmoids, then a linear
    Dense to the likelihood's parameters (the seed's output sigmoid is the
    Bernoulli likelihood's). Weights start from a normal truncated at two
    standard deviations (``torch.nn.init.trunc_normal_``), as TensorFlow's
    ``truncated_normal``. The seed used 1024 features (32x32) and a 15-D
    latent space; any sizes work.

    Parameters
    ----------
    encoder_init_std : float, default=0.1
        Standard deviation of the encoder's weights (heads included).
    decoder_init_std : float, default=0.01
        Standard deviation of the decoder's weights.
    bias_init_std : float, default=0.01
        Standard deviation of every bias.

    Examples
    --------
    >>> from skvae_plugins.presets import CifarGrayMLP
    >>> net = CifarGrayMLP().build(n_features=1024, n_components=15, n_outputs=1024)
    >>> net.decoder
    Sequential(
      (0): Linear(in_features=15, out_features=256, bias=True)
      (1): Sigmoid()
      (2): Linear(in_features=256, out_features=512, bias=True)
      (3): Sigmoid()
      (4): Linear(in_features=512, out_features=1024, bias=True)
    )
    >>> bool(net.decoder[0].weight.abs().max() <= 0.02)
    True
    """

    name = "cifar_gray_mlp"

    def __init__(self, encoder_init_std=0.1, decoder_init_std=0.01, bias_init_std=0.01):
        self.encoder_init_std = encoder_init_std
        self.decoder_init_std = decoder_init_std
        self.bias_init_std = bias_init_std

    def build(self, n_features, n_components, n_outputs):
        for param in ("encoder_init_std", "decoder_init_std", "bias_init_std"):
            if not _positive_real(getattr(self, param)):
                raise ValueError(
                    f"CifarGrayMLP {param} must be a positive number; "
                    f"got {getattr(self, param)!r}."
                )
        net = _mlp_network(
            n_features, n_components, n_outputs, (1024, 512), (256, 512), "sigmoid", "log_var"
        )
        for part, std in ((net.encoder, self.encoder_init_std),
                          (net.decoder, self.decoder_init_std)):
            for layer in part.modules():
                if isinstance(layer, nn.Linear):
                    _trunc_normal(layer.weight, float(std))
                    _trunc_normal(layer.bias, float(self.bias_init_std))
        return net


@torch.no_grad()
def _trunc_normal(tensor, std):
    nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


# ------------------------------------------------------------------- seed 004
class SigmoidMLP(Architecture):
    """Seed 004's MLP (the VAE with an auxiliary classifier), layer for layer.

    Encoder: Dense 128 with a sigmoid; Dense mean and a Dense ``h`` read as
    the variance ``1e-5 + exp(h)`` (log-variance ``logaddexp(h, log 1e-5)``).
    Decoder: Dense 128 with a sigmoid, then Dense to the likelihood's
    parameters. The seed's auxiliary digit classifier, whose softmax it
    appended to z, is not part of this network. Any number of features.

    Parameters
    ----------
    output_activation : {None, "sigmoid"}, default=None
        None gives a linear output (logits for the Bernoulli likelihood).
        "sigmoid" is the seed's decoder: means in [0, 1] for a Gaussian
        likelihood with a fixed scale, ``likelihood=Gaussian(scale=0.5)``;
        it needs a likelihood with one parameter per feature.

    Examples
    --------
    >>> from skvae_plugins.presets import SigmoidMLP
    >>> net = SigmoidMLP("sigmoid").build(n_features=784, n_components=10, n_outputs=784)
    >>> net.decoder
    Sequential(
      (0): Linear(in_features=10, out_features=128, bias=True)
      (1): Sigmoid()
      (2): Linear(in_features=128, out_features=784, bias=True)
      (3): Sigmoid()
    )

    The seed's model, on 8x8 digits:

    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae_plugins.gaussian import Gaussian
    >>> X = load_digits().data[:100] / 16
    >>> vae = VAETransformer(n_components=10, architecture=SigmoidMLP("sigmoid"),
    ...                      likelihood=Gaussian(scale=0.5), max_iter=2,
    ...                      random_state=0).fit(X)
    >>> bool(0 <= vae.inverse_transform(vae.transform(X[:5])).min())
    True
    """

    name = "sigmoid_mlp"

    def __init__(self, output_activation=None):
        self.output_activation = output_activation

    def build(self, n_features, n_components, n_outputs):
        if self.output_activation not in (None, "sigmoid"):
            raise ValueError(
                "SigmoidMLP output_activation must be None or 'sigmoid'; "
                f"got {self.output_activation!r}."
            )
        if self.output_activation is not None and n_outputs != n_features:
            raise ValueError(
                f"SigmoidMLP output_activation={self.output_activation!r} makes the "
                "decoder output means in [0, 1]; it needs a likelihood with one "
                f"parameter per feature, such as Gaussian(scale=0.5), but got "
                f"{n_outputs} outputs for {n_features} features."
            )
        return _mlp_network(
            n_features, n_components, n_outputs, (128,), (128,), "sigmoid", "variance",
            self.output_activation,
        )


@hookimpl
def skvae_register_architectures():
    return [CsnlSmallDense, CsnlDense, KerasConv, KerasDCGANConv, CifarGrayMLP, SigmoidMLP]
