"""Hostile model files: skvae.load stays bounded in memory and time, and refuses them clearly.

Each hostile file is built here from a real small saved model, with
zipfile, json and a hand-written zip writer (for members whose declared
sizes lie, duplicate names and decompression bombs). The attacks that
exhausted memory run in one child process (peak RSS measured per file, the
high-water mark reset between files through /proc/self/clear_refs), bounded
by a timeout and an address-space limit, so that an unfixed skvae fails
them without taking the machine down.
"""

import hashlib
import json
import os
import struct
import subprocess
import re
import sys
import tempfile
import textwrap
import threading
import warnings
import zipfile
import zlib

import numpy as np
import pytest
import torch

import skvae
from skvae import ModelFileError, VAETransformer
from skvae._io import read_checkpoint, save_checkpoint
from skvae.cli import main
from skvae_plugins.mlp import MLP

PARAMS = dict(n_components=2, architecture=MLP(hidden_sizes=(8,)), max_iter=2, random_state=0)
GiB = 2**30


@pytest.fixture(scope="module")
def X(digits):
    return digits[0][:60]


@pytest.fixture(scope="module")
def saved(X, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model.skvae"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 2 epochs: not the point here
        return skvae.save(VAETransformer(**PARAMS).fit(X), path)


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# ------------------------------------------------------------ zip writing
def _stored(name, data):
    return (name, data, zipfile.ZIP_STORED, len(data), zlib.crc32(data))


def _deflated(name, data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (name, c.compress(data) + c.flush(), zipfile.ZIP_DEFLATED, len(data), zlib.crc32(data))


def _deflated_repeat(name, prefix, chunk, times, suffix=b"", crc=True):
    """A deflated member of ``prefix + chunk * times + suffix``, without building it.

    After a full flush the compressor starts afresh: the same chunk gives the
    same bytes, so the compressed chunk is repeated (1 GiB of zeros in 1 MB).
    ``crc=False`` writes 0 for the CRC (a reader finds out at the end, once
    it has inflated the member: a bomb has done its harm by then).
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH) == block
    tail = c.compress(suffix) + c.flush()
    if crc:
        crc = zlib.crc32(prefix)
        for _ in range(times):
            crc = zlib.crc32(chunk, crc)
        crc = zlib.crc32(suffix, crc)
    else:
        crc = 0
    size = len(prefix) + len(chunk) * times + len(suffix)
    return (name, head + block * times + tail, zipfile.ZIP_DEFLATED, size, crc)


def _member(name, data):
    """As skvae writes it: JSON deflated, tensors stored."""
    return _deflated(name, data) if name.endswith(".json") else _stored(name, data)


def _zip(path, entries):
    """Write a zip archive of ``(name, data, method, file_size, crc)`` entries, as given."""
    out, central = bytearray(), bytearray()
    for name, data, method, size, crc in entries:
        offset, encoded = len(out), name.encode()
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size,
            len(encoded), 0,
        )
        out += encoded + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data),
            size, len(encoded), 0, 0, 0, 0, 0, offset,
        )
        central += encoded
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0
    )
    path.write_bytes(bytes(out + central + end))
    return path


def _write(path, members, model=None):
    """The members (model.json replaced by ``model``), each stored as skvae writes it."""
    members = dict(members)
    if model is not None:
        members["model.json"] = json.dumps(model).encode()
    return _zip(path, [_member(n, d) for n, d in members.items()])


def _edit(saved, path, edit):
    members = _members(saved)
    model = json.loads(members["model.json"])
    edit(model)
    return _write(path, members, model)


def _safetensors(tensors):
    import safetensors.torch

    return safetensors.torch.save(tensors, metadata={"format": "pt"})


def _with_tensors(saved, path, name, tensors, edit=None):
    """Replace a safetensors member by ``tensors``, with its digest (and listing) updated."""
    members = _members(saved)
    model = json.loads(members["model.json"])
    members[name] = data = _safetensors(tensors)
    model["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    if edit is not None:
        edit(model)
    return _write(path, members, model)


def test_the_zip_writer_writes_what_skvae_loads(saved, tmp_path):
    """The tests below change one thing each: their writer itself gives a loadable file."""
    loaded = skvae.load(_write(tmp_path / "copy.skvae", _members(saved)))
    assert loaded.n_iter_ == 2


# ------------------------------------------------- memory: one child process
_PEAK_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    torch.set_num_threads(1)
    import skvae
    # skvae loads its modules on first use: load them before the baseline.
    from skvae import VAETransformer, load

    def status(key):
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith(key + ":")).split()[1])

    # A hard cap, so that an unbounded load fails instead of filling the machine.
    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, resource.RLIM_INFINITY))
    print(json.dumps({"label": "baseline", "peak_kib": status("VmHWM")}), flush=True)
    for label, path in json.loads(sys.argv[1]):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak RSS to the current RSS
        except OSError:
            pass  # then the peak is the highest so far: still an upper bound
        before = status("VmRSS")
        try:
            load(path)
            error, message = None, ""
        except BaseException as exc:
            error, message = type(exc).__name__, str(exc)[:400]
        print(json.dumps({"label": label, "error": error, "message": message,
                          "before_kib": before, "peak_kib": status("VmHWM")}), flush=True)
    """
)


def _json_padding(saved, path):
    """64 MB of "[]," in model.json (a 1 MB file): 2 GB once parsed."""
    members = _members(saved)
    text = members.pop("model.json").decode()
    assert text.endswith("}")
    prefix = (text[:-1] + ', "padding": [').encode()
    chunk = b"[]," * 2**18
    entry = _deflated_repeat("model.json", prefix, chunk, 81, b"[]]}")
    assert 60e6 < entry[3] < 64 * 2**20 and len(entry[1]) < 2e6
    return _zip(path, [entry] + [_stored(n, d) for n, d in members.items()])


def _weights_bomb(saved, path, name):
    """The member inflates to 1 GiB (the real tensors, then zeros), from 1 MB."""
    members = _members(saved)
    real = members.pop(name)
    entry = _deflated_repeat(name, real, bytes(2**20), 1024, crc=False)
    entries = [_member(n, d) for n, d in members.items()]
    return _zip(path, entries + [entry])


def _one_gib_tensor(saved, path):
    """A valid safetensors member of one 1 GiB tensor, listed in model.json, deflated to 1 MB."""
    members = _members(saved)
    model = json.loads(members.pop("model.json"))
    members.pop("weights.safetensors")
    header = json.dumps(
        {"big": {"dtype": "F32", "shape": [2**28], "data_offsets": [0, GiB]}}
    ).encode()
    prefix = struct.pack("<Q", len(header)) + header
    entry = _deflated_repeat("weights.safetensors", prefix, bytes(2**20), 1024, crc=False)
    model["module"]["tensors"] = {"big": {"dtype": "float32", "shape": [2**28]}}
    model["files"]["weights.safetensors"]["size"] = entry[3]
    return _zip(
        path,
        [_deflated("model.json", json.dumps(model).encode()), entry]
        + [_stored(n, d) for n, d in members.items()],
    )


def _wide_string(saved, path):
    """One fitted ndarray of dtype <U268435456: 1 GiB for the string "a"."""
    record = {"type": "ndarray", "dtype": "<U268435456", "shape": [1], "data": ["a"]}
    return _edit(saved, path, lambda m: m["fitted"].update(junk_=record))


def _json_bomb(saved, path):
    """1 GiB of "[]," in model.json: refused by its declared size, before reading."""
    members = _members(saved)
    text = members.pop("model.json").decode()
    prefix = (text[:-1] + ', "padding": [').encode()
    entry = _deflated_repeat("model.json", prefix, b"[]," * 2**18, 1366, b"[]]}", crc=False)
    return _zip(path, [entry] + [_stored(n, d) for n, d in members.items()])


MEMORY_ATTACKS = {
    "weights_bomb": lambda saved, path: _weights_bomb(saved, path, "weights.safetensors"),
    "training_bomb": lambda saved, path: _weights_bomb(saved, path, "training.safetensors"),
    "one_gib_tensor": _one_gib_tensor,
    "json_padding": _json_padding,
    "json_bomb": _json_bomb,
    "wide_string": _wide_string,
}


@pytest.fixture(scope="module")
def peaks(saved, tmp_path_factory):
    """Load every memory attack (and a real model, and a FIFO, and /dev/zero) in one child."""
    if not sys.platform.startswith("linux"):
        pytest.skip("peak RSS from /proc/self/status")
    folder = tmp_path_factory.mktemp("attacks")
    files = [("control", str(saved))]
    for label, make in MEMORY_ATTACKS.items():
        files.append((label, str(make(saved, folder / f"{label}.skvae"))))
    fifo = folder / "fifo.skvae"
    os.mkfifo(fifo)
    files += [("dev_zero", "/dev/zero"), ("fifo", str(fifo))]
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PEAK_SCRIPT, json.dumps(files)],
            capture_output=True, text=True, timeout=90,
        ).stdout
    except subprocess.TimeoutExpired as exc:  # an unfixed load hangs (the FIFO)
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
    results = {}
    for line in out.splitlines():
        record = json.loads(line)
        results[record["label"]] = record
    return results


