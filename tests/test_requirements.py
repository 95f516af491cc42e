"""requirements*.txt list every package the code imports directly (issue: imported but not listed)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/clip_cuda_parity.py compares with OpenAI's own CLIP code, installed by hand for that check only
# (docs/prompts.md); pkg_resources is its fallback for openai-clip's old import.
OPTIONAL = {"clip", "pkg_resources"}
FIRST_PARTY = {"app", "benchmarks", "conftest", "data", "demo", "engine", "net", "options", "quickstart", "tests",
               "utils"}
# what each requirements file serves: the runtime, the tests, the web demo (app.py and its browser test)
REQUIREMENTS = {"requirements.txt": ("data", "engine", "net", "utils", "options.py", "demo.py", "quickstart.py",
                                     "train_3D_DFPIR.py", "train_5D_DFPIR.py", "test_3D_DFPIR.py",
                                     "test_5D_DFPIR.py", "train_recognizer.py", "benchmarks"),
                "requirements-test.txt": tuple(f"tests/{p.name}" for p in sorted((ROOT / "tests").glob("*.py"))
                                               if p.name != "test_app.py"),
                "requirements-app.txt": ("app.py", "tests/test_app.py")}


def imported_top_levels(paths: tuple[str, ...]) -> set[str]:
    """Top-level names of every absolute import (inside functions too) in the given files and folders."""
    files = [p for name in paths for p in ([ROOT / name] if name.endswith(".py") else (ROOT / name).rglob("*.py"))]
    names = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return names - FIRST_PARTY - OPTIONAL - set(sys.stdlib_module_names) - {"__future__"}


def listed(*files: str) -> set[str]:
    """Normalised distribution names listed in the requirements files."""
    names = set()
    for file in files:
        for line in (ROOT / file).read_text().splitlines():
            match = re.match(r"\s*([A-Za-z0-9_.-]+)", line.split("#")[0])
            if match:
                names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def test_every_directly_imported_package_is_listed():
    distributions = packages_distributions()
    scopes = {"requirements.txt": ("requirements.txt",),
              "requirements-test.txt": ("requirements.txt", "requirements-test.txt"),
              "requirements-app.txt": ("requirements.txt", "requirements-test.txt", "requirements-app.txt")}
    for file, paths in REQUIREMENTS.items():
        names = listed(*scopes[file])
        missing = {name: distributions.get(name, [name]) for name in imported_top_levels(paths)
                   if not {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(name, [name])} & names}
        assert not missing, f"imported by {file}'s code but listed in none of {scopes[file]}: {missing}"
