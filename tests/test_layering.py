"""The package's layering, read from the source with :mod:`ast` (nothing is imported).

A *unit* is a subpackage of ``speechsep`` (``training``, ``data``...) or one of its top-level
modules (``cli``, ``config``...). Every import counts, at module level or inside a function:
the units must form a graph without a cycle, and nothing in the package imports the lab
(``benchmarks``, the scripts, ``tools``, ``Pictures``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "speechsep"
LAB = ("benchmarks", "tools", "Pictures", "conftest")


def unit_of(module: str) -> str | None:
    """The unit of a dotted module name inside ``speechsep`` (``speechsep.training.runner`` -> ``training``)."""
    parts = module.split(".")
    if parts[0] != "speechsep" or len(parts) < 2:
        return None
    return parts[1]


def imported_modules(source: str, package: list[str]) -> list[str]:
    """Every module that ``source`` (a file of the dotted ``package``) imports, absolute and dotted, at any
    depth (function bodies too); ``from speechsep import x`` gives ``speechsep.x``."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..data import y
                anchor = package[:len(package) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names += [f"{base}.{alias.name}" for alias in node.names] if base == "speechsep" else [base]
    return names


def file_imports(path: Path) -> list[str]:
    """:func:`imported_modules` of a file of the package."""
    return imported_modules(path.read_text(), list(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1]))


def unit_graph() -> dict[str, set[str]]:
    """Unit -> the other units its files import (the package's ``__init__`` and ``__main__`` are units too)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        unit = relative.parts[0]
        edges = graph.setdefault(unit, set())
        for module in file_imports(path):
            target = unit_of(module)
            if target and target != unit and ((PACKAGE / f"{target}.py").exists() or (PACKAGE / target).is_dir()):
                edges.add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as the list of its nodes (first repeated at the end), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_the_packages_units():
    graph = unit_graph()
    assert {"cli", "errors", "training", "data", "nn", "separation", "report"} <= set(graph)
    assert "training" not in graph["cli"]  # cli needs only the error class, from speechsep.errors
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_check_reads_function_level_and_relative_imports_and_finds_a_cycle():
    source = ("import numpy\n"
              "def f():\n    from speechsep.training import runner\n    from . import cli\n"
              "    from .. import io\n    import speechsep.data.audio\n")
    assert imported_modules(source, ["speechsep", "report"]) == [
        "numpy", "speechsep.training", "speechsep.report", "speechsep.io", "speechsep.data.audio"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    graph = unit_graph()  # cli importing training again (as it did for PeerLostError) would close a cycle
    graph["cli"].add("training")
    assert find_cycle(graph) is not None


def test_the_package_never_imports_the_lab():
    for path in sorted(PACKAGE.rglob("*.py")):
        lab = [m for m in file_imports(path) if m.split(".")[0] in LAB]
        assert not lab, f"{path.relative_to(REPO_ROOT)} imports {lab}"