def _result(peaks, label):
    assert label in peaks, f"the child did not finish loading {label} (hung or crashed)"
    record = peaks[label]
    baseline = peaks["baseline"]["peak_kib"]
    print(
        f"\n{label}: {record['error']}: {record['message'][:160]}\n  peak RSS after import "
        f"{baseline / 1024:.0f} MiB; before this load {record['before_kib'] / 1024:.0f} MiB, "
        f"peak {record['peak_kib'] / 1024:.0f} MiB"
    )
    return record


def _assert_low_peak(peaks, record):
    # Under 96 MiB more than before this load (a third of the RSS of a child
    # that imported skvae). Unbounded: 1 to 2 GiB, or MemoryError at the
    # child's 4 GiB address-space cap.
    assert record["peak_kib"] - record["before_kib"] < 96 * 1024, record
    assert 96 * 1024 < peaks["baseline"]["peak_kib"] / 3


def test_a_real_model_loads_in_the_memory_child(peaks):
    record = _result(peaks, "control")
    assert record["error"] is None
    _assert_low_peak(peaks, record)


@pytest.mark.parametrize(
    "label, match",
    [
        ("weights_bomb", "weights.safetensors is .* but inflates to"),
        ("training_bomb", "training.safetensors is .* but inflates to"),
        ("one_gib_tensor", "inflates to"),
        ("json_padding", "model.json holds .* MiB to decode"),
        ("json_bomb", r"model.json claims \d+ bytes, more than the 67108864"),
        ("wide_string", "junk_.*larger than the"),
    ],
)
def test_memory_attacks_are_refused_with_a_low_peak(peaks, label, match):
    record = _result(peaks, label)
    assert record["error"] == "ModelFileError", record
    assert re.search(match, record["message"]), record["message"]
    _assert_low_peak(peaks, record)


