"""The training step does what a lean hand-written step does, and no more (issue 12).

The operators a step dispatches (forward, backward and the epoch's loss
record) are counted with a :class:`TorchDispatchMode` and compared with a
hand-written step on the same network: the counts are the same on every CPU,
so the test is exact where timings are not. The one kernel pair skvae adds is
the log-variance clamp (``hardtanh`` and its backward, which keep
``exp(log_var)`` finite); the epoch's record of the per-sample terms takes no
kernel (two detached views, where the lean loop multiplies and adds).
"""

from collections import Counter

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from skvae import VAETransformer
from skvae._model import RandomNoise
from skvae._step import EpochSums, StepForward
from skvae_plugins.mlp import MLP

#: Operators that only make a new view or alias of a tensor (no kernel).
VIEWS = {"detach", "view", "t", "unsqueeze", "expand", "split", "slice", "alias"}


class CountOps(TorchDispatchMode):
    """Count the aten operators dispatched inside the ``with`` block, by name."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="module")
def fitted():
    X = (np.random.RandomState(0).rand(64, 16) > 0.5).astype(np.float32)
    vae = VAETransformer(
        n_components=4, architecture=MLP(hidden_sizes=(8,)), likelihood="bernoulli",
        max_iter=1, random_state=0,
    ).fit(X)
    return vae, torch.from_numpy(X[:32])


def _skvae_step(module, generator):
    """One training step as the engine runs it: the step's forward, backward, record."""

    def loss(x, noise, beta, c):
        return module.loss(x, noise, beta=beta, free_bits=0.0, n_importance=1)

    forward = StepForward(loss, generator, torch.device("cpu"))

    def step(xb, sums):
        out = forward(xb, 1.0)
        out[0].backward()
        sums.add(out, xb.shape[0])
        return out

    return step


def _lean_step(net, generator):
    """The hand-written step of benchmarks/bench_fit.py's lean loop."""

    def step(xb, total):
        mean, log_var = net.encoder(xb).chunk(2, dim=-1)
        eps = torch.randn(mean.shape, generator=generator)
        z = mean + torch.exp(0.5 * log_var) * eps
        rec = F.binary_cross_entropy_with_logits(net.decoder(z), xb, reduction="none").sum(-1)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
        loss = (rec + kl).mean()
        loss.backward()
        total += loss.detach() * xb.shape[0]
        return loss

    return step


def _count(step, *args):
    step(*args)  # once outside: first-call set-up is not per-step work
    with CountOps() as counter:
        step(*args)
    return counter.ops


def test_step_dispatches_the_lean_steps_operators_plus_the_clamp(fitted):
    vae, xb = fitted
    module = vae.module_.train()
    skvae_ops = _count(_skvae_step(module, torch.Generator()), xb, EpochSums(1.0, True))
    lean_ops = _count(_lean_step(module.net, torch.Generator()), xb, torch.zeros(()))
    module.eval()
    extra = skvae_ops - lean_ops
    missing = lean_ops - skvae_ops
    # The clamp; mean * mean for mean.pow(2) (the same values: mul forward,
    # mul, mul, add backward, for pow forward, pow, mul, mul backward); the
    # record of nll and kl is two views where the lean loop multiplies and adds.
    assert extra == Counter({"hardtanh": 1, "hardtanh_backward": 1, "detach": 1, "add": 1})
    assert missing == Counter({"pow": 2, "add_": 1}), missing
    assert sum(skvae_ops.values()) <= sum(lean_ops.values()) + 2  # the clamp's two


def test_epoch_record_takes_no_kernel_per_step(fitted):
    vae, xb = fitted
    module = vae.module_.train()
    step = _skvae_step(module, torch.Generator())
    sums = EpochSums(0.5, elbo_form=True)
    outs = [step(xb, EpochSums(1.0, True)) for _ in range(3)]
    module.eval()
    with CountOps() as counter:
        for out in outs:
            sums.add(out, xb.shape[0])
    assert set(counter.ops) <= VIEWS, counter.ops
    # And the sums are those of the per-sample terms.
    nll = sum(out[1].detach().sum() for out in outs)
    kl = sum(out[2].detach().sum() for out in outs)
    torch.testing.assert_close(sums.totals(), torch.stack([nll, kl]), rtol=1e-5, atol=1e-5)
    loss, nll_mean, kl_mean, extras = sums.means((sums.totals() / 3).tolist())
    assert loss == pytest.approx(float(nll + 0.5 * kl) / 3, rel=1e-5) and extras == {}


