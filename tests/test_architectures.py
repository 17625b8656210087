"""Architectures: the conv plugin and the presets that rebuild published models (issue 3).

Each preset is compared layer for layer with the model it rebuilds (types and
sizes in order) and by parameter count; the conv plugin is checked on several image
shapes, both flattening orders and bad shapes; every architecture fits briefly.
"""

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

import skvae
from skvae import VAETransformer
from skvae._registry import resolve_plugin
from skvae_plugins.conv import Conv, FromImage, ToImage, VariationalHead
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.presets import (
    CifarGrayMLP,
    CsnlDense,
    CsnlSmallDense,
    KerasConv,
    KerasDCGANConv,
    SigmoidMLP,
)

PRESETS = {
    "csnl_small_dense": CsnlSmallDense,
    "csnl_dense": CsnlDense,
    "keras_conv": KerasConv,
    "keras_dcgan_conv": KerasDCGANConv,
    "cifar_gray_mlp": CifarGrayMLP,
    "sigmoid_mlp": SigmoidMLP,
}


# ------------------------------------------------------------------- helpers
def layers(module):
    """Layer list of a module: (type, sizes...) for each layer, in order."""
    out = []
    for m in module.modules():
        if isinstance(m, nn.Linear):
            out.append(("Dense", m.in_features, m.out_features))
        elif isinstance(m, nn.Conv2d):
            out.append(("Conv", m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]))
        elif isinstance(m, nn.ConvTranspose2d):
            out.append(("ConvT", m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            out.append(("BN", m.num_features))
        elif isinstance(m, (nn.ReLU, nn.Sigmoid)):
            out.append((type(m).__name__,))
        elif isinstance(m, nn.Flatten):
            out.append(("Flatten",))
        elif isinstance(m, nn.Unflatten):
            out.append(("Reshape", *m.unflattened_size))
    return out


def keras_count(layer_list):
    """Parameter count of a layer list as Keras prints it (BN counts 4 per unit)."""
    total = 0
    for kind, *sizes in layer_list:
        if kind == "Dense":
            total += sizes[0] * sizes[1] + sizes[1]
        elif kind in ("Conv", "ConvT"):
            c_in, c_out, k, _ = sizes
            total += c_in * c_out * k * k + c_out
        elif kind == "BN":
            total += 4 * sizes[0]
    return total


def n_trainable(module):
    return sum(p.numel() for p in module.parameters())


def n_keras(module):
    """Trainable parameters plus batch-norm running statistics (Keras's count)."""
    running = sum(b.numel() for name, b in module.named_buffers() if "running" in name)
    return n_trainable(module) + running


def relu_dense(n_in, sizes):
    out = []
    for size in sizes:
        out += [("Dense", n_in, size), ("ReLU",)]
        n_in = size
    return out


def conv_block(c_in, c_out, k, kind="Conv"):
    return [(kind, c_in, c_out, k, 2), ("ReLU",), ("BN", c_out)]


def encode_decode(net, X):
    net.eval()
    with torch.no_grad():
        mean, log_var = net.encode(torch.as_tensor(X, dtype=torch.float32))
        return mean, log_var, net.decode(mean)


@pytest.fixture(scope="module")
def images28():
    """64 random 28x28 grey images in [0, 1], seeded."""
    return np.random.default_rng(0).random((64, 784), dtype=np.float32)


# ------------------------------------------- presets of published models
def test_small_dense_preset_matches_its_model():
    net = CsnlSmallDense().build(n_features=784, n_components=2, n_outputs=784)
    assert layers(net.encoder) == relu_dense(784, (420, 210, 105)) + [
        ("Dense", 105, 2),  # mean
        ("Dense", 105, 2),  # log-sigma
    ]
    assert layers(net.decoder) == relu_dense(2, (200, 400, 800)) + [("Dense", 800, 784)]
    assert n_trainable(net) == 1_470_473 == keras_count(layers(net))


def test_dense_preset_matches_its_model():
    net = CsnlDense().build(n_features=784, n_components=2, n_outputs=784)
    assert layers(net.encoder) == relu_dense(784, (1024, 512, 512, 256, 256)) + [
        ("Dense", 256, 2),
        ("Dense", 256, 2),
    ]
    assert layers(net.decoder) == relu_dense(2, (512, 512, 1024, 1024, 2048)) + [
        ("Dense", 2048, 784)
    ]
    # The original model's count, with the Bernoulli likelihood's 784 outputs.
    assert n_trainable(net) == 7_334_164


def test_log_sigma_head_doubles_into_log_variance():
    head = VariationalHead(3, 2, "log_sigma")
    h = torch.randn(4, 3)
    mean, log_var = head(h).chunk(2, dim=-1)
    torch.testing.assert_close(mean, head.mean(h))
    torch.testing.assert_close(log_var, 2 * head.scale(h))


def test_keras_conv_matches_its_model():
    net = KerasConv().build(n_features=784, n_components=2, n_outputs=784)
    assert layers(net.encoder) == (
        conv_block(1, 8, 3)
        + conv_block(8, 16, 3)
        + [("Flatten",), ("Dense", 7 * 7 * 16, 20), ("ReLU",), ("BN", 20)]
        + [("Dense", 20, 2), ("Dense", 20, 2)]  # latent_mu, latent_sigma
    )
    assert layers(net.decoder) == (
        [("Dense", 2, 7 * 7 * 16), ("ReLU",), ("BN", 7 * 7 * 16), ("Reshape", 16, 7, 7)]
        + conv_block(16, 16, 3, "ConvT")
        + conv_block(16, 8, 3, "ConvT")
        + [("ConvT", 8, 1, 3, 1)]
    )
    # Keras's summary: trainable parameters plus BN moving mean and variance.
    assert n_keras(net.encoder) == 17_208
    assert n_keras(net.decoder) == 9_137
    assert n_keras(net) == 26_345
    assert n_trainable(net) == 24_641


def test_keras_dcgan_conv_matches_its_model_with_computed_shapes():
    net = KerasDCGANConv().build(n_features=784, n_components=2, n_outputs=784)
    # 28 -> 14 -> 7 -> 4 -> 2, not the original's printed sizes.
    flat = 1024 * 2 * 2
    encoder = (
        conv_block(1, 128, 5) + conv_block(128, 256, 5)
        + conv_block(256, 512, 5) + conv_block(512, 1024, 5)
        + [("Flatten",), ("Dense", flat, 20), ("ReLU",), ("BN", 20)]
        + [("Dense", 20, 2), ("Dense", 20, 2)]
    )
    decoder = (
        [("Dense", 2, flat), ("ReLU",), ("BN", flat), ("Reshape", 1024, 2, 2)]
        + conv_block(1024, 1024, 5, "ConvT") + conv_block(1024, 512, 5, "ConvT")
        + conv_block(512, 256, 5, "ConvT") + conv_block(256, 128, 5, "ConvT")
        + [("ConvT", 128, 1, 3, 1)]
    )
    assert layers(net.encoder) == encoder
    assert layers(net.decoder) == decoder
    assert n_keras(net) == keras_count(encoder + decoder) == 60_755_129

    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[2:])))
             for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    X = np.random.default_rng(0).random((2, 784), dtype=np.float32)
    mean, _, out = encode_decode(net, X)
    for hook in hooks:
        hook.remove()
    assert sizes == [(14, 14), (7, 7), (4, 4), (2, 2), (4, 4), (7, 7), (14, 14), (28, 28),
                     (28, 28)]
    assert mean.shape == (2, 2) and out.shape == (2, 784)


