"""Architecture ``conv``: convolutional encoder and transposed-convolution decoder.

``X`` stays 2-D, as scikit-learn wants: each row is one image, flattened.
The network reshapes rows to images on the way in and flattens the decoder's
images on the way out, in the same order. Two orders are supported:

* ``channels_last=False`` (default): rows are ``(channels, height, width)``
  flattened, as ``torch`` tensors and the CIFAR-10 python files store them
  (``images.reshape(n, -1)`` for an ``(n, C, H, W)`` array);
* ``channels_last=True``: rows are ``(height, width, channels)`` flattened, as
  Keras, PIL and most numpy image arrays store them (``(n, H, W, C)``).

The module also holds the pieces the conv presets of
:mod:`skvae_plugins.presets` share: :class:`VariationalHead` and
:func:`build_conv_network`.
"""

import math
from numbers import Integral

import torch
from torch import nn
from torch.nn import functional as F

from skvae.base import ACTIVATIONS, Architecture, EncoderDecoder
from skvae.hookspecs import hookimpl

__all__ = [
    "Conv",
    "VariationalHead",
    "BatchNorm1d",
    "BatchNorm2d",
    "ToImage",
    "FromImage",
    "resolve_image_shape",
    "conv_shapes",
    "build_conv_network",
]

#: Floor of the variance in the "variance" parametrization.
MIN_VARIANCE = 1e-5


# --------------------------------------------------------------- shared parts
class VariationalHead(nn.Module):
    """Two dense layers giving the posterior mean and its spread.

    The second layer's output is read according to ``parametrization`` and
    returned as a log-variance, so that ``forward`` gives
    ``concat([mean, log_var])`` as :class:`skvae.base.EncoderDecoder` expects:

    * ``"log_var"``: the layer gives the log-variance (the common choice);
    * ``"log_sigma"``: the layer gives log(sigma), so log_var = 2 * h;
    * ``"variance"``: variance = 1e-5 + exp(h), so
      log_var = logaddexp(h, log 1e-5), computed stably (a floored variance).

    Parameters
    ----------
    n_in : int
        Width of the layer below.
    n_components : int
        Size of the latent space.
    parametrization : {"log_var", "log_sigma", "variance"}, default="log_var"

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.conv import VariationalHead
    >>> head = VariationalHead(8, 2, parametrization="log_sigma")
    >>> head
    VariationalHead(
      parametrization='log_sigma'
      (mean): Linear(in_features=8, out_features=2, bias=True)
      (scale): Linear(in_features=8, out_features=2, bias=True)
    )
    >>> head(torch.zeros(3, 8)).shape
    torch.Size([3, 4])
    """

    PARAMETRIZATIONS = ("log_var", "log_sigma", "variance")

    def __init__(self, n_in, n_components, parametrization="log_var"):
        super().__init__()
        if parametrization not in self.PARAMETRIZATIONS:
            raise ValueError(
                f"parametrization must be one of {self.PARAMETRIZATIONS}; "
                f"got {parametrization!r}."
            )
        self.parametrization = parametrization
        self.mean = nn.Linear(n_in, n_components)
        self.scale = nn.Linear(n_in, n_components)

    def forward(self, h):
        mean, raw = self.mean(h), self.scale(h)
        if self.parametrization == "log_sigma":
            log_var = 2.0 * raw
        elif self.parametrization == "variance":
            log_var = torch.logaddexp(raw, torch.full_like(raw, math.log(MIN_VARIANCE)))
        else:
            log_var = raw
        return torch.cat([mean, log_var], dim=-1)

    def extra_repr(self):
        return f"parametrization={self.parametrization!r}"


class _OneValueSafe:
    """Batch norm that survives a training batch with one value per channel.

    Torch's batch norm raises on such a batch (a final minibatch of one
    sample); this one normalises it with the running statistics instead,
    without updating them.
    """

    def forward(self, x):
        if self.training and x.numel() <= x.shape[1]:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias,
                False, 0.0, self.eps,
            )
        return super().forward(x)


