"""The import graph of the ``wsteer`` namespace: imports point down only (core <- stages <- pipeline/CLI), and
there are no cycles. Every ``import`` counts, including those inside functions: a lazy upward import is still
an upward dependency."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

STAGES = ("pairs", "train", "adapters", "eval")
TOP = ("cli", "pipeline", "__main__")  # the wsteer command, the pipeline, `python -m wsteer`
LAYER_NAMES = {0: "core", 1: "stage", 2: "pipeline/CLI"}


def package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def module_files() -> dict[str, Path]:
    """Every module of the namespace -> its file (the stage folders are found where the install maps them)."""
    roots = {"wsteer": package_folder("wsteer")} | {f"wsteer.{s}": package_folder(f"wsteer.{s}") for s in STAGES}
    modules: dict[str, Path] = {}
    for package, folder in roots.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            modules.setdefault(name, path)
    return modules


def layer(module: str) -> int:
    """0 core, 1 stage, 2 pipeline/CLI. A stage's ``__main__`` is an entry point (it runs the ``wsteer`` command)."""
    parts = module.split(".")
    if len(parts) == 1:
        return 2  # the package root re-exports the public API (lazily), so it sits on top
    if parts[1] in TOP or parts[-1] == "__main__":
        return 2
    return 1 if parts[1] in STAGES else 0


def imported_modules(path: Path, module: str, known: set[str]) -> set[str]:
    """The namespace modules that ``path`` imports (absolute or relative, at any depth of the file)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{alias.name}" for alias in node.names]  # an alias that is no module walks up to base
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {module: imported_modules(path, module, known) for module, path in files.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYER_NAMES[layer(module)]}) imports {target} ({LAYER_NAMES[layer(target)]})"
        for module, targets in graph.items()
        for target in targets
        if layer(target) > layer(module)
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None. A package's ``__init__`` importing its submodules, and
    a submodule importing its parent package, is how Python packages work, so parent links are left out."""

    def edges(module: str) -> set[str]:
        return {t for t in graph.get(module, ()) if not t.startswith(module + ".") and not module.startswith(t + ".")}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges(module)):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_stage_folders_are_mapped_into_the_namespace(tmp_path):
    files = module_files()
    for stage in STAGES:
        assert f"wsteer.{stage}" in files and f"wsteer.{stage}.cli" in files
    # Outside the checkout (the current directory would put the folders on sys.path) only wsteer.* imports.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = (
        "import importlib.util as u; print([u.find_spec(m) is None for m in ('train', 'eval', 'adapters', 'pairs')])"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "[True, True, True, True]", result.stderr
    result = subprocess.run([sys.executable, "-c", "import wsteer.train.run, wsteer.eval.sweep"], cwd=tmp_path, env=env)
    assert result.returncode == 0


def test_imports_point_down_only():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_the_checks_catch_a_planted_upward_import_and_cycle():
    graph = import_graph()
    planted = {**graph, "wsteer.io": graph["wsteer.io"] | {"wsteer.eval.sweep"}}
    assert upward_imports(planted) == ["wsteer.io (core) imports wsteer.eval.sweep (stage)"]
    cyclic = {**graph, "wsteer.config": graph["wsteer.config"] | {"wsteer.io"}}
    assert find_cycle(cyclic) is not None


@pytest.mark.parametrize("module", ["wsteer.io", "wsteer.config", "wsteer.scoring"])
def test_the_core_modules_import_no_stage(module):
    graph = import_graph()
    assert all(layer(target) == 0 for target in graph[module]), graph[module]