@pytest.mark.parametrize("label", ["dev_zero", "fifo"])
def test_devices_and_fifos_are_refused_without_reading(peaks, label):
    record = _result(peaks, label)
    assert record["error"] == "ModelFileError", record
    assert ("a device" if label == "dev_zero" else "a FIFO") in record["message"]
    assert "not a .skvae model file" in record["message"]
    _assert_low_peak(peaks, record)


# ---------------------------------------------------- the archive, in-process
def test_a_folder_is_a_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder, not a .skvae model file"):
        skvae.load(tmp_path)


def test_duplicate_members_are_refused(saved, tmp_path):
    members = _members(saved)
    model = json.loads(members["model.json"])
    model["params"]["learning_rate"] = 0.5  # the copy a "last wins" reader takes
    entries = [_member(n, d) for n, d in members.items()]
    entries.append(_deflated("model.json", json.dumps(model).encode()))
    path = _zip(tmp_path / "twice.skvae", entries)
    with pytest.raises(ModelFileError, match="several members named 'model.json'"):
        skvae.load(path)


def test_a_header_that_does_not_fit_the_member_is_refused(saved, tmp_path):
    members = _members(saved)
    model = json.loads(members["model.json"])
    # Two more bytes after the tensors: the header does not describe the member.
    members["weights.safetensors"] = data = members["weights.safetensors"] + b"\0\0"
    model["files"]["weights.safetensors"]["sha256"] = hashlib.sha256(data).hexdigest()
    with pytest.raises(ModelFileError, match="header describes"):
        skvae.load(_write(tmp_path / "long.skvae", members, model))


