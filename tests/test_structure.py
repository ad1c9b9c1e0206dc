"""The package's shape, checked from its source: subpackages in one order, each importing only
those before it (no cycles), at most a handful of modules left at the top, and functions and
modules small enough to read in one sitting."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nextloc"
# The subpackages from the bottom up; a package may import its own modules and those of the
# packages before it. models and preprocess share a rank: neither may import the other.
LAYERS = [{"core"}, {"data"}, {"models", "preprocess"}, {"training"}, {"experiments"},
          {"search"}, {"report"}]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}
TOP = len(LAYERS)  # the CLI and the benchmarks, directly under nextloc/
MAX_TOP_MODULES = 6
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


def package_of(module: str) -> str | None:
    """The subpackage a module belongs to; None for nextloc itself and its top-level modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def rank(module: str) -> int:
    package = package_of(module)
    return TOP if package is None else RANK[package]


def test_every_subpackage_has_a_rank():
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages == set(RANK)


def upward_imports(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Per module, the imports of another package that is not before it in LAYERS."""
    upward = {module: sorted(target for target in targets
                             if target != "nextloc" and package_of(target) != package_of(module)
                             and rank(target) >= rank(module))
              for module, targets in graph.items()}
    return {module: targets for module, targets in upward.items() if targets}


def test_packages_import_only_packages_before_them():
    assert upward_imports(import_graph()) == {}


def test_the_order_check_finds_a_wrong_import():
    assert upward_imports({"nextloc.data.split": {"nextloc.training.loop"}}) != {}
    assert upward_imports({"nextloc.models.pointer": {"nextloc.preprocess.steps"}}) != {}
    assert upward_imports({"nextloc.report.road": {"nextloc.cli"}}) != {}
    assert upward_imports({"nextloc.cli": {"nextloc.report.road", "nextloc.cli_args"},
                           "nextloc.report.road": {"nextloc.report.tables", "nextloc.core"}}) == {}


def test_few_modules_at_the_top():
    assert len(list(PACKAGE.glob("*.py"))) <= MAX_TOP_MODULES


def test_reading_the_registry_does_not_import_torch():
    """The registry and the training settings it checks are read without loading torch (seconds
    saved by every command and notebook that only looks at experiments)."""
    code = ("import sys, nextloc.experiments, nextloc.experiments.registry as registry; "
            "registry.load_registry(); "
            "print(sorted(m for m in sys.modules if m.startswith('torch')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_and_modules_stay_small(path):
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_project_paths_are_read_from_core_paths_not_copied():
    # A copy made by `from nextloc.core.paths import RESULTS_DIR` keeps the old folder when a
    # test points the project elsewhere; reading `paths.RESULTS_DIR` at call time does not.
    copies = [f"{module}: {alias.name}" for module, tree in sources().items()
              for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module == "nextloc.core.paths"
              for alias in node.names if alias.name.isupper()]
    assert copies == []