class BatchNorm1d(_OneValueSafe, nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` that accepts a training batch of one sample.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.conv import BatchNorm1d
    >>> BatchNorm1d(3).train()(torch.ones(1, 3)).shape
    torch.Size([1, 3])
    """


class BatchNorm2d(_OneValueSafe, nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` that accepts a training batch of one 1x1 image.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.conv import BatchNorm2d
    >>> BatchNorm2d(3).train()(torch.ones(1, 3, 1, 1)).shape
    torch.Size([1, 3, 1, 1])
    """


class ToImage(nn.Module):
    """Reshape rows ``(batch, C*H*W)`` to images ``(batch, C, H, W)``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width, channels)``.
    channels_last : bool
        Whether rows are flattened ``(H, W, C)`` rather than ``(C, H, W)``.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.conv import ToImage
    >>> x = torch.arange(12.0).view(1, 12)  # one 2x3 image, 2 channels, (H, W, C)
    >>> ToImage((2, 3, 2), channels_last=True)(x)[0, 1]  # channel 1
    tensor([[ 1.,  3.,  5.],
            [ 7.,  9., 11.]])
    """

    def __init__(self, image_shape, channels_last):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.channels_last = channels_last

    def forward(self, x):
        height, width, channels = self.image_shape
        if self.channels_last:
            return x.reshape(-1, height, width, channels).permute(0, 3, 1, 2)
        return x.reshape(-1, channels, height, width)

    def extra_repr(self):
        return f"image_shape={self.image_shape}, channels_last={self.channels_last}"


class FromImage(nn.Module):
    """Flatten decoder images ``(batch, P*C, H, W)`` to rows in X's order.

    The ``P`` likelihood parameters per feature come out as ``P`` consecutive
    blocks of ``n_features`` values, each block flattened like a row of X (so
    ``params.chunk(P, -1)`` gives one image-shaped row per parameter).

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width, channels)``.
    channels_last : bool
        Whether rows are flattened ``(H, W, C)`` rather than ``(C, H, W)``.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.conv import FromImage, ToImage
    >>> x = torch.randn(4, 12)
    >>> to, back = ToImage((2, 3, 2), True), FromImage((2, 3, 2), True)
    >>> bool(torch.equal(back(to(x)), x))
    True
    """

    def __init__(self, image_shape, channels_last):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.channels_last = channels_last

    def forward(self, images):
        height, width, channels = self.image_shape
        batch = images.shape[0]
        if self.channels_last:
            images = images.reshape(batch, -1, channels, height, width).permute(0, 1, 3, 4, 2)
        return images.reshape(batch, -1)

    def extra_repr(self):
        return f"image_shape={self.image_shape}, channels_last={self.channels_last}"


# ----------------------------------------------------------------- validation
def _positive_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


def _int_tuple(value, param, allow_empty=False, owner="Conv"):
    if _positive_int(value):
        value = (value,)
    try:
        value = tuple(value)
    except TypeError:
        value = None
    if (
        value is None
        or (not value and not allow_empty)
        or not all(_positive_int(v) for v in value)
    ):
        raise ValueError(
            f"{owner} {param} must be a positive integer or a tuple of positive "
            f"integers such as (32, 64); got {value!r}."
        )
    return tuple(int(v) for v in value)


def _per_layer(value, n_layers, param, owner):
    values = _int_tuple(value, param, owner=owner)
    if len(values) == 1:
        return values * n_layers
    if len(values) != n_layers:
        raise ValueError(
            f"{owner} {param} must be one integer or one per layer of filters "
            f"({n_layers}); got {value!r}."
        )
    return values


def resolve_image_shape(image_shape, n_features, owner="Conv"):
    """Return ``(height, width, channels)`` checked against ``n_features``.

    ``None`` means a square single-channel image of ``n_features`` pixels.

    Examples
    --------
    >>> from skvae_plugins.conv import resolve_image_shape
    >>> resolve_image_shape(None, 784)
    (28, 28, 1)
    >>> resolve_image_shape((32, 32, 3), 3072)
    (32, 32, 3)
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"{owner} got {n_features} features, which is not a square "
                "single-channel image; set image_shape=(height, width, channels) "
                "so that height * width * channels == n_features."
            )
        return (side, side, 1)
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or not all(_positive_int(v) for v in shape):
        raise ValueError(
            f"{owner} image_shape must be None or a tuple of three positive "
            f"integers (height, width, channels); got {image_shape!r}."
        )
    shape = tuple(int(v) for v in shape)
    if math.prod(shape) != n_features:
        raise ValueError(
            f"{owner} image_shape={shape} has {math.prod(shape)} values per image "
            f"but X has {n_features} features; set image_shape=(height, width, "
            "channels) so that height * width * channels == n_features."
        )
    return shape


