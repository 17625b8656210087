"""Architecture ``mlp``: fully connected encoder and decoder."""

from numbers import Integral

from torch import nn

from skvae.base import Architecture, EncoderDecoder
from skvae.hookspecs import hookimpl

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def _check_sizes(sizes, param):
    if isinstance(sizes, Integral):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(isinstance(s, Integral) and s >= 1 for s in sizes):
        raise ValueError(
            f"MLP {param} must be a tuple of positive integers such as (256, 128); "
            f"got {sizes!r}."
        )
    return tuple(int(s) for s in sizes)


def _stack(n_in, sizes, n_out, activation):
    layers = []
    for size in sizes:
        layers += [nn.Linear(n_in, size), _ACTIVATIONS[activation]()]
        n_in = size
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class MLP(Architecture):
    """Multi-layer perceptron encoder and decoder.

    The encoder is ``n_features -> hidden_sizes -> 2 * n_components`` (posterior
    mean and log-variance); the decoder is ``n_components ->
    decoder_hidden_sizes -> likelihood parameters``, with a linear output layer.
    It can condition on a label: ``build(..., encoder_conditions=k,
    decoder_conditions=k)`` widens the first layer of the encoder (decoder) by
    ``k`` inputs, for a condition concatenated to x (to z).

    Parameters
    ----------
    hidden_sizes : tuple of int, default=(256, 128)
        Widths of the encoder's hidden layers.
    decoder_hidden_sizes : tuple of int or None, default=None
        Widths of the decoder's hidden layers; None mirrors ``hidden_sizes``.
    activation : {"relu", "leaky_relu", "elu", "gelu", "silu", "tanh", \
"sigmoid"}, default="relu"
        Activation after each hidden layer.

    Examples
    --------
    >>> from skvae_plugins.mlp import MLP
    >>> net = MLP(hidden_sizes=(32,)).build(n_features=64, n_components=2, n_outputs=64)
    >>> net.encoder
    Sequential(
      (0): Linear(in_features=64, out_features=32, bias=True)
      (1): ReLU()
      (2): Linear(in_features=32, out_features=4, bias=True)
    )

    Conditioned on a one-hot label of 10 classes in encoder and decoder:

    >>> net = MLP(hidden_sizes=(32,)).build(
    ...     n_features=64, n_components=2, n_outputs=64,
    ...     encoder_conditions=10, decoder_conditions=10)
    >>> net.encoder[0]
    Linear(in_features=74, out_features=32, bias=True)
    >>> net.decoder[0]
    Linear(in_features=12, out_features=32, bias=True)
    """

    name = "mlp"

    def __init__(self, hidden_sizes=(256, 128), decoder_hidden_sizes=None, activation="relu"):
        self.hidden_sizes = hidden_sizes
        self.decoder_hidden_sizes = decoder_hidden_sizes
        self.activation = activation

    def build(
        self, n_features, n_components, n_outputs, *, encoder_conditions=0, decoder_conditions=0
    ):
        hidden = _check_sizes(self.hidden_sizes, "hidden_sizes")
        if self.decoder_hidden_sizes is None:
            decoder_hidden = hidden[::-1]
        else:
            decoder_hidden = _check_sizes(self.decoder_hidden_sizes, "decoder_hidden_sizes")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"MLP activation must be one of {sorted(_ACTIVATIONS)}; "
                f"got {self.activation!r}."
            )
        return EncoderDecoder(
            _stack(n_features + encoder_conditions, hidden, 2 * n_components, self.activation),
            _stack(n_components + decoder_conditions, decoder_hidden, n_outputs, self.activation),
        )


@hookimpl
def skvae_register_architectures():
    return [MLP]
