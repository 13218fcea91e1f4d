"""The package's import graph: no cycles, and imports point down (entry points -> experiment ->
learners/rollout -> nn/envs/data -> ground-floor helpers), read from the source, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ptde"

# the lower layers, and what they must never import (the layers above them)
LOWER = ("ptde.envs", "ptde.data", "ptde.loggers", "ptde.nn", "ptde.rollout", "ptde.learners")
UPPER = ("ptde.experiment", "ptde.callbacks", "ptde.tools", "ptde.report", "ptde.train", "ptde.distill")
GROUND = ("ptde.errors", "ptde.registry", "ptde.plugins", "ptde.files", "ptde.nested", "ptde.process_memory")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the ptde modules it imports (a name imported from a package counts as the package,
    unless it is one of its modules)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}

    def owner(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ptde"):
                targets = [owner(f"{node.module}.{a.name}") for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names if a.name.startswith("ptde")]
            graph[mod] |= {t for t in targets if t != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def in_layer(module: str, layers: tuple[str, ...]) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in layers)


def test_the_detector_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_imports_point_down() -> None:
    climbs = [
        f"{mod} -> {target}"
        for mod, targets in import_graph().items()
        if in_layer(mod, LOWER)
        for target in targets
        if in_layer(target, UPPER)
    ]
    assert climbs == []


def test_the_ground_floor_imports_no_other_layer() -> None:
    graph = import_graph()
    for mod in GROUND:
        assert graph[mod] <= set(GROUND), f"{mod} imports {graph[mod] - set(GROUND)}"