@torch.no_grad()
def test_cifar_gray_mlp_matches_its_model():
    torch.manual_seed(0)
    net = CifarGrayMLP().build(n_features=1024, n_components=15, n_outputs=1024)
    sig = lambda n_in, n_out: [("Dense", n_in, n_out), ("Sigmoid",)]  # noqa: E731
    assert layers(net.encoder) == sig(1024, 1024) + sig(1024, 512) + [
        ("Dense", 512, 15),  # mean
        ("Dense", 512, 15),  # log-variance
    ]
    assert layers(net.decoder) == sig(15, 256) + sig(256, 512) + [("Dense", 512, 1024)]
    assert n_trainable(net) == 2_250_782 == keras_count(layers(net))
    assert net.encoder[-1].parametrization == "log_var"

    # Truncated-normal init: within two standard deviations, std ~ 0.88 sigma.
    trunc = 0.8796  # std of a standard normal truncated to [-2, 2]
    for part, std in ((net.encoder, 0.1), (net.decoder, 0.01)):
        for layer in part.modules():
            if isinstance(layer, nn.Linear):
                assert float(layer.weight.abs().max()) <= 2 * std
                assert float(layer.bias.abs().max()) <= 0.02
    assert float(net.encoder[0].weight.std()) == pytest.approx(0.1 * trunc, rel=0.02)
    assert float(net.decoder[4].weight.std()) == pytest.approx(0.01 * trunc, rel=0.02)
    assert float(net.decoder[4].bias.std()) == pytest.approx(0.01 * trunc, rel=0.1)


