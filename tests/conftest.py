import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

# Two cores: keep torch from oversubscribing them in tests. SKVAE_TEST_THREADS
# runs the tests with more threads, to check that no test depends on how the
# CPU kernels split their work (OMP_NUM_THREADS alone cannot: this overrides it).
torch.set_num_threads(int(os.environ.get("SKVAE_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1], float32: (X, y)."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="session")
def digits_small(digits):
    X, y = digits
    return X[:300], y[:300]
