"""Store dialect: everything SQLite-specific lives in intake/store/dialect.py alone."""

from __future__ import annotations

import ast
from pathlib import Path

STORE = Path(__file__).resolve().parent.parent / "intake" / "store"
SQLITE_ONLY = ("sqlalchemy.dialects.sqlite", "sqlite3")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_dialect_is_the_only_store_module_with_sqlite_imports() -> None:
    users = {path.relative_to(STORE).as_posix() for path in STORE.rglob("*.py")
             if _imports(path) & set(SQLITE_ONLY)}  # fmt: skip
    assert users == {"dialect.py"}


def test_dialect_is_the_only_store_module_with_pragmas() -> None:
    users = {path.relative_to(STORE).as_posix() for path in STORE.rglob("*.py")
             if "PRAGMA" in path.read_text(encoding="utf-8")}  # fmt: skip
    assert users == {"dialect.py"}