def test_optimizer_state_larger_than_the_network_is_refused(saved, tmp_path):
    # The network has 1,000 weights; its optimizer cannot need 2 MiB.
    big = {"generator": torch.zeros(5056, dtype=torch.uint8)}
    big["optimizer.0.exp_avg"] = torch.zeros(2**19)
    path = _with_tensors(saved, tmp_path / "opt.skvae", "training.safetensors", big)
    with pytest.raises(ModelFileError, match="training.safetensors declares .* more than"):
        skvae.load(path)


# ------------------------------------------------------------ model.json
@pytest.mark.parametrize(
    "name, value",
    [
        ("n_iter_", {"type": "numpy", "dtype": "int64", "value": 10**30}),
        ("_seed", {"type": "numpy", "dtype": "uint8", "value": -5}),
        ("junk_", {"type": "ndarray", "dtype": "uint8", "shape": [2], "data": [1, -5]}),
        ("junk_", {"type": "ndarray", "dtype": "int64", "shape": [1], "data": [10**30]}),
    ],
    ids=["int64_scalar", "uint8_scalar", "uint8_array", "int64_array"],
)
def test_values_that_overflow_are_model_file_errors(saved, tmp_path, name, value):
    path = _edit(saved, tmp_path / "overflow.skvae", lambda m: m["fitted"].update({name: value}))
    with pytest.raises(ModelFileError, match="out of its range"):
        skvae.load(path)


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("n_iter_", "x", "n_iter_ is 'x'"),
        ("history_", "not a list", "history_ is"),
        ("n_iter_", {"type": "ndarray", "dtype": "<i8", "shape": [1], "data": [1]}, "n_iter_ is"),
        ("history_", [1, 2], "history_ is"),
        ("_sklearn_output_config", {"type": "dict", "items": {"transform": "evil"}}, "set_output"),
        ("_sklearn_output_config", "pandas", "set_output"),
        ("_private", 1, "private ones a file may set"),
        ("_generator_state", 1, "private ones a file may set"),
        ("classes_", {"type": "ndarray", "dtype": "<i8", "shape": [1], "data": [0]}, "without lab"),
    ],
    ids=[
        "n_iter_str", "history_str", "n_iter_array", "history_ints", "output_config_value",
        "output_config_str", "unknown_private", "unknown_private_2", "classes_on_vae",
    ],
)
def test_fitted_attributes_of_the_wrong_type_are_refused(saved, tmp_path, name, value, match):
    path = _edit(saved, tmp_path / "typed.skvae", lambda m: m["fitted"].update({name: value}))
    with pytest.raises(ModelFileError, match=match):
        skvae.load(path)


@pytest.fixture(scope="module")
def saved_table(tmp_path_factory):
    """A model fitted on a DataFrame of numbers, read as a table (likelihood="columns")."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"mass": rng.normal(4000.0, 500.0, 60), "rings": rng.randint(2, 9, 60)})
    path = tmp_path_factory.mktemp("table") / "table.skvae"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skvae.save(VAETransformer(**PARAMS, likelihood="columns").fit(frame), path)


def _schema_edit(edit):
    """An edit of model.json that applies ``edit`` to the table schema's columns."""
    def apply(model):
        edit(model["fitted"]["table_schema_"]["value"]["columns"])
    return apply


def _polars(dtypes):
    """An edit of model.json that gives the table schema these polars dtypes."""
    def apply(model):
        model["fitted"]["table_schema_"]["value"]["polars_dtypes"] = dtypes
    return apply


def _set(j, field, value):
    return _schema_edit(lambda columns: columns[j].update({field: value}))


def _make_categorical(value):
    def edit(columns):
        columns[0].update(dtype="object", kind="categorical", categories=["a", value])
    return _schema_edit(edit)


