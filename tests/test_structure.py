"""The package's shape: no import cycle, pycparser only in abi/c/, nothing imports cli.

The import graph is read from the source with ``ast`` (every ``import``, also
those inside functions and under ``TYPE_CHECKING``: a lazy import hides a
cycle from Python but not from a reader), so these hold without running
anything.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xenpatch"
# Command modules that still import cli.emit (their owners convert them to Result).


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The xenpatch modules NAME (at PATH) imports, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:  # `from pkg import mod` imports the module pkg.mod
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


@cache
def _graph() -> dict[str, frozenset[str]]:
    modules = _modules()
    return {name: frozenset(_imports(name, path, set(modules))) for name, path in modules.items()}


def import_graph() -> dict[str, set[str]]:
    """Module -> the xenpatch modules it imports (a fresh copy, to change at will)."""
    return {name: set(deps) for name, deps in _graph().items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of GRAPH as a path a -> ... -> a, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "xenpatch.abi.c.pipeline" in graph["xenpatch.abi.api"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = import_graph()
    graph["xenpatch.abi.c.pipeline"] = graph["xenpatch.abi.c.pipeline"] | {"xenpatch.abi.api"}
    cycle = find_cycle(graph)
    assert cycle is not None and "xenpatch.abi.api" in cycle and cycle[0] == cycle[-1]


def test_only_the_c_front_end_imports_pycparser() -> None:
    users = {name for name, path in _modules().items()
             if any(isinstance(n, (ast.Import, ast.ImportFrom))
                    and any((a.name if isinstance(n, ast.Import) else n.module or "")
                            .split(".")[0] == "pycparser" for a in n.names)
                    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))}
    assert users and all(u.startswith("xenpatch.abi.c.") for u in users), sorted(users)
    # and the text agrees (an import written some other way: importlib, __import__)
    spelled = re.compile(r"^\s*(?:import|from)\s+pycparser\b|[(]['\"]pycparser", re.M)
    texts = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if spelled.search(p.read_text(encoding="utf-8"))
             and PACKAGE / "abi" / "c" not in p.parents]
    assert texts == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_imports_cli(name: str) -> None:
    assert "xenpatch.cli" not in import_graph()[name]
