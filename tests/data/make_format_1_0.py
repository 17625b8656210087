"""Write the model files of tests/test_format_compat.py (run once, with skvae 0.x at b5bfa6b).

Kept so that anyone can see how the files were made; the files themselves
are what the test reads: they were written by the code of their time, not by
the code under test.
"""
import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import skvae
from skvae_plugins.mlp import MLP

here = Path(__file__).parent
X, y = load_digits(return_X_y=True)
X = (X[:200] / 16.0).astype(np.float32)
y = y[:200] % 3
probe = X[:8]
models = {
    "vae": skvae.VAETransformer(n_components=3, max_iter=3, batch_size=64, random_state=0,
        architecture=MLP(hidden_sizes=(16,))).fit(X),
    "cvae": skvae.ConditionalVAETransformer(
        n_components=3, max_iter=3, batch_size=64, random_state=0,
        architecture=MLP(hidden_sizes=(16,))
    ).fit(X, y),
    "acvae": skvae.AuxiliaryClassifierVAE(
        n_components=3, max_iter=3, batch_size=64, random_state=0,
        architecture=MLP(hidden_sizes=(16,))
    ).fit(X, y),
}
expected = {"probe": probe.tolist()}
for name, model in models.items():
    skvae.save(model, here / f"format_1_0_{name}.skvae")  # with the optimizer state
    if name == "vae":
        expected[name] = model.transform(probe).tolist()
    else:
        expected[name] = model.transform(probe, y[:8]).tolist() if name == "cvae" else model.predict_proba(probe).tolist()
    expected[name + "_history"] = len(model.history_)
expected["y_probe"] = y[:8].tolist()
(here / "format_1_0_expected.json").write_text(json.dumps(expected))
