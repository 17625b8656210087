"""scikit-learn's common estimator checks, run over VAETransformer.

(The outlier detector's and the imputer's are in tests/test_outlier.py and
tests/test_impute.py.)

On CPUs whose GEMM rounds a row by its batch position, the two checks that
compare permuted or split inputs bit for bit are expected to fail (see
tests/_kernels.py).
"""

import numpy as np
from _kernels import expected_order_failures
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAETransformer
from skvae_plugins.gaussian import Gaussian
from skvae_plugins.mlp import MLP


@parametrize_with_checks(
    [
        # Defaults (likelihood="auto" meets the checks' unbounded data).
        VAETransformer(max_iter=5),
        # A configured plugin instance as a parameter, with early stopping.
        VAETransformer(
            n_components=3,
            architecture=MLP(hidden_sizes=(16,), activation="tanh"),
            likelihood=Gaussian(scale=0.5),
            max_iter=4,
            early_stopping=True,
            n_iter_no_change=2,
        ),
        # Rows with missing entries (NaN) accepted: the checks' NaN input is no error.
        VAETransformer(max_iter=5, missing_values=np.nan),
    ],
    expected_failed_checks=expected_order_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
