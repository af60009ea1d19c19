"""Store stage, backup: a consistent copy of the SQLite store while it is in use. Stdlib only.

SQLite's online backup API copies the database page by page inside a read transaction, WAL
included, so a worker may go on writing meanwhile. Restoring is copying the file back while
nothing runs (README "Backup and upgrade"). A PostgreSQL store is backed up with its own tools.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from intake.errors import StoreError, UsageError


def backup(url: str, target: Path) -> int:
    """Copy the SQLite store at ``url`` to ``target``, a new file readable by its owner alone;
    returns its size in bytes. UsageError when ``target`` exists (a backup never overwrites)
    or the store is not a SQLite file; StoreError when SQLite fails."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        raise UsageError("backup: only a SQLite store file is copied this way")
    source = Path(url.removeprefix("sqlite:///"))
    if not source.is_file():
        raise UsageError(f"backup: no store at {source}")
    try:  # created here, owner-only, and never through a symlink someone planted
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    except FileExistsError as err:
        raise UsageError(f"backup: {target} exists; name a new file") from err
    except OSError as err:
        raise UsageError(f"backup: cannot create {target}: {err.strerror}") from err
    try:
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    except sqlite3.Error as err:
        target.unlink(missing_ok=True)
        raise StoreError(f"store: backup failed: {type(err).__name__}: {err}") from err
    return target.stat().st_size
