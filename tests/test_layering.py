"""The project's modules form floors, and imports only go down or sideways without a cycle.

Floors: ``utils/`` 0 (leaves) < ``net/`` and ``data/`` 1 < ``engine/`` and ``options.py`` (the
command-line options the runs of ``engine/`` parse) 2 < the scripts at the top level 3. Every
import counts, also those inside functions and under ``TYPE_CHECKING``, parsed with ``ast``.
Importing a package's submodule is not counted as importing the package's ``__init__``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"utils": 0, "net": 1, "data": 1, "engine": 2}
TOP_LEVEL_FLOORS = {"options": 2}  # other top-level modules are scripts: floor 3
SCRIPT_FLOOR = 3
# Upward imports being removed by another change (issue 24: the stand-in recipes leave utils/tasks.py).


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module of the layers and of the top level, by dotted name."""
    files = [p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")] + sorted(ROOT.glob("*.py"))
    return {_module_name(p): p for p in files}


def floor(module: str) -> int:
    top = module.split(".")[0]
    return LAYERS.get(top, TOP_LEVEL_FLOORS.get(top, SCRIPT_FLOOR))


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()

    def add(name: str) -> None:
        while name and name not in modules:  # `import a.b.c` of an attribute path: its longest module prefix
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in modules else base)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports_inside_functions():
    graph = import_graph()
    assert "net.checkpoint.hub_folder" in graph["net.checkpoint.loading"]
    assert "net.registry" in graph["net.dfpir"] and "engine.module" in graph["engine.train"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_the_project_modules():
    assert cycles(import_graph()) == []


def upward_imports() -> list[tuple[str, str]]:
    """(importer, imported) for every import from a lower floor to a higher one."""
    return [(source, target) for source, targets in sorted(import_graph().items()) if floor(source) < SCRIPT_FLOOR
            for target in sorted(targets) if floor(target) > floor(source)]


def test_no_import_from_a_lower_floor_to_a_higher_one():
    upward = [f"{source} (floor {floor(source)}) imports {target} (floor {floor(target)})"
              for source, target in upward_imports()]
    assert upward == []


def _loaded_by_import_net() -> set[str]:
    code = "import sys, net; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_importing_the_networks_loads_no_lightning():
    loaded = _loaded_by_import_net()
    assert not {m for m in loaded if m == "lightning" or m.startswith(("lightning.", "pytorch_lightning"))}
    assert not {m for m in loaded if m.split(".")[0] in ("engine", "options")}


def test_importing_the_networks_loads_neither_the_data_synthesis_nor_scipy():
    loaded = _loaded_by_import_net()
    assert "data.synthesis" not in loaded and not {m for m in loaded if m.split(".")[0] == "scipy"}


def test_every_package_of_the_layers_is_installed():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    installed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {_module_name(p) for layer in LAYERS for p in (ROOT / layer).rglob("__init__.py")}
    assert packages <= installed