def _conv_out(size, kernel, stride):
    """Output size of a conv with padding (kernel - 1) // 2, or None if too small."""
    span = size + 2 * ((kernel - 1) // 2) - kernel
    return None if span < 0 else span // stride + 1


def conv_shapes(height, width, kernels, strides):
    """Return the spatial sizes ``[(H, W), ...]`` through the conv stack.

    Each convolution pads ``(kernel - 1) // 2`` on every side, so a stride-2
    layer with an odd kernel gives ``ceil(size / 2)`` (Keras ``"same"``):
    28 -> 14 -> 7 -> 4. None means the image is too small.

    Examples
    --------
    >>> from skvae_plugins.conv import conv_shapes
    >>> conv_shapes(28, 28, (5, 5, 5, 5), (2, 2, 2, 2))
    [(28, 28), (14, 14), (7, 7), (4, 4), (2, 2)]
    """
    sizes = [(height, width)]
    for kernel, stride in zip(kernels, strides):
        h, w = sizes[-1]
        h, w = _conv_out(h, kernel, stride), _conv_out(w, kernel, stride)
        if h is None or w is None:
            return None
        sizes.append((h, w))
    return sizes


def _output_padding(size_in, size_out, kernel, stride):
    """Output padding of the transposed conv mapping ``size_out`` back to ``size_in``."""
    return size_in + 2 * ((kernel - 1) // 2) - kernel - (size_out - 1) * stride


def build_conv_network(
    n_features,
    n_components,
    n_outputs,
    *,
    image_shape,
    channels_last,
    filters,
    kernel_size,
    strides,
    batch_norm,
    dense_units,
    activation,
    output_kernel_size,
    owner="Conv",
):
    """Validate the settings and build the conv encoder/decoder.

    See :class:`Conv` for the parameters; ``owner`` names the plugin in error
    messages.

    Returns
    -------
    net : skvae.base.EncoderDecoder

    Examples
    --------
    >>> from skvae_plugins.conv import build_conv_network
    >>> net = build_conv_network(
    ...     64, 2, 64, image_shape=(8, 8, 1), channels_last=False, filters=(4,),
    ...     kernel_size=3, strides=2, batch_norm=False, dense_units=None,
    ...     activation="relu", output_kernel_size=3)
    >>> net.decoder[-2]
    ConvTranspose2d(4, 1, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    """
    image_shape = resolve_image_shape(image_shape, n_features, owner)
    height, width, channels = image_shape
    if not isinstance(channels_last, bool):
        raise ValueError(f"{owner} channels_last must be True or False; got {channels_last!r}.")
    filters = _int_tuple(filters, "filters", owner=owner)
    kernels = _per_layer(kernel_size, len(filters), "kernel_size", owner)
    strides = _per_layer(strides, len(filters), "strides", owner)
    if not isinstance(batch_norm, bool):
        raise ValueError(f"{owner} batch_norm must be True or False; got {batch_norm!r}.")
    dense = () if dense_units is None else _int_tuple(dense_units, "dense_units", True, owner)
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{owner} activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}."
        )
    if not (_positive_int(output_kernel_size) and output_kernel_size % 2 == 1):
        raise ValueError(
            f"{owner} output_kernel_size must be a positive odd integer (the output "
            f"layer keeps the image size); got {output_kernel_size!r}."
        )
    if n_outputs % n_features:
        raise ValueError(
            f"{owner} needs a whole number of likelihood parameters per pixel; "
            f"got n_outputs={n_outputs} for n_features={n_features}."
        )
    n_params = n_outputs // n_features
    sizes = conv_shapes(height, width, kernels, strides)
    if sizes is None:
        raise ValueError(
            f"{owner}: image_shape={image_shape} is too small for filters={filters}, "
            f"kernel_size={kernels} and strides={strides}; use fewer layers, "
            "smaller kernels or strides of 1."
        )
    act = ACTIVATIONS[activation]

    # Encoder: conv, activation, [batch norm] per layer; flatten; dense layers.
    encoder = [ToImage(image_shape, channels_last)]
    c_in = channels
    for c_out, kernel, stride in zip(filters, kernels, strides):
        encoder += [nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2), act()]
        if batch_norm:
            encoder.append(BatchNorm2d(c_out))
        c_in = c_out
    encoder.append(nn.Flatten())
    last_h, last_w = sizes[-1]
    n_flat = n_in = filters[-1] * last_h * last_w
    for units in dense:
        encoder += [nn.Linear(n_in, units), act()]
        if batch_norm:
            encoder.append(BatchNorm1d(units))
        n_in = units
    encoder.append(VariationalHead(n_in, n_components, "log_var"))

    # Decoder: dense to the last conv shape, then transposed convs back up,
    # each with the output padding that restores the encoder's size exactly.
    decoder = [nn.Linear(n_components, n_flat), act()]
    if batch_norm:
        decoder.append(BatchNorm1d(n_flat))
    decoder.append(nn.Unflatten(1, (filters[-1], last_h, last_w)))
    c_in = filters[-1]
    for i in reversed(range(len(filters))):
        kernel, stride = kernels[i], strides[i]
        (h_in, w_in), (h_out, w_out) = sizes[i], sizes[i + 1]
        padding = (_output_padding(h_in, h_out, kernel, stride),
                   _output_padding(w_in, w_out, kernel, stride))
        decoder += [
            nn.ConvTranspose2d(
                c_in, filters[i], kernel, stride, padding=(kernel - 1) // 2,
                output_padding=padding if any(padding) else 0,
            ),
            act(),
        ]
        if batch_norm:
            decoder.append(BatchNorm2d(filters[i]))
        c_in = filters[i]
    decoder += [
        nn.ConvTranspose2d(
            c_in, channels * n_params, output_kernel_size, 1,
            padding=(output_kernel_size - 1) // 2,
        ),
        FromImage(image_shape, channels_last),
    ]
    return EncoderDecoder(nn.Sequential(*encoder), nn.Sequential(*decoder))