@pytest.mark.parametrize(
    "edit, match",
    [
        (_schema_edit(lambda c: c.pop()), "table_schema_ has 1 columns but n_features_in_ is 2"),
        (_schema_edit(lambda c: c.append(dict(c[0]))), "has 3 columns"),
        (_set(0, "dtype", "datetime64[ns]"), "dtype 'datetime64\\[ns\\]' is not one"),
        (_set(0, "dtype", "<U1000000000"), "is not one a table may hold"),
        (_set(0, "dtype", ["float64"]), "is not one a table may hold"),
        (_set(0, "dtype", "bool"), "does not fit the dtype"),
        (_schema_edit(lambda c: c[1].update(kind="categorical", categories=["b", "a"])),
         "must be increasing numbers"),
        (_schema_edit(lambda c: c[1].update(kind="categorical", categories=[3, 2])),
         "must be increasing numbers"),
        (_schema_edit(lambda c: c[1].update(kind="binary", categories=["b", "a"])),
         "must be increasing numbers"),
        (_make_categorical({"type": "ndarray"}), "category .* is not a str, int"),
        (_make_categorical([1, 2]), "category .* is not a str, int"),
        (_make_categorical(None), "category .* is not a str, int"),
        (_make_categorical("a"), "repeat a value"),
        (_set(1, "scale", 0.0), "scale > 0"),
        (_set(1, "mean", "0"), "finite numbers"),
        (_set(0, "name", {"type": "tuple", "items": []}), "name must be a str or an int"),
        (_set(0, "name", "weight"), "not those of feature_names_in_"),
        (_set(0, "likelihood", "bernoulli"), "modelled by 'bernoulli'"),
        (_schema_edit(lambda c: c[0].update(extra=1)), "must be a dict with the keys"),
        (lambda m: m["fitted"].update(table_schema_={"type": "table", "value": []}),
         "a dict with the one key"),
        (lambda m: m["fitted"].update(table_schema_=[1]), "table_schema_ is"),
        (_polars(["Float64", "Object"]), "'polars_dtypes' must list one of"),
        (_polars(["Float64"]), "'polars_dtypes' must list one of"),
        (_polars("Float64"), "'polars_dtypes' must list one of"),
    ],
    ids=[
        "too_short", "too_long", "datetime", "wide_string", "dtype_list", "kind",
        "text_values_of_numbers", "unordered_values", "binary_text_values", "dict_category",
        "list_category", "none_category", "repeated_category", "zero_scale", "string_mean",
        "tuple_name", "other_name", "other_likelihood", "extra_field", "not_a_dict", "not_tagged",
        "polars_object", "polars_too_short", "polars_not_a_list",
    ],
)
def test_a_table_schema_that_does_not_fit_is_refused(saved_table, tmp_path, edit, match):
    assert len(skvae.load(saved_table).table_schema_) == 2  # the untouched file loads
    path = _edit(saved_table, tmp_path / "table.skvae", edit)
    with pytest.raises(ModelFileError, match=match):
        skvae.load(path)


@pytest.fixture(scope="module")
def saved_imputer(X, tmp_path_factory):
    X_missing = X.copy()
    X_missing[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
    X_missing[:, 0] = np.nan  # an empty feature: indicator columns are not all features
    path = tmp_path_factory.mktemp("imputer") / "imputer.skvae"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imputer = skvae.VAEImputer(**PARAMS, add_indicator=True, n_impute_draws=4).fit(X_missing)
    return skvae.save(imputer, path)


def _array(values, dtype):
    return {"type": "ndarray", "dtype": dtype, "shape": [len(values)], "data": values}


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("empty_features_", _array([0, 1], "<i8"), "empty_features_ is"),
        ("empty_features_", _array([True, False], "|b1"), "empty_features_ has 2 entries"),
        ("missing_features_", _array([-1], "<i8"), "missing_features_ is"),
        ("missing_features_", _array([64], "<i8"), "names feature 64"),
        ("n_completions_", 3, "n_completions_ is"),
        ("n_completions_", _array([0, 0], "<i8"), "n_completions_ is"),
    ],
    ids=["empty_ints", "empty_short", "missing_negative", "missing_too_big", "count_int",
         "count_shape"],
)
def test_imputer_attributes_that_do_not_fit_are_refused(saved_imputer, tmp_path, name, value,
                                                        match):
    assert skvae.load(saved_imputer).empty_features_[0]  # the untouched file loads
    path = _edit(saved_imputer, tmp_path / "imputer.skvae",
                 lambda m: m["fitted"].update({name: value}))
    with pytest.raises(ModelFileError, match=match):
        skvae.load(path)