def test_sigmoid_mlp_matches_its_model():
    net = SigmoidMLP(output_activation="sigmoid").build(
        n_features=784, n_components=10, n_outputs=784
    )
    assert layers(net.encoder) == [("Dense", 784, 128), ("Sigmoid",), ("Dense", 128, 10),
                                   ("Dense", 128, 10)]
    assert layers(net.decoder) == [("Dense", 10, 128), ("Sigmoid",), ("Dense", 128, 784),
                                   ("Sigmoid",)]
    assert n_trainable(net) == 205_604 == keras_count(layers(net))
    # Default: linear output, the Bernoulli likelihood's logits.
    plain = SigmoidMLP().build(n_features=784, n_components=10, n_outputs=784)
    assert layers(plain.decoder)[-1] == ("Dense", 128, 784)


def test_sigmoid_mlp_variance_head_is_stable():
    head = VariationalHead(1, 1, "variance")
    with torch.no_grad():
        head.scale.weight.fill_(1.0)
        head.scale.bias.zero_()
    h = torch.tensor([[-1000.0], [0.0], [3.0], [1000.0]])
    _, log_var = head(h).chunk(2, dim=-1)
    expected = torch.log(1e-5 + torch.exp(h.double())).float()
    expected[-1] = 1000.0  # log(1e-5 + e^1000) = 1000 to float precision
    torch.testing.assert_close(log_var, expected)
    assert torch.isfinite(log_var).all()


def test_sigmoid_mlp_with_gaussian_half_scale_fits_in_unit_range(digits_small):
    X, _ = digits_small
    vae = VAETransformer(
        n_components=10, architecture="sigmoid_mlp", likelihood=Gaussian(scale=0.5),
        max_iter=2, batch_size=100, random_state=0,
    ).set_params(architecture__output_activation="sigmoid").fit(X)
    X_hat = vae.inverse_transform(vae.transform(X[:10]))
    assert X_hat.min() >= 0 and X_hat.max() <= 1
    assert np.isfinite(vae.score(X))


def test_sigmoid_mlp_output_activation_errors():
    with pytest.raises(ValueError, match="output_activation must be None or 'sigmoid'"):
        SigmoidMLP(output_activation="tanh").build(4, 2, 4)
    with pytest.raises(ValueError, match="one parameter per feature"):
        SigmoidMLP(output_activation="sigmoid").build(4, 2, 8)


def test_cifar_gray_mlp_rejects_bad_std():
    with pytest.raises(ValueError, match="encoder_init_std must be a positive number"):
        CifarGrayMLP(encoder_init_std=0).build(4, 2, 4)


# ----------------------------------------------------------------- conv plugin
@pytest.mark.parametrize(
    "image_shape, channels_last",
    [((28, 28, 1), False), ((32, 32, 3), False), ((32, 32, 3), True), ((15, 13, 2), False),
     ((15, 13, 2), True)],
)
@pytest.mark.parametrize("n_params", [1, 2])
def test_conv_output_shapes(image_shape, channels_last, n_params):
    n = math.prod(image_shape)
    net = Conv(image_shape=image_shape, channels_last=channels_last, filters=(4, 8, 8),
               batch_norm=True, dense_units=16).build(n, 3, n_params * n)
    X = np.random.default_rng(0).random((5, n), dtype=np.float32)
    mean, log_var, out = encode_decode(net, X)
    assert mean.shape == log_var.shape == (5, 3)
    assert out.shape == (5, n_params * n)
    assert torch.isfinite(out).all()


