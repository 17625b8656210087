"""Hub-style model folders (skvae.hub): round trip, model card, hostile folders, repo ids."""

import hashlib
import os
import shutil
import sys

import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits

from skvae import ModelFileError, VAEOutlierDetector, VAETransformer
from skvae.hub import (
    CONFIG,
    MODEL_CARD,
    TRAINING,
    WEIGHTS,
    PretrainedMixin,
    from_pretrained,
    save_pretrained,
)


@pytest.fixture(scope="module")
def data():
    return load_digits().data[:120] / 16


@pytest.fixture(scope="module")
def vae(data):
    return VAETransformer(n_components=2, max_iter=2, batch_size=64, random_state=0).fit(data)


@pytest.fixture
def folder(vae, data, tmp_path):
    return save_pretrained(vae, tmp_path / "digits-vae", metrics={"held-out ELBO": -41.5},
                           intended_use="Encoding 8x8 digits.")


def test_round_trip(folder, vae, data):
    assert sorted(os.listdir(folder)) == [MODEL_CARD, CONFIG, WEIGHTS]
    loaded = from_pretrained(folder)
    assert type(loaded) is VAETransformer
    assert_allclose(loaded.transform(data), vae.transform(data), rtol=1e-6, atol=1e-7)
    assert loaded.get_params()["n_components"] == 2


def test_optimizer_state_and_a_detector(data, tmp_path):
    det = VAEOutlierDetector(n_components=2, max_iter=1, random_state=0).fit(data)
    folder = save_pretrained(det, tmp_path / "det", include_optimizer=True)
    assert (folder / TRAINING).is_file()
    loaded = from_pretrained(str(folder))
    assert_allclose(loaded.decision_function(data), det.decision_function(data), rtol=1e-5)
    assert "outlier threshold" in (folder / MODEL_CARD).read_text()
    save_pretrained(det, folder)  # without the optimizer: the stale state goes
    assert not (folder / TRAINING).exists()
    from_pretrained(folder)


def test_model_card(folder, vae):
    card = (folder / MODEL_CARD).read_text()
    assert card.startswith("---\nlibrary_name: skvae\n")
    assert "# digits-vae" in card
    assert "| held-out ELBO | -41.5 |" in card
    assert "| features (`n_features_in_`) | 64 |" in card
    assert "| latent dimensions (`n_components`) | 2 |" in card
    for plugin in ("`mlp`", "`bernoulli`", "`normal`"):
        assert plugin in card
    assert "Encoding 8x8 digits." in card
    assert f"| epochs trained (`n_iter_`) | {vae.n_iter_} |" in card
    assert "training loss, last epoch" in card


def test_bad_metrics(vae, tmp_path):
    with pytest.raises(ValueError, match="finite number"):
        save_pretrained(vae, tmp_path / "x", metrics={"elbo": float("nan")})


def test_missing_file(folder):
    (folder / WEIGHTS).unlink()
    with pytest.raises(ModelFileError, match="has no model.safetensors"):
        from_pretrained(folder)


def test_symlinks_are_refused(folder, tmp_path):
    elsewhere = tmp_path / "elsewhere.safetensors"
    shutil.move(folder / WEIGHTS, elsewhere)
    os.symlink(elsewhere, folder / WEIGHTS)
    with pytest.raises(ModelFileError, match="symbolic link"):
        from_pretrained(folder)
    link = tmp_path / "link"
    os.symlink(folder, link)
    with pytest.raises(ModelFileError, match="symbolic link"):
        from_pretrained(link)


def test_oversize_files_are_refused_before_reading(folder):
    with open(folder / WEIGHTS, "ab") as f:
        f.truncate(os.path.getsize(folder / WEIGHTS) + 4 * 2**20)  # sparse
    with pytest.raises(ModelFileError, match="more than the"):
        from_pretrained(folder)
    with open(folder / CONFIG, "ab") as f:
        f.truncate(65 * 2**20)
    with pytest.raises(ModelFileError, match="more than the"):
        from_pretrained(folder)


def test_modified_weights_are_refused(folder):
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-1] ^= 1
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="digest|modified"):
        from_pretrained(folder)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused(folder):
    (folder / WEIGHTS).unlink()
    os.mkfifo(folder / WEIGHTS)
    with pytest.raises(ModelFileError, match="FIFO"):
        from_pretrained(folder)


def _hub_cache(folder, root, outside=None):
    """The layout of huggingface_hub's cache: snapshot links into the repo's blobs."""
    repo = root / "models--someone--digits-vae"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for name in (CONFIG, WEIGHTS, MODEL_CARD):
        data = (folder / name).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        target = outside if (outside is not None and name == WEIGHTS) else os.path.relpath(
            blob, snapshot)
        os.symlink(target, snapshot / name)
    return snapshot


def test_repo_id_through_snapshot_download(folder, vae, data, tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    snapshot = _hub_cache(folder, tmp_path / "cache")
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = from_pretrained("someone/digits-vae", revision="v1")
    assert_allclose(loaded.transform(data), vae.transform(data), rtol=1e-6, atol=1e-7)
    assert calls[0][0] == "someone/digits-vae" and calls[0][1]["revision"] == "v1"
    assert WEIGHTS in calls[0][1]["allow_patterns"]


def test_repo_id_link_out_of_the_cache_is_refused(folder, tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    outside = tmp_path / "outside.safetensors"
    shutil.copy(folder / WEIGHTS, outside)
    snapshot = _hub_cache(folder, tmp_path / "cache", outside=outside)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(snapshot))
    with pytest.raises(ModelFileError, match="symbolic link"):
        from_pretrained("someone/digits-vae")


def test_repo_id_without_huggingface_hub(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r'pip install "skvae\[hub\]"'):
        from_pretrained("someone/digits-vae")


def test_neither_folder_nor_repo_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a model folder"):
        from_pretrained(str(tmp_path / "no" / "such" / "folder"))


def test_the_estimators_have_the_methods(folder, data, tmp_path):
    model = VAETransformer.from_pretrained(folder)
    assert isinstance(model, VAETransformer) and issubclass(VAETransformer, PretrainedMixin)
    model.save_pretrained(tmp_path / "again")
    assert_allclose(VAETransformer.from_pretrained(tmp_path / "again").transform(data[:20]),
                    model.transform(data[:20]), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="holds a VAETransformer"):
        VAEOutlierDetector.from_pretrained(folder)
