"""Model files written by an earlier skvae still load and give the same outputs.

The files in ``tests/data`` were written at commit b5bfa6b (format 1.0) by
``tests/data/make_format_1_0.py``, with the outputs that code computed; the
core's redesign must keep reading them.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import skvae

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "format_1_0_expected.json").read_text())
PROBE = np.asarray(EXPECTED["probe"], dtype=np.float32)
Y_PROBE = np.asarray(EXPECTED["y_probe"])


def _outputs(name, model):
    if name == "vae":
        return model.transform(PROBE)
    if name == "cvae":
        return model.transform(PROBE, Y_PROBE)
    return model.predict_proba(PROBE)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("vae", skvae.VAETransformer),
        ("cvae", skvae.ConditionalVAETransformer),
        ("acvae", skvae.AuxiliaryClassifierVAE),
    ],
)
def test_a_file_of_format_1_0_loads_and_gives_its_outputs(name, cls):
    model = skvae.load(DATA / f"format_1_0_{name}.skvae")
    assert type(model) is cls
    assert len(model.history_) == EXPECTED[name + "_history"] == model.n_iter_
    expected = np.asarray(EXPECTED[name], dtype=np.float32)
    got = _outputs(name, model)
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


def test_a_model_of_format_1_0_trains_on(tmp_path):
    model = skvae.load(DATA / "format_1_0_vae.skvae")
    model.set_params(warm_start=True, max_iter=2)
    X = np.repeat(PROBE, 8, axis=0)
    before = model.transform(PROBE)
    model.fit(X)
    assert model.n_iter_ == EXPECTED["vae_history"] + 2
    assert not np.allclose(model.transform(PROBE), before)
    skvae.save(model, tmp_path / "again.skvae")
    again = skvae.load(tmp_path / "again.skvae")
    np.testing.assert_array_equal(again.transform(PROBE), model.transform(PROBE))


COUNTS = json.loads((DATA / "counts_6474c3e_expected.json").read_text())


@pytest.mark.parametrize("likelihood", ["poisson", "negative_binomial"])
def test_a_count_model_from_before_log_input_keeps_its_raw_count_encoder(likelihood):
    """Files written before ``log_input`` existed record no value for it: they
    load with ``log_input=False`` (the encoder sees the raw counts, as it was
    fitted) and give the codes they gave, while a new model defaults to True."""
    model = skvae.load(DATA / f"counts_6474c3e_{likelihood}.skvae")
    assert model.likelihood_.log_input is False
    assert model.module_.likelihood.log_input is False
    probe = np.asarray(COUNTS["probe"], dtype=np.float32)
    np.testing.assert_allclose(model.transform(probe), COUNTS[likelihood], rtol=1e-4, atol=1e-5)
    assert type(model.likelihood_)().log_input is True
