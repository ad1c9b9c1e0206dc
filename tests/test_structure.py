"""The package's shape, checked from its source: imports point down (no cycles; models import
nothing above them), and functions and modules stay small enough to read in one sitting."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nextloc"
# What a model may build on; everything else in nextloc (training, the registry, results,
# runner, report, CLI) is above the models and may import them, never the other way round.
BELOW_MODELS = {"nextloc.errors", "nextloc.paths", "nextloc.device", "nextloc.data",
                "nextloc.metrics", "nextloc.batching"}
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 50, 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(tree: ast.Module, known: set[str]) -> set[str]:
    """The nextloc modules a module imports anywhere (late imports inside functions too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    trees = sources()
    return {name: imported_modules(tree, set(trees)) - {name} for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path + [node, target]
            if target not in state and (cycle := visit(target, path + [node])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_models_import_nothing_above_them():
    upward = {module: sorted(target for target in targets
                             if not target.startswith("nextloc.models")
                             and target not in BELOW_MODELS)
              for module, targets in import_graph().items() if module.startswith("nextloc.models")}
    assert {module: targets for module, targets in upward.items() if targets} == {}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_functions_and_modules_stay_small(path):
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
