"""Start-up: ``import skvae`` and the command's quick answers stay light.

``skvae --help``, each subcommand's ``--help`` and argparse's usage errors
must answer without importing torch (or scikit-learn, matplotlib, numpy),
and ``import skvae`` must not import them either: the public names and the
submodules load on first use. Each check runs in a fresh interpreter, since
this test process has long imported everything. No timings here; see
``benchmarks/bench_startup.py``.
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "numpy")

# Runs the command's `main` with the given arguments, catches argparse's
# SystemExit, and prints the exit status and which heavy modules were loaded.
_RUN_MAIN = """
import json, sys
from skvae.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
print(json.dumps({"status": status,
                  "loaded": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


def _python(code, *args):
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def _main_in_subprocess(*args):
    proc = _python(_RUN_MAIN, *args)
    return json.loads(proc.stdout.splitlines()[-1]), proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["fit", "--help"],
        ["sample", "--help"],
        ["encode", "--help"],
        ["plugins", "--help"],
        ["--version"],
    ],
    ids=" ".join,
)
def test_help_does_not_import_torch(args):
    result, _ = _main_in_subprocess(*args)
    assert result == {"status": 0, "loaded": []}


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--epochs", "-1"], "--epochs: must be a positive integer, got '-1'"),
        (["fit", "--device", "gpu"], "must be auto, cpu, cuda, cuda:N"),
        (["fit", "--precision", "half"], "invalid choice: 'half'"),
        (["fit", "--grayscale"], "--grayscale applies to --data cifar10 only"),
        (["sample"], "the following arguments are required: MODEL"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_error_exits_2_without_torch(args, message):
    result, stderr = _main_in_subprocess(*args)
    assert result == {"status": 2, "loaded": []}
    assert "usage: skvae" in stderr and message in stderr


def test_module_help_exits_0_without_torch():
    """``python -m skvae.cli fit --help``, as the console script and torchrun run it."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['skvae', 'fit', '--help']\n"
        "try:\n"
        "    runpy.run_module('skvae.cli', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print('torch' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    proc = _python(code)
    assert "usage: skvae fit" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "False False"


def test_import_skvae_is_light():
    proc = _python(
        "import sys, skvae\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(sorted(m for m in sys.modules if m.startswith('skvae.')))\n"
    )
    loaded, submodules = proc.stdout.splitlines()[-2:]
    assert loaded == "[]"  # not matplotlib, nor torch, scikit-learn, numpy
    assert submodules == "[]"  # not skvae.plotting, skvae.datasets, ...


def test_every_public_name_still_importable():
    """``from skvae import <name>`` and ``skvae.<name>`` give the defining module's object."""
    proc = _python(
        "import importlib, sys, skvae\n"
        "assert 'torch' not in sys.modules  # loaded below, by the names\n"
        "names = list(skvae.__all__)\n"
        "assert names == sorted(names) and set(names) == set(skvae._LAZY_NAMES), names\n"
        "assert set(names) <= set(dir(skvae)), set(names) - set(dir(skvae))\n"
        "for name in names:\n"
        "    exec(f'from skvae import {name} as obj')\n"
        "    assert obj is getattr(skvae, name), name\n"
        "    if obj.__module__.startswith('skvae.'):  # not hookimpl, a pluggy marker\n"
        "        assert getattr(importlib.import_module(obj.__module__), name) is obj, name\n"
        "assert skvae.hookimpl is skvae.hookspecs.hookimpl\n"
        "assert 'torch' in sys.modules\n"
        "from skvae import ModelFileError, VAETransformer, load, save\n"
        "assert skvae.__version__\n"
        "print('ok')\n"
    )
    assert proc.stdout.splitlines()[-1] == "ok"


def test_submodules_load_on_attribute_access():
    """``import skvae; skvae.datasets...`` works as it did when they were imported eagerly."""
    proc = _python(
        "import sys, skvae\n"
        "assert 'skvae._engine' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "assert callable(skvae.datasets.load_digits)\n"
        "assert callable(skvae._engine.run)\n"
        "assert skvae.base.Architecture and skvae.hookspecs\n"
        "assert 'matplotlib' not in sys.modules\n"
        "assert skvae.plotting.SamplesDisplay.__name__ == 'SamplesDisplay'\n"
        "assert {'plotting', 'datasets', 'cli', '_engine'} <= set(dir(skvae))\n"
        "try:\n"
        "    skvae.no_such_name\n"
        "except AttributeError as exc:\n"
        "    assert str(exc) == \"module 'skvae' has no attribute 'no_such_name'\", exc\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
        "print('ok')\n"
    )
    assert proc.stdout.splitlines()[-1] == "ok"
