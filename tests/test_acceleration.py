"""GPU-speed options of training: bf16 autocast, a compiled step, fused optimizers.

The compiled step is checked two ways: with ``torch.compile`` replaced by the
identity, the step that reads pre-drawn noise must give the eager model bit
for bit (any architecture, objective or condition); and one real compilation
on the CPU must capture the whole forward and backward without a graph break
and train to the same losses. GPU-only checks skip without CUDA.
"""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skvae import AuxiliaryClassifierVAE, ConditionalVAETransformer, VAETransformer
from skvae import _optimizers
from skvae._model import RandomNoise
from skvae._step import RecordingNoise, StepForward, compile_mode
from skvae_plugins.ladder import Ladder
from skvae_plugins.mlp import MLP

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

FIT = dict(max_iter=2, batch_size=64, n_iter_no_change=10, random_state=0)


def _same_state(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def identity_compile(monkeypatch):
    """Replace torch.compile by the identity; record what it was asked."""
    calls = []

    def fake_compile(fn, **kwargs):
        calls.append(kwargs)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    return calls


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: VAETransformer(**FIT), id="mlp"),
        pytest.param(lambda: VAETransformer(n_importance=3, **FIT), id="iwae"),
        pytest.param(lambda: VAETransformer(free_bits=0.1, **FIT), id="free_bits"),
        pytest.param(
            lambda: VAETransformer(architecture=Ladder(latent_sizes=(4, 2)), **FIT), id="ladder"
        ),
        pytest.param(
            lambda: VAETransformer(kl_warmup=0.5, precision="bf16-mixed", **FIT),
            id="warmup-bf16",
        ),
        pytest.param(lambda: ConditionalVAETransformer(**FIT), id="conditional"),
        pytest.param(lambda: AuxiliaryClassifierVAE(**FIT), id="aux-classifier"),
    ],
)
def test_compiled_step_replays_the_eager_random_stream(make, digits_small, identity_compile):
    X, y = digits_small
    labelled = isinstance(make(), (ConditionalVAETransformer, AuxiliaryClassifierVAE))
    args = (X[:200], y[:200]) if labelled else (X[:200],)
    eager = make().fit(*args)
    compiled = make().set_params(compile="reduce-overhead").fit(*args)
    # The step ran through "torch.compile", with static shapes and the mode asked.
    assert identity_compile == [{"mode": "reduce-overhead", "dynamic": False}]
    assert _same_state(eager, compiled)
    assert [h["loss"] for h in eager.history_] == [h["loss"] for h in compiled.history_]


def test_compiled_step_draws_noise_of_the_recorded_shapes(digits_small, identity_compile):
    """Each later step draws what the first (eager) step drew, per row."""
    X = torch.from_numpy(digits_small[0][:40])
    generator = torch.Generator().manual_seed(0)
    seen = []

    def loss(x, noise, beta, c):
        a, b = noise((3 * x.shape[0], 2)), noise((x.shape[0], 5))
        seen.append((tuple(a.shape), tuple(b.shape)))
        return (a.sum() + b.sum()) * beta, None, None

    forward = StepForward(loss, generator, torch.device("cpu"), compile=True)
    forward(X[:8], beta=1.0)
    forward(X[:8], beta=0.5)
    forward(X[8:12], beta=0.5)
    assert seen == [((24, 2), (8, 5)), ((24, 2), (8, 5)), ((12, 2), (4, 5))]
    # The same generator stream as drawing eagerly in the step.
    eager_gen = torch.Generator().manual_seed(0)
    eager = StepForward(loss, eager_gen, torch.device("cpu"))
    outs = [eager(X[:8], 1.0)[0], eager(X[:8], 0.5)[0], eager(X[8:12], 0.5)[0]]
    replay_gen = torch.Generator().manual_seed(0)
    replay = StepForward(loss, replay_gen, torch.device("cpu"), compile=True)
    again = [replay(X[:8], 1.0)[0], replay(X[:8], 0.5)[0], replay(X[8:12], 0.5)[0]]
    assert all(torch.equal(a, b) for a, b in zip(outs, again))
    # beta reaches the compiled function as a tensor, made once per value.
    assert replay._beta[0] == 0.5 and isinstance(replay._beta[1], torch.Tensor)


