"""The import graph of the installed ``reusegate`` package has no cycles, and its core never imports a host adapter.

The graph is read from the source with :mod:`ast` (nothing is imported), over exactly the files that install:
the packages of ``setup.cfg`` (``reusegate.*`` from ``reusegate/``, ``reusegate.adapters.*`` from ``adapters/``,
``reusegate.integrations.*`` from ``integrations/``; ``integrations/plugins/`` holds separate distributions and is
not part of it). Every import statement counts, wherever it is: at module level, inside a function, or under
``if TYPE_CHECKING:`` (a type-only import is still a dependency a reader has to follow, and the first thing to
turn into a run-time cycle). Edges:

* ``import a.b.c`` -> ``a.b.c``;
* ``from a.b import c`` -> ``a.b.c`` when ``c`` is a submodule (or subpackage) of ``a.b``, else ``a.b``
  (a name defined in its ``__init__``); relative imports resolve against the importing module's package;
* importing a package is importing its ``__init__.py``;
* the parent packages Python initialises on the way to a submodule are not edges: a package whose
  ``__init__`` imports its own submodules, which import each other, is not a cycle.
"""
from __future__ import annotations

import ast
import configparser
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT = "reusegate"
CORE_DIR = REPO / "reusegate"
ADAPTERS = "reusegate.adapters"
MAX_CYCLES = 200
"""Listed cycles, at most (the elementary cycles of one tangle can be many)."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str
    """``path:line`` of the import statement."""


def installed_modules() -> Dict[str, Path]:
    """``{module name: file}`` for every ``.py`` of every package ``setup.cfg`` installs."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    package_dir = {}
    for line in cfg["options"].get("package_dir", "").strip().splitlines():
        name, _, folder = (part.strip() for part in line.partition("="))
        package_dir[name] = folder
    packages = [p.strip() for p in cfg["options"]["packages"].strip().splitlines() if p.strip()]

    def folder(package: str) -> Path:
        parts = package.split(".")
        for i in range(len(parts), 0, -1):  # the longest package_dir prefix wins, as in setuptools
            prefix = ".".join(parts[:i])
            if prefix in package_dir:
                return REPO.joinpath(package_dir[prefix], *parts[i:])
        return REPO.joinpath(package_dir.get("", ""), *parts)

    modules: Dict[str, Path] = {}
    for package in packages:
        base = folder(package)
        assert (base / "__init__.py").is_file(), f"setup.cfg installs {package} from {base}, which has no __init__.py"
        for path in sorted(base.glob("*.py")):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