# --------------------------------------------------------------------- plugin
class Conv(Architecture):
    """Convolutional encoder and mirrored transposed-convolution decoder.

    Encoder: per entry of ``filters``, ``Conv2d(kernel_size, stride)`` ->
    activation [-> batch norm]; flatten; optional dense layers
    (``dense_units``) -> activation [-> batch norm]; then two dense heads, the
    posterior mean and log-variance. Decoder: dense from the latent code to
    the last convolution's shape -> activation [-> batch norm]; per layer in
    reverse, ``ConvTranspose2d`` -> activation [-> batch norm]; then a
    stride-1 ``ConvTranspose2d`` to ``channels`` times the likelihood's
    parameters per pixel, with a linear output (logits for Bernoulli).

    Convolutions pad ``(kernel_size - 1) // 2``, so a stride-2 layer with an
    odd kernel halves the size rounding up (Keras ``"same"``:
    28 -> 14 -> 7 -> 4). Every shape is computed from ``image_shape``: each
    transposed convolution gets the output padding that restores the size
    the encoder saw, so the output is exactly ``height x width`` for any
    size, odd ones included.

    Parameters
    ----------
    image_shape : tuple of int (height, width, channels) or None, default=None
        Shape of one image; ``height * width * channels`` must equal the
        number of features. None means a square single-channel image.
    channels_last : bool, default=False
        Order in which each row of X flattens its image: False for
        ``(channels, height, width)`` (torch's layout, and CIFAR-10's
        python files), True for ``(height, width, channels)`` (Keras and
        numpy image arrays ``(n, H, W, C)``). The decoder's outputs follow the
        same order.
    filters : tuple of int, default=(32, 64)
        Output channels of the encoder's convolutions; the decoder mirrors them.
    kernel_size : int or tuple of int, default=3
        Kernel size, one for all layers or one per layer.
    strides : int or tuple of int, default=2
        Strides, one for all layers or one per layer.
    batch_norm : bool, default=False
        Batch normalisation after each hidden activation.
    dense_units : int, tuple of int or None, default=None
        Dense layers of the encoder between the flattened convolutions and
        the heads (the decoder goes from the latent code straight to the
        convolutions' shape).
    activation : {"relu", "leaky_relu", "elu", "gelu", "silu", "tanh", \
"sigmoid"}, default="relu"
        Activation after each hidden layer.
    output_kernel_size : int, default=3
        Odd kernel size of the decoder's stride-1 output layer.

    See Also
    --------
    skvae_plugins.presets.KerasConv : A small Keras-style conv VAE, layer for layer.
    skvae_plugins.presets.KerasDCGANConv : Its DCGAN-like variant.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.conv import Conv
    >>> net = Conv(image_shape=(15, 13, 2), filters=(4, 8)).build(
    ...     n_features=15 * 13 * 2, n_components=3, n_outputs=15 * 13 * 2)
    >>> mean, log_var = net.encode(torch.zeros(5, 390))
    >>> mean.shape, net.decode(mean).shape
    (torch.Size([5, 3]), torch.Size([5, 390]))

    On 8x8 digits:

    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> X = load_digits().data[:100] / 16
    >>> vae = VAETransformer(architecture=Conv(image_shape=(8, 8, 1), filters=(8,)),
    ...                      max_iter=2, random_state=0).fit(X)
    >>> vae.transform(X[:2]).shape
    (2, 2)
    """

    name = "conv"

    def __init__(
        self,
        image_shape=None,
        channels_last=False,
        filters=(32, 64),
        kernel_size=3,
        strides=2,
        batch_norm=False,
        dense_units=None,
        activation="relu",
        output_kernel_size=3,
    ):
        self.image_shape = image_shape
        self.channels_last = channels_last
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.batch_norm = batch_norm
        self.dense_units = dense_units
        self.activation = activation
        self.output_kernel_size = output_kernel_size

    def build(self, n_features, n_components, n_outputs):
        return build_conv_network(
            n_features,
            n_components,
            n_outputs,
            image_shape=self.image_shape,
            channels_last=self.channels_last,
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            batch_norm=self.batch_norm,
            dense_units=self.dense_units,
            activation=self.activation,
            output_kernel_size=self.output_kernel_size,
        )


@hookimpl
def skvae_register_architectures():
    return [Conv]