def test_conv_odd_sizes_round_trip_exactly():
    # 15 -> 8 -> 4 -> 2 and 13 -> 7 -> 4 -> 2, then back to 15 x 13 exactly.
    net = Conv(image_shape=(15, 13, 2), filters=(4, 8, 8)).build(390, 2, 390)
    sizes = []
    for m in net.decoder:
        if isinstance(m, nn.ConvTranspose2d):
            m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    encode_decode(net, np.zeros((1, 390), np.float32))
    assert sizes == [(8, 4, 4), (8, 8, 7), (4, 15, 13), (2, 15, 13)]


def test_conv_channels_last_is_the_same_network_on_transposed_rows():
    """The same images in the two flattening orders give the same results."""
    rng = np.random.default_rng(0)
    images = rng.random((4, 5, 6, 3), dtype=np.float32)  # (n, H, W, C)
    X_last = images.reshape(4, -1)
    X_first = images.transpose(0, 3, 1, 2).reshape(4, -1)
    nets = {}
    for channels_last in (False, True):
        torch.manual_seed(0)  # same weights: the layers do not depend on the order
        nets[channels_last] = Conv(image_shape=(5, 6, 3), channels_last=channels_last,
                                   filters=(4,)).build(90, 2, 2 * 90)
    mean_f, _, out_f = encode_decode(nets[False], X_first)
    mean_l, _, out_l = encode_decode(nets[True], X_last)
    torch.testing.assert_close(mean_f, mean_l)
    # Each of the two parameter blocks is an image in its row order.
    out_f = out_f.view(4, 2, 3, 5, 6)
    out_l = out_l.view(4, 2, 5, 6, 3).permute(0, 1, 4, 2, 3)
    torch.testing.assert_close(out_f, out_l)


def test_to_image_and_from_image_follow_numpy_layouts():
    images = np.arange(2 * 4 * 3 * 2, dtype=np.float32).reshape(2, 4, 3, 2)  # (n, H, W, C)
    x = torch.from_numpy(images.reshape(2, -1))
    t = ToImage((4, 3, 2), channels_last=True)(x)
    np.testing.assert_array_equal(t.numpy(), images.transpose(0, 3, 1, 2))
    x_first = torch.from_numpy(images.transpose(0, 3, 1, 2).reshape(2, -1))
    torch.testing.assert_close(ToImage((4, 3, 2), channels_last=False)(x_first), t)
    torch.testing.assert_close(FromImage((4, 3, 2), channels_last=True)(t), x)
    torch.testing.assert_close(FromImage((4, 3, 2), channels_last=False)(t), x_first)


def test_conv_on_digits_fits_and_scores(digits_small):
    X, _ = digits_small
    vae = VAETransformer(architecture=Conv(image_shape=(8, 8, 1)), max_iter=2, random_state=0)
    vae.fit(X)
    assert vae.n_iter_ == 2
    assert np.isfinite(vae.score(X))
    assert vae.transform(X[:3]).shape == (3, 2)
    assert vae.sample(2, random_state=0).shape == (2, 64)


def test_conv_infers_square_single_channel_image():
    net = Conv(filters=(4,)).build(64, 2, 64)
    assert net.encoder[0].image_shape == (8, 8, 1)


