"""The examples and the README's code run."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_example_runs():
    env = {**os.environ, "SKVAE_QUICK": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )
    assert "best parameters" in result.stdout
    assert re.search(r"held-out ELBO: -\d+\.\d+", result.stdout)


def test_readme_first_snippet_runs():
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["Z"].shape == (1797, 2)
    assert namespace["X_new"].shape == (16, 64)


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash .ci/install && python3 -m pytest" in readme
    assert "bash .ci/install\npython3 -m pytest\n" in ci


def test_readme_label_snippet_runs(digits):
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = next(b for b in blocks if "ConditionalVAETransformer(" in b)
    X, y = digits
    namespace = {"X": X, "y": y}
    exec(compile(snippet.replace("max_iter=20", "max_iter=2"), "README.md", "exec"), namespace)
    assert namespace["sevens"].shape == (16, 64)