def test_recording_noise_refuses_draws_not_per_row():
    noise = RecordingNoise(RandomNoise(torch.Generator(), torch.device("cpu")), rows=4)
    with pytest.raises(ValueError, match="compile=False"):
        noise((6, 2))


@pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() == "DEFAULT",
    reason="torch 2.13's inductor emits vector code that does not build when ATen "
    "runs its DEFAULT (no-SIMD) kernels, e.g. ATEN_CPU_CAPABILITY=default",
)
@pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() == "AVX2",
    reason="torch 2.13's inductor AVX2 code gives NaN gradients in some steps of this "
    "model (seen under ATEN_CPU_CAPABILITY=avx2 on an AVX-512 Xeon; the fit then raises "
    "FloatingPointError, the divergence check); compile targets GPUs",
)
def test_compile_really_compiles_the_whole_step(digits_small):
    """A real torch.compile on the CPU: one graph per batch shape, no graph break."""
    import torch._dynamo

    X = digits_small[0][:200]
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = VAETransformer(**FIT).fit(X)
    compiled = VAETransformer(compile=True, **FIT).fit(X)
    counters = torch._dynamo.utils.counters
    assert not counters["graph_break"], dict(counters["graph_break"])
    # 200 rows in batches of 64: full batches and the last one of 8 rows.
    assert counters["stats"]["unique_graphs"] == 2
    np.testing.assert_allclose(
        [h["loss"] for h in compiled.history_], [h["loss"] for h in eager.history_], rtol=1e-4
    )
    np.testing.assert_allclose(compiled.transform(X), eager.transform(X), atol=1e-3)
    torch._dynamo.reset()


def test_bf16_mixed_runs_training_in_bfloat16_and_keeps_float32_state(digits_small):
    X = digits_small[0][:200]
    dtypes = {"train": set(), "eval": set()}

    vae = VAETransformer(architecture=MLP(hidden_sizes=(32,)), precision="bf16-mixed", **FIT)
    reference = VAETransformer(architecture=MLP(hidden_sizes=(32,)), **FIT).fit(X)

    def hook(module, inputs, output):
        dtypes["train" if module.training else "eval"].add(output.dtype)

    vae.fit(X[:100])  # to get a module to hook
    first_linear = next(m for m in vae.module_.modules() if isinstance(m, torch.nn.Linear))
    first_linear.register_forward_hook(hook)
    vae.set_params(warm_start=True, max_iter=1).fit(X[:100])
    assert dtypes["train"] == {torch.bfloat16}
    vae.transform(X)
    assert dtypes["eval"] == {torch.float32}  # inference stays float32
    assert all(p.dtype == torch.float32 for p in vae.module_.parameters())
    for state in vae.optimizer_.state.values():
        assert state["exp_avg"].dtype == torch.float32

    mixed = VAETransformer(architecture=MLP(hidden_sizes=(32,)), precision="bf16-mixed", **FIT)
    mixed.fit(X)
    losses = [h["loss"] for h in mixed.history_]
    ref = [h["loss"] for h in reference.history_]
    assert losses != ref  # bfloat16 rounding changes the numbers ...
    np.testing.assert_allclose(losses, ref, rtol=0.02)  # ... but not the training


@pytest.mark.parametrize(
    "param, value, match",
    [
        ("compile", "fast", "'compile' parameter"),
        ("compile", 1, "'compile' parameter"),
        ("precision", "float16", "'precision' parameter"),
    ],
)
def test_compile_and_precision_are_validated(param, value, match, digits_small):
    vae = VAETransformer(max_iter=1, **{param: value})
    with pytest.raises(InvalidParameterError, match=match):
        vae.fit(digits_small[0])
    assert not hasattr(vae, "module_")


