"""The package's structure: no import circle in skvae/, no private imports in plugins/."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Modules of skvae that ``path`` imports, at module level or inside functions."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                found.add(".".join(base + node.module.split(".")))
            else:
                found.update(".".join(base + [a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("skvae"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("skvae"))
    return found


def _graph():
    modules = {_module_name(p): p for p in (ROOT / "skvae").rglob("*.py")}
    return {name: _imports(path) & set(modules) for name, path in modules.items()}


def _cycle_from(graph, start):
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_no_import_circle_in_skvae():
    graph = _graph()
    assert "skvae._io" in graph and "skvae._estimator" in graph
    cycles = [c for c in (_cycle_from(graph, m) for m in graph) if c is not None]
    # A package __init__ that imports its own submodules lazily is not a circle.
    cycles = [c for c in cycles if not any(a.startswith(b + ".") for a, b in zip(c[1:], c))]
    assert not cycles, "import circle: " + " -> ".join(cycles[0])


def test_the_file_format_imports_no_estimator():
    assert not {m for m in _graph()["skvae._io"] if m in ("skvae._estimator", "skvae._conditional")}


def test_the_cycle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle_from(graph, "a") == ["a", "b", "c", "a"]
    assert _cycle_from(graph, "d") is None


def test_built_in_plugins_use_only_public_skvae_names():
    private = []
    for path in (ROOT / "plugins").glob("*.py"):
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "skvae" and any(part.startswith("_") for part in parts[1:]):
                private.append(f"{path.name}: {module}")
    assert not private, private