def test_step_loss_is_the_lean_formula(fitted):
    """Same noise, same network: skvae's loss and gradients are the lean step's."""
    vae, xb = fitted
    module = vae.module_
    net = module.net
    noise = RandomNoise(torch.Generator().manual_seed(3), torch.device("cpu"))
    loss, nll, kl = module.loss(xb, noise)
    grads = torch.autograd.grad(loss, list(net.parameters()))

    generator = torch.Generator().manual_seed(3)
    mean, log_var = net.encoder(xb).chunk(2, dim=-1)
    z = mean + torch.exp(0.5 * log_var) * torch.randn(mean.shape, generator=generator)
    rec = F.binary_cross_entropy_with_logits(net.decoder(z), xb, reduction="none").sum(-1)
    kl_ref = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
    loss_ref = (rec + kl_ref).mean()
    grads_ref = torch.autograd.grad(loss_ref, list(net.parameters()))

    torch.testing.assert_close(loss, loss_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(nll, rec, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kl, kl_ref, rtol=1e-5, atol=1e-6)
    for got, expected in zip(grads, grads_ref):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_kept_terms_join_the_running_sums_when_an_extra_term_appears():
    """A step with extra terms after ELBO-form steps: nothing recorded is lost."""
    sums = EpochSums(2.0, elbo_form=True)
    nll, kl = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5])
    sums.add(((nll + 2.0 * kl).mean(), nll, kl), rows=2)
    extra = {"ce": torch.tensor([1.0, 3.0])}
    sums.add(((nll + 2.0 * kl).mean() + 1.0, nll, kl, extra), rows=2)
    assert sums.extra_names == ("ce",)
    # loss: (3 + 2 * 1) twice, plus 1 per row of the second step; then nll, kl, ce.
    torch.testing.assert_close(sums.totals(), torch.tensor([12.0, 6.0, 2.0, 4.0]))


def test_bfloat16_terms_are_summed_in_float32(monkeypatch):
    """Under bf16 autocast the per-sample KL is bfloat16; its epoch sum is not."""
    monkeypatch.setattr(EpochSums, "COLLAPSE", 7)  # collapsed sums join later steps too
    sums = EpochSums(1.0, elbo_form=True)
    kl = torch.full((32,), 1.0078125, dtype=torch.bfloat16)  # exact in bfloat16
    nll = torch.full((32,), 3.0)
    for _ in range(50):
        sums.add(((nll + kl).mean(), nll, kl), rows=32)
    totals = sums.totals()
    assert totals.dtype == torch.float32
    # 1600 * 1.0078125 = 1612.5, exact in float32; a bfloat16 sum would give 1608 or 1616.
    torch.testing.assert_close(totals, torch.tensor([4800.0, 1612.5]))
    assert sums.means(totals.tolist())[0] == 4800.0 + 1612.5


def test_terms_of_a_cuda_graph_replay_are_copied_out():
    """A CUDA-graph replay overwrites its outputs at the next replay: the kept
    per-sample terms must be copies (the step's loss is used before that)."""
    from skvae._step import _own_terms

    nll = torch.tensor([1.0, 2.0], requires_grad=True) * 1.0
    kl = torch.tensor([0.5, 0.25], requires_grad=True) * 1.0
    loss = (nll + kl).mean()
    extras = {"ce": torch.ones(2)}
    out = _own_terms((loss, nll, kl, extras))
    assert out[0] is loss and out[3] is extras
    for copy, original in ((out[1], nll), (out[2], kl)):
        torch.testing.assert_close(copy, original.detach())
        assert not copy.requires_grad
        assert copy.untyped_storage().data_ptr() != original.untyped_storage().data_ptr()
    iwae = (loss, None, None)
    assert _own_terms(iwae) is iwae