def test_detector_offset_must_be_a_finite_number(X, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector = skvae.VAEOutlierDetector(**PARAMS).fit(X)
    saved = skvae.save(detector, tmp_path / "detector.skvae")
    assert skvae.load(saved).offset_ == pytest.approx(detector.offset_)
    for value in ("x", {"type": "float", "value": "nan"}):
        path = _edit(saved, tmp_path / "offset.skvae", lambda m: m["fitted"].update({"offset_": value}))
        with pytest.raises(ModelFileError, match="offset_ is"):
            skvae.load(path)


def test_set_output_still_round_trips(X, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(**PARAMS).set_output(transform="pandas").fit(X)
    loaded = skvae.load(skvae.save(vae, tmp_path / "pandas.skvae"))
    assert type(loaded.transform(X)).__name__ == "DataFrame"


@pytest.mark.parametrize(
    "dtype, shape, data",
    [
        ("<U268435456", [1], ["a"]),
        ("<U4", [1], [1]),
        ("<i8", [1], [1.5]),
        ("<i8", [1], [True]),
    ],
    ids=["wide_string", "int_in_str", "float_in_int", "bool_in_int"],
)
def test_arrays_get_only_the_dtypes_and_shapes_of_their_data(saved, tmp_path, dtype, shape, data):
    record = {"type": "ndarray", "dtype": dtype, "shape": shape, "data": data}
    path = _edit(saved, tmp_path / "array.skvae", lambda m: m["fitted"].update(junk_=record))
    with pytest.raises(ModelFileError):
        skvae.load(path)


# ---------------------------------------------------------- non-finite
@pytest.mark.parametrize("name", ["weights.safetensors", "training.safetensors"])
def test_non_finite_tensors_are_refused(saved, tmp_path, name):
    import safetensors.torch

    tensors = safetensors.torch.load(_members(saved)[name])
    key = next(k for k, t in tensors.items() if t.is_floating_point() and t.numel() > 1)
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan") if name.startswith("weights") else float("inf")
    path = _with_tensors(saved, tmp_path / "nan.skvae", name, tensors)
    with pytest.raises(ModelFileError, match=f"{name} holds NaN or infinite values"):
        skvae.load(path)


# ---------------------------------------------------------- paths
def test_a_file_does_not_choose_where_fit_writes(X, tmp_path):
    target = tmp_path / "elsewhere" / "victim.skvae"
    target.parent.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(**PARAMS).fit(X)
    vae.set_params(checkpoint_path=str(target), warm_start=True)
    path = skvae.save(vae, tmp_path / "foreign.skvae")
    with pytest.warns(UserWarning, match="checkpoint_path=.*victim.skvae.*checkpoint_path=None"):
        loaded = skvae.load(path)
    assert loaded.checkpoint_path is None and loaded.warm_start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded.fit(X)  # a warm start: continues training
    assert loaded.n_iter_ == 4
    assert not target.exists() and os.listdir(target.parent) == []


def test_resuming_from_a_checkpoint_does_not_warn_about_its_path(X, tmp_path):
    path = tmp_path / "fit.skvae"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = VAETransformer(**PARAMS, checkpoint_path=path).fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("error", message=".*does not choose where")
        again = VAETransformer(**PARAMS, checkpoint_path=path).fit(X)  # taken as it is
    assert again.checkpoint_path == path
    assert again.history_ == first.history_


# ---------------------------------------------------------- checkpoints
@pytest.fixture
def checkpoint(X, tmp_path):
    path = tmp_path / "fit.skvae"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VAETransformer(**PARAMS, checkpoint_path=path).fit(X)
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s.pop("stop_epoch"), "lacks 'stop_epoch'"),
        (lambda s: s.pop("finished"), "lacks 'finished'"),
        (lambda s: s.update(finished="yes"), "finished='yes'"),
        (lambda s: s.update(halvings=-1), "halvings=-1"),
        (lambda s: s.update(lr_scale={"type": "float", "value": "nan"}), "lr_scale=nan"),
        (lambda s: s.update(epoch=7), "epoch=7"),
    ],
    ids=["no_stop_epoch", "no_finished", "finished_str", "halvings", "lr_scale", "epoch"],
)
def test_a_malformed_checkpoint_state_is_named(X, checkpoint, edit, match):
    members = _members(checkpoint)
    model = json.loads(members["model.json"])
    edit(model["checkpoint"])
    _write(checkpoint, members, model)
    with pytest.raises(ModelFileError, match=match):
        read_checkpoint(checkpoint, "cpu")
    # fit turns it into a ValueError naming checkpoint_path, and leaves the file alone.
    content = checkpoint.read_bytes()
    with pytest.raises(ValueError, match=f"checkpoint_path=.*fit.skvae.*{match}"):
        VAETransformer(**PARAMS, checkpoint_path=checkpoint).fit(X)
    assert checkpoint.read_bytes() == content