@pytest.mark.parametrize(
    "params, n_features, match",
    [
        ({}, 60, r"60 features, which is not a square.*set image_shape"),
        ({"image_shape": (8, 8, 3)}, 64, r"image_shape=\(8, 8, 3\) has 192 values.*64 features"),
        ({"image_shape": (8, 8)}, 64, "image_shape must be None or a tuple of three positive"),
        ({"image_shape": (8, -8, 1)}, 64, "image_shape must be None or a tuple of three"),
        ({"image_shape": "8x8"}, 64, "image_shape must be None or a tuple of three"),
        ({"image_shape": (2, 2, 1), "filters": (4, 4), "kernel_size": 4}, 4, "too small"),
        ({"filters": ()}, 64, "filters must be a positive integer or a tuple"),
        ({"kernel_size": (3, 3, 3)}, 64, r"kernel_size must be one integer or one per layer"),
        ({"strides": 0}, 64, "strides must be a positive integer"),
        ({"activation": "swish"}, 64, "activation must be one of"),
        ({"batch_norm": "yes"}, 64, "batch_norm must be True or False"),
        ({"channels_last": 1}, 64, "channels_last must be True or False"),
        ({"dense_units": (0,)}, 64, "dense_units must be"),
        ({"output_kernel_size": 2}, 64, "output_kernel_size must be a positive odd"),
    ],
)
def test_conv_bad_parameters_raise(params, n_features, match):
    with pytest.raises(ValueError, match=match):
        Conv(**params).build(n_features, 2, n_features)


def test_conv_bad_image_shape_raises_at_fit(digits_small):
    X, _ = digits_small
    vae = VAETransformer(architecture=Conv(image_shape=(28, 28, 1)), max_iter=1)
    with pytest.raises(ValueError, match=r"image_shape=\(28, 28, 1\) has 784 values"):
        vae.fit(X)
    with pytest.raises(ValueError, match="KerasConv got 60 features.*set image_shape"):
        VAETransformer(architecture="keras_conv", max_iter=1).fit(X[:, :60])
    with pytest.raises(ValueError, match="whole number of likelihood parameters"):
        Conv().build(64, 2, 100)


def test_batch_norm_survives_a_last_batch_of_one(digits_small):
    X, _ = digits_small
    vae = VAETransformer(architecture=Conv(filters=(4,), batch_norm=True, dense_units=8),
                         max_iter=1, batch_size=32, random_state=0)
    vae.fit(X[:33])  # batches of 32 and 1
    assert np.isfinite(vae.score(X[:33]))


# ----------------------------------------------------------- every preset fits
def test_presets_are_registered():
    names = {p["name"]: p["class"] for p in skvae.list_plugins("architecture")}
    assert names["conv"] is Conv
    for name, cls in PRESETS.items():
        assert names[name] is cls
        assert isinstance(resolve_plugin("architecture", name), cls)


@pytest.mark.parametrize("cls", [Conv, *PRESETS.values()])
def test_plugins_follow_the_init_rule(cls):
    plugin = cls()
    params = plugin.get_params()
    assert clone(plugin).get_params() == params
    assert plugin.set_params(**params) is plugin


# keras_dcgan_conv (61M parameters) fits in test_dcgan_fits_28x28_briefly.
@pytest.mark.parametrize("name", ["conv", *sorted(set(PRESETS) - {"keras_dcgan_conv"})])
def test_every_architecture_fits_briefly_on_digits(name, digits_small):
    X = digits_small[0][:64]
    vae = VAETransformer(architecture=name, max_iter=1, batch_size=32, random_state=0).fit(X)
    Z = vae.transform(X)
    assert Z.shape == (64, 2) and np.isfinite(Z).all()
    assert np.isfinite(vae.score(X))


def test_keras_conv_fits_28x28(images28):
    vae = VAETransformer(architecture=KerasConv(), max_iter=2, batch_size=32, random_state=0)
    vae.fit(images28)
    assert vae.n_iter_ == 2
    assert np.isfinite(vae.score(images28))
    assert vae.inverse_transform(vae.transform(images28[:2])).shape == (2, 784)


def test_keras_conv_fits_channels_last_colour_images():
    X = np.random.default_rng(0).random((32, 12 * 10 * 3), dtype=np.float32)
    arch = KerasConv(image_shape=(12, 10, 3), channels_last=True)
    vae = VAETransformer(architecture=arch, max_iter=1, batch_size=16, random_state=0).fit(X)
    assert vae.sample(3, random_state=0).shape == (3, 360)


def test_dcgan_fits_28x28_briefly(images28):
    X = images28[:4]
    vae = VAETransformer(architecture="keras_dcgan_conv", max_iter=1, batch_size=4,
                         random_state=0).fit(X)
    assert np.isfinite(vae.history_[0]["loss"])
