"""Where a store URL points: a relative SQLite file is anchored to a folder (the config file's),
so the store is the same whatever the current directory. Other databases' URLs name a server
and are left as they are. (SQLite-specific: belongs with the dialect module.)"""

from __future__ import annotations

from pathlib import Path

SQLITE_FILE = "sqlite:///"  # sqlite:///relative/path, sqlite:////absolute/path
MEMORY = "sqlite:///:memory:"


def anchored_url(url: str, base: Path) -> str:
    """``url`` with a relative SQLite file path made absolute from ``base``."""
    if not url.startswith(SQLITE_FILE) or url == MEMORY:
        return url
    path = Path(url.removeprefix(SQLITE_FILE))
    return url if path.is_absolute() else SQLITE_FILE + str(base / path)