def test_save_checkpoint_refuses_an_incomplete_state(X, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(**PARAMS).fit(X)
    with pytest.raises(ValueError, match="lacks 'stop_epoch'"):
        save_checkpoint(vae, tmp_path / "c.skvae", {"epoch": 2, "finished": True})
    assert not (tmp_path / "c.skvae").exists()


def test_temp_files_of_killed_writes_are_removed_at_the_next_write(X, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(**PARAMS).fit(X)
    target = tmp_path / "model.skvae"
    old = 1_000_000_000  # 2001: long dead writers
    leftovers = [tmp_path / f".model.skvae.{tag}.tmp" for tag in ("abcd1234", "zz_y0x9w")]
    kept = [
        tmp_path / ".model.skvae.abc.tmp",  # not mkstemp's 8 characters
        tmp_path / ".other.skvae.abcd1234.tmp",  # another target
        tmp_path / "model.skvae.abcd1234.tmp",  # no leading dot
        tmp_path / ".model.skvae.abcd1234.tmp.bak",
        tmp_path / "notes.txt",
    ]
    for path in leftovers + kept:
        path.write_bytes(b"partial")
        os.utime(path, (old, old))
    folder = tmp_path / ".model.skvae.dir12345.tmp"  # matches, but a folder
    folder.mkdir()
    link = tmp_path / ".model.skvae.link1234.tmp"  # matches, but a symbolic link
    link.symlink_to(tmp_path / "notes.txt")
    os.utime(link, (old, old), follow_symlinks=False)
    # A writer still at work holds a lock on its temporary file: left alone.
    import fcntl

    busy = tmp_path / ".model.skvae.busy5678.tmp"
    busy.write_bytes(b"in progress")
    os.utime(busy, (old, old))
    with open(busy, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        skvae.save(vae, target)
        assert busy.exists()
    assert skvae.load(target).n_iter_ == 2
    assert not any(path.exists() for path in leftovers)
    assert all(path.exists() for path in kept) and folder.is_dir() and link.is_symlink()
    # The next write after the busy writer released it removes it too.
    skvae.save(vae, target)
    assert not busy.exists()


def test_a_temp_file_being_written_is_not_removed_by_another_writer(X, tmp_path, monkeypatch):
    """Two processes saving the same path: neither removes the other's temporary file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(**PARAMS).fit(X)
    target = tmp_path / "model.skvae"
    errors = []

    def save_many():
        try:
            for _ in range(15):
                skvae.save(vae, target)
        except Exception as exc:  # FileNotFoundError if the other removed our temp file
            errors.append(exc)

    # Make every temporary file look old, so that only the lock protects it.
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        os.utime(name, (1_000_000_000, 1_000_000_000))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    threads = [threading.Thread(target=save_many) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    monkeypatch.undo()
    assert errors == []
    assert skvae.load(target).n_iter_ == 2
    assert [p.name for p in tmp_path.iterdir()] == ["model.skvae"]


# ---------------------------------------------------------- CLI
def test_cli_sample_on_an_overflowing_scalar_is_a_clean_error(saved, tmp_path, capsys):
    value = {"type": "numpy", "dtype": "int64", "value": 10**30}
    path = _edit(saved, tmp_path / "overflow.skvae", lambda m: m["fitted"].update(n_iter_=value))
    out = tmp_path / "samples.npy"
    status = main(["sample", str(path), "--n", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("skvae: error: ") and "out of its range" in err
    assert "Traceback" not in err
    assert not out.exists()
