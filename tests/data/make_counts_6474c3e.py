"""Write the count-likelihood model files of tests/test_format_compat.py (run once, at 6474c3e).

At 6474c3e the 'poisson' and 'negative_binomial' encoders saw the raw
counts; their files record no ``log_input`` parameter. Kept so that anyone
can see how the files were made; the test reads the files, written by the
code of their time.
"""
import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import skvae
from skvae_plugins.mlp import MLP

here = Path(__file__).parent
X = np.rint(load_digits().data[:200]).astype(np.float32)  # grey levels 0..16 as counts
probe = X[:8]
expected = {"probe": probe.tolist()}
for likelihood in ("poisson", "negative_binomial"):
    model = skvae.VAETransformer(
        n_components=3, max_iter=3, batch_size=64, random_state=0, likelihood=likelihood,
        architecture=MLP(hidden_sizes=(16,)),
    ).fit(X)
    skvae.save(model, here / f"counts_6474c3e_{likelihood}.skvae")
    expected[likelihood] = model.transform(probe).tolist()
(here / "counts_6474c3e_expected.json").write_text(json.dumps(expected))