def test_compile_mode_names():
    assert compile_mode(False) is None
    assert compile_mode(True) == "default"
    assert compile_mode("max-autotune") == "max-autotune"
    with pytest.raises(ValueError, match="compile must be"):
        compile_mode("fastest")


def test_optimizer_state_of_another_implementation_keeps_this_one():
    """A state saved fused (on CUDA) or not keeps the loading optimizer's own implementation."""
    params = [torch.nn.Parameter(torch.randn(3))]
    source = torch.optim.Adam(params, lr=0.1)
    params[0].grad = torch.ones(3)
    source.step()
    state = source.state_dict()
    target = _optimizers.make_optimizer("adam", params, 0.1)
    before = target.param_groups[0]["fused"]
    state["param_groups"][0]["fused"] = not before  # saved by the other implementation
    _optimizers.load_optimizer_state(target, state)
    assert target.param_groups[0]["fused"] == before
    assert torch.equal(target.state[params[0]]["exp_avg"], source.state[params[0]]["exp_avg"])


def _torch_fuses_adam_on_cpu():
    try:
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_make_optimizer_fuses_adam_where_torch_can(name):
    """Fused wherever torch has the kernel (the CPU from torch 2.4), with the
    default implementation's updates within float32 rounding."""
    torch.manual_seed(0)
    start = torch.randn(50, 7)
    grads = [torch.randn(50, 7) for _ in range(5)]
    results = []
    for fused in (True, False):
        param = torch.nn.Parameter(start.clone())
        if fused:
            optimizer = _optimizers.make_optimizer(name, [param], 0.01)
            assert bool(optimizer.defaults.get("fused")) == _torch_fuses_adam_on_cpu()
        else:
            optimizer = _optimizers.OPTIMIZERS[name]([param], lr=0.01)
        for grad in grads:
            param.grad = grad.clone()
            optimizer.step()
        results.append(param.detach())
    assert not torch.equal(results[0], start)
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)
    if torch.cuda.is_available():
        cuda_params = [torch.nn.Parameter(torch.randn(3))]
        assert _optimizers.make_optimizer(name, cuda_params, 0.1).defaults["fused"]


def test_make_optimizer_falls_back_where_torch_has_no_fused_kernel(monkeypatch):
    """As on torch < 2.4 on the CPU: the fused constructor refuses, the default is made."""

    class NoFusedAdam(torch.optim.Adam):
        def __init__(self, params, lr, fused=None):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be on CUDA")
            super().__init__(params, lr=lr)

    monkeypatch.setitem(_optimizers.OPTIMIZERS, "adam", NoFusedAdam)
    params = (p for p in [torch.nn.Parameter(torch.randn(3))])  # a generator, as module.parameters()
    optimizer = _optimizers.make_optimizer("adam", params, 0.1)
    assert type(optimizer) is NoFusedAdam
    assert not optimizer.defaults.get("fused")
    assert len(optimizer.param_groups[0]["params"]) == 1


@needs_cuda
@pytest.mark.parametrize("compile", [False, "reduce-overhead"])
def test_gpu_fit_with_bf16_and_cuda_graphs(compile, digits):
    X = digits[0]
    kw = dict(max_iter=3, batch_size=256, n_iter_no_change=10, random_state=0)
    reference = VAETransformer(**kw).fit(X)
    fast = VAETransformer(precision="bf16-mixed", compile=compile, **kw).fit(X)
    assert fast.optimizer_.defaults["fused"]
    np.testing.assert_allclose(
        [h["loss"] for h in fast.history_], [h["loss"] for h in reference.history_], rtol=0.03
    )
    assert np.isfinite(fast.transform(X)).all()
