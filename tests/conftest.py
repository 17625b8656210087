import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

# Two cores: keep torch from oversubscribing them in tests.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1], float32: (X, y)."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="session")
def digits_small(digits):
    X, y = digits
    return X[:300], y[:300]
