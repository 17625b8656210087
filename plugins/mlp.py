"""Architecture ``mlp``: fully connected encoder and decoder."""


from skvae.base import (
    Architecture,
    EncoderDecoder,
    check_activation,
    check_layer_sizes,
    dense_stack,
)
from skvae.hookspecs import hookimpl

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
        hidden = check_layer_sizes(self.hidden_sizes, "MLP hidden_sizes")
        if self.decoder_hidden_sizes is None:
            decoder_hidden = hidden[::-1]
        else:
            decoder_hidden = check_layer_sizes(self.decoder_hidden_sizes, "MLP decoder_hidden_sizes")
        check_activation(self.activation, "MLP activation")
        return EncoderDecoder(
            dense_stack(n_features + encoder_conditions, hidden, 2 * n_components, self.activation),
            dense_stack(n_components + decoder_conditions, decoder_hidden, n_outputs, self.activation),
        )


@hookimpl
def skvae_register_architectures():
    return [MLP]
