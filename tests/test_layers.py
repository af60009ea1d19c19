"""The layer rules, read from the code with ``ast`` so the tree stays the stage diagram.

``story_intake`` (the application) -> ``triage`` (judgement and mail out) -> ``intake`` (mail
in, records, the store): ``intake`` imports neither of the others, ``triage`` never imports the
application, ``config/`` holds data only, and no module imports itself through a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("story_intake", "triage", "intake")
# What each layer may import from our own packages (its own package included).
ALLOWED = {
    "intake": {"intake"},
    "triage": {"triage", "intake"},
    "story_intake": {"story_intake", "triage", "intake"},
}


def module_files() -> dict[str, Path]:
    """Every module of the three packages, by dotted name (a package by its ``__init__``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = module_files()


def imports_of(path: Path) -> Iterator[str]:
    """Our own modules that ``path`` imports (at the top, in functions or for type checking):
    ``from a.b import c`` names ``a.b.c`` when that is a module, else ``a.b``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES
                     else node.module for a in node.names]  # fmt: skip
        else:
            continue
        yield from (name for name in names if name.split(".")[0] in PACKAGES)


GRAPH = {name: set(imports_of(path)) - {name} for name, path in MODULES.items()}


def test_layers_modules_are_found() -> None:
    assert {"story_intake.cli", "triage.tag.tagger", "intake.store.engine"} <= set(MODULES)


@pytest.mark.parametrize("layer", PACKAGES)
def test_layers_imports_point_one_way(layer: str) -> None:
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in GRAPH.items() if module.split(".")[0] == layer
                   for target in targets if target.split(".")[0] not in ALLOWED[layer])  # fmt: skip
    assert wrong == []


def test_layers_no_import_cycles() -> None:
    state: dict[str, str] = {}  # "open" while on the current path, "done" once finished
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_layers_config_holds_data_only() -> None:
    assert sorted(p.name for p in (ROOT / "config").iterdir()) == ["pipeline.toml", "themes.toml"]


def test_layers_top_level_is_the_three_packages_and_the_entry() -> None:
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert top == ["run_pipeline.py"]
    entry = imports_of(ROOT / "run_pipeline.py")
    assert set(entry) == {"story_intake.cli"}  # thin: the command line is story_intake's
