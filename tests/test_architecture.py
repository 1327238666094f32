"""The layout's rules, read from the imports themselves (module-level and lazy, function-level ones alike):
no import cycle; each layer imports only the layers below it (engine < inputs, analysis < audit < report < plugin <
commands; the top level's shared basics below all of them); loading the plugin imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_swapkl"


def module_name(path: Path) -> str:
    parts = ["pytest_swapkl", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The package's own modules that `name` imports anywhere in its body."""
    path = MODULES[name]
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from pkg import name` imports the submodule pkg.name when there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in MODULES and target != name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_every_relative_import_resolves():
    assert GRAPH["pytest_swapkl.engine.loop"] >= {"pytest_swapkl.engine.fastpath", "pytest_swapkl.errors"}
    assert "pytest_swapkl.engine.adapters" in GRAPH["pytest_swapkl.inputs.loading"]


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("lower, forbidden", [
    ("engine", ("plugin", "commands", "analysis", "audit", "inputs", "report")),
    ("inputs", ("plugin", "commands", "analysis", "audit", "report")),
    ("analysis", ("plugin", "commands", "audit", "inputs", "report")),
    ("audit", ("plugin", "commands", "report")),
    ("report", ("plugin", "commands")),
    ("plugin", ("commands",)),
])
def test_layers_only_import_downwards(lower, forbidden):
    prefix = f"pytest_swapkl.{lower}"
    bad = sorted((name, target) for name, targets in GRAPH.items() if name.startswith(prefix)
                 for target in targets if any(target.startswith(f"pytest_swapkl.{f}") for f in forbidden))
    assert not bad, f"{lower}/ imports a higher layer: {bad}"


def test_loading_the_plugin_imports_no_torch_or_numpy():
    code = ("import sys, pytest_swapkl.plugin.hooks; "
            "print(sorted(m for m in ('torch', 'numpy', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_paths_keep_working():
    code = ("from pytest_swapkl import engine, probes; from importlib.metadata import entry_points; "
            "import pytest_swapkl.engine.adapters as a; "
            "assert callable(engine.measure) and probes.parse_pairs('adjacent', 3) == [(0, 1), (1, 2)]; "
            "eps = {e.name: e.value for e in entry_points(group='pytest11')}; "
            "scripts = {e.name: e.value for e in entry_points(group='console_scripts')}; "
            "print(eps['swapkl'], scripts['swapkl'], a.ENTRY_POINT_GROUP)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["pytest_swapkl.plugin.hooks", "pytest_swapkl.commands.cli:main", "pytest_swapkl.adapters"]
    cli = subprocess.run([sys.executable, "-m", "pytest_swapkl", "--version"], capture_output=True, text=True)
    assert cli.returncode == 0 and "pytest-swapkl" in cli.stdout