def _imports(tree: ast.AST) -> Iterator[ast.stmt]:
    """Every import statement, at any depth (functions, classes, ``if TYPE_CHECKING:``, ``try``)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def import_edges(modules: Dict[str, Path], root: Path = REPO) -> List[Edge]:
    """The edges between ``modules`` (imports of anything else are left out); ``where`` is relative to ``root``."""
    edges = []
    for name, path in modules.items():
        package = name if path.stem == "__init__" else name.rpartition(".")[0]
        where = lambda node: f"{path.relative_to(root)}:{node.lineno}"  # noqa: E731
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    parts = package.split(".")
                    assert node.level - 1 < len(parts), f"{where(node)}: relative import beyond the top package"
                    base = ".".join(parts[: len(parts) - (node.level - 1)])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in dict.fromkeys(targets):
                if target in modules and target != name:
                    edges.append(Edge(name, target, where(node)))
    return edges


def _strongly_connected(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Tarjan's components with more than one module (iterative: no recursion limit)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def elementary_cycles(graph: Dict[str, Set[str]], limit: int = MAX_CYCLES) -> List[List[str]]:
    """Every elementary cycle (each listed once, from its smallest module), up to ``limit``."""
    cycles: List[List[str]] = []
    for component in _strongly_connected(graph):
        members = set(component)
        for start in component:  # cycles through ``start`` and modules after it only: each cycle once
            allowed = {m for m in members if m >= start}
            path = [start]
            work = [iter(sorted(graph[start] & allowed))]
            while work and len(cycles) < limit:
                nxt = next(work[-1], None)
                if nxt is None:
                    work.pop()
                    path.pop()
                elif nxt == start:
                    cycles.append(path + [start])
                elif nxt not in path:
                    path.append(nxt)
                    work.append(iter(sorted(graph[nxt] & allowed)))
    return cycles


def _graph(edges: List[Edge], modules: Dict[str, Path]) -> Tuple[Dict[str, Set[str]], Dict[Tuple[str, str], str]]:
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    where: Dict[Tuple[str, str], str] = {}
    for e in edges:
        graph[e.source].add(e.target)
        where.setdefault((e.source, e.target), e.where)
    return graph, where


def describe(cycles: List[List[str]], where: Dict[Tuple[str, str], str]) -> str:
    lines = []
    for cycle in cycles:
        lines.append(" -> ".join(cycle))
        lines += [f"    {a} -> {b}  ({where[a, b]})" for a, b in zip(cycle, cycle[1:])]
    return "\n".join(lines)


MODULES = installed_modules()
EDGES = import_edges(MODULES)


def test_the_graph_covers_the_installed_packages():
    assert {"reusegate.registry", "reusegate.plugins.manager", "reusegate.core.gate", "reusegate.adapters.frtm.plugin",
            "reusegate.integrations.mmengine.model"} <= set(MODULES)
    assert not any("plugins.efficientnet_lite0" in m for m in MODULES)  # a separate distribution
    graph, _ = _graph(EDGES, MODULES)
    # a submodule named in `from pkg import name` is an edge to that submodule; a function-local import counts
    assert "reusegate.plugins.hookspecs" in graph["reusegate.plugins.manager"]
    assert "reusegate.integrations.mmengine.model" in graph["reusegate.commands.train"]


def test_the_cycle_finder_finds_type_only_and_function_local_cycles(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import A\n")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\nA = 1\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "c.py").write_text("from pkg import a\n")  # into the package's submodule: no cycle with __init__
    modules = {"pkg": pkg / "__init__.py", **{f"pkg.{n}": pkg / f"{n}.py" for n in "abc"}}
    graph, _ = _graph(import_edges(modules, root=tmp_path), modules)
    assert elementary_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_no_import_cycles():
    graph, where = _graph(EDGES, MODULES)
    cycles = elementary_cycles(graph)
    assert not cycles, f"{len(cycles)} import cycle(s) among the installed modules:\n{describe(cycles, where)}"


def test_no_import_cycles_within_reusegate_core_package():
    """The stricter half on its own: the modules under ``reusegate/`` (not the adapters or integrations)."""
    core = {m: p for m, p in MODULES.items() if CORE_DIR in p.parents}
    graph, where = _graph([e for e in EDGES if e.source in core and e.target in core], core)
    cycles = elementary_cycles(graph)
    assert not cycles, f"{len(cycles)} import cycle(s) under reusegate/:\n{describe(cycles, where)}"


def _reachable(graph: Dict[str, Set[str]], start: str) -> Dict[str, str]:
    """``{module: the module it was first reached from}`` for everything ``start`` imports, directly or not."""
    parent: Dict[str, str] = {}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph[node]):
            if nxt not in parent and nxt != start:
                parent[nxt] = node
                todo.append(nxt)
    return parent


def _chain(parent: Dict[str, str], start: str, end: str) -> str:
    chain = [end]
    while chain[-1] != start:
        chain.append(parent[chain[-1]])
    return " -> ".join(reversed(chain))


def test_the_plugin_manager_does_not_import_the_registry():
    """The registry reads the manager (to copy plugin names in); the manager never looks names up."""
    graph, _ = _graph(EDGES, MODULES)
    reached = _reachable(graph, "reusegate.plugins.manager")
    assert "reusegate.registry" not in reached, _chain(reached, "reusegate.plugins.manager", "reusegate.registry")
    assert "reusegate.plugins.manager" in graph["reusegate.registry"]


def test_reusegate_never_imports_an_adapter():
    """The core stays host-agnostic: no module under ``reusegate/`` imports a host adapter, directly or through
    another module (the integrations included). The built-in hosts arrive as plugins, through the entry points of
    ``setup.cfg``, which name them as strings."""
    graph, where = _graph(EDGES, MODULES)
    offending = []
    for module in sorted(m for m, path in MODULES.items() if CORE_DIR in path.parents):
        reached = _reachable(graph, module)
        adapters = sorted(t for t in reached if t == ADAPTERS or t.startswith(ADAPTERS + "."))
        if adapters:  # one chain per module is enough to find the edge to cut
            offending.append(f"{_chain(reached, module, adapters[0])}  ({where[reached[adapters[0]], adapters[0]]})")
    assert not offending, "reusegate/ imports host adapters:\n" + "\n".join(offending)


if __name__ == "__main__":  # pragma: no cover - `python tests/test_imports.py` prints the cycles
    g, w = _graph(EDGES, MODULES)
    print(describe(elementary_cycles(g), w) or "no cycles")
    pytest.main([__file__, "-q"])
