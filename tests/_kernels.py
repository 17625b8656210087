"""What this CPU's float32 kernels guarantee, for tests that compare bit for bit.

Inference pads every batch to one shape, so that on most CPUs a row's result
does not depend on the other rows at all. MKL's pre-AVX2 code paths (an old
CPU, or ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``) round a row of a GEMM differently
depending on its position in the batch, by a few units in the last place:
scikit-learn's checks that compare a permuted or split input bit for bit
(``atol=1e-9``) then cannot pass, although the results agree to float32
rounding (which tests/test_estimator.py checks on every CPU).
"""

import functools

import torch

_SHAPES = (1, 3, 16, 64, 128, 256)


@functools.lru_cache(maxsize=None)
def rows_depend_on_their_position(rows=1024):
    """Whether a row of ``torch.nn.functional.linear`` changes with its batch position."""
    generator = torch.Generator().manual_seed(0)
    permutation = torch.randperm(rows, generator=generator)
    for n_in in _SHAPES:
        x = torch.rand(rows, n_in, generator=generator)
        for n_out in _SHAPES:
            weight = torch.randn(n_out, n_in, generator=generator)
            bias = torch.randn(n_out, generator=generator)
            out = torch.nn.functional.linear(x, weight, bias)
            moved = torch.nn.functional.linear(x[permutation], weight, bias)
            if not torch.equal(out[permutation], moved):
                return True
    return False


def expected_order_failures(estimator):
    """``expected_failed_checks`` for the row-order checks on such CPUs (else none)."""
    if not rows_depend_on_their_position():
        return {}
    reason = (
        "this CPU's float32 GEMM rounds a row differently at different batch positions "
        "(MKL's pre-AVX2 kernels); results agree to float32 rounding"
    )
    return {
        "check_methods_sample_order_invariance": reason,
        "check_methods_subset_invariance": reason,
    }
