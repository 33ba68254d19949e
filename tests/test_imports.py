"""The import graph of gdnet: every module's imports (at the top and inside functions, where a
cycle hides best) and no cycle among them, so each layer of DESIGN.md depends only on those
below it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# where each package's files live: gdnet.backends is installed from backends/
SOURCES = {"gdnet": ROOT / "gdnet", "gdnet.backends": ROOT / "backends"}


def _modules() -> dict[str, Path]:
    """Every module of gdnet by dotted name (a package by its own name) -> its file."""
    found = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _base(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The module a ``from`` import names, relative imports resolved against ``module``."""
    if not level:
        return name or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([name] if name else []))


def _imports(module: str, source: str, is_package: bool) -> list[tuple[str, str | None]]:
    """(module, name or None) for every import statement anywhere in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, is_package, node.level, node.module)
            found += [(base, alias.name) for alias in node.names]
    return found


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the modules it imports, from {module: (source, is_package)}. ``from P import
    name`` counts as importing the module P.name where there is one, else the module that P
    itself takes ``name`` from (a name a package re-exports depends on where it is defined),
    else P."""
    imports = {module: _imports(module, source, package) for module, (source, package) in sources.items()}

    def defining(module: str, name: str, seen: frozenset = frozenset()) -> str:
        if f"{module}.{name}" in sources:
            return f"{module}.{name}"
        if module in seen or module not in sources:
            return module
        for origin, imported in imports[module]:
            if imported == name and origin in sources and origin != module:
                return defining(origin, name, seen | {module})
        return module

    graph: dict[str, set[str]] = {}
    for module, found in imports.items():
        targets = {defining(origin, name) if name else origin for origin, name in found}
        graph[module] = {t for t in targets if t in sources and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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
    return sorted(found)


def test_no_module_of_gdnet_imports_itself_back():
    sources = {name: (path.read_text(), path.name == "__init__.py") for name, path in _modules().items()}
    assert len(sources) > 50
    graph = import_graph(sources)
    assert "gdnet.ops" in graph["gdnet.nn.functional"]  # the walk sees imports at all
    assert cycles(graph) == []


def test_the_walk_sees_cycles_through_functions_and_re_exports():
    sources = {
        "p": ("from .a import thing\nfrom . import b\n", True),
        "p.a": ("def thing():\n    from .b import other\n", False),  # an import inside a function
        "p.b": ("from . import thing\n", False),  # a name p re-exports from p.a
        "p.c": ("from .a import thing\n", False),
    }
    graph = import_graph(sources)
    assert graph["p.b"] == {"p.a"} and graph["p"] == {"p.a", "p.b"}
    assert cycles(graph) == [["p.a", "p.b"]]
