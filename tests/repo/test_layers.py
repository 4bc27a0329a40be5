"""Imports flow one way: no circles, and no module imports from a layer above its own.

Read with `ast` from the source files, so imports inside functions (lazy ones)
count as much as those at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "simclr"

# Lowest first. A module may import from its own unit (the top-level module or
# package under simclr/) and from units of lower layers, never from a higher one
# or from another unit of its own layer.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("runs",),
    ("config",),
    ("losses", "models", "data"),
    ("hub",),
    ("evaluation",),
    ("training",),
    ("jobs",),
    ("console",),
    ("api",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str) -> set[str]:
    """Every simclr module `path` (the module `name`) imports, at the top or in functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("simclr.")}


def unit(module: str) -> str:
    return module.split(".")[1]


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def known(module: str) -> str | None:
    """The longest prefix of `module` that is a module of ours (`a.b.func` -> `a.b`)."""
    parts = module.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) if len(parts) > 1 else None


EDGES = {
    name: {t for m in imported_modules(path, name) if (t := known(m)) and t != name}
    for name, path in MODULES.items()
    if name != "simclr"
}


def test_every_unit_has_a_layer():
    units = {unit(m) for m in MODULES if m != "simclr"}
    assert not units - RANK.keys(), f"give these a layer in LAYERS: {sorted(units - RANK.keys())}"


@pytest.mark.parametrize("module", sorted(EDGES))
def test_no_upward_or_sideways_import(module):
    bad = [
        target
        for target in sorted(EDGES[module])
        if unit(target) != unit(module) and RANK[unit(target)] >= RANK[unit(module)]
    ]
    assert not bad, f"{module} (layer {RANK[unit(module)]}) imports from {bad}"


def test_no_import_cycle():
    # Tarjan's strongly connected components over every edge, inside units too.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in EDGES.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(EDGES):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from simclr.console import app\n    from ..hub import embed\n")
    found = imported_modules(source, "simclr.evaluation.x")
    assert {"simclr.console.app", "simclr.hub.embed"} <= found


def test_no_module_over_400_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these by responsibility: {long}"
