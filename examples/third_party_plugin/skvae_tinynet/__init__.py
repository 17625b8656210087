"""A complete third-party skvae plugin: the ``tinynet`` architecture.

Install with ``pip install ./examples/third_party_plugin``; then
``VAETransformer(architecture="tinynet")`` finds it by name.
"""

from torch import nn

from skvae import hookimpl
from skvae.base import Architecture, EncoderDecoder


class TinyNet(Architecture):
    """One hidden layer of ``width`` units with tanh, in encoder and decoder.

    Parameters
    ----------
    width : int, default=32
        Width of the hidden layer.
    """

    name = "tinynet"

    def __init__(self, width=32):
        self.width = width

    def build(self, n_features, n_components, n_outputs):
        encoder = nn.Sequential(
            nn.Linear(n_features, self.width), nn.Tanh(), nn.Linear(self.width, 2 * n_components)
        )
        decoder = nn.Sequential(
            nn.Linear(n_components, self.width), nn.Tanh(), nn.Linear(self.width, n_outputs)
        )
        return EncoderDecoder(encoder, decoder)


@hookimpl
def skvae_register_architectures():
    return [TinyNet]
