"""Store stage: everything SQLite-specific, in one module. SQLAlchemy Core and the stdlib.

The file and its owner-only mode, the PRAGMAs every connection gets (WAL, ``secure_delete``),
``INSERT ... ON CONFLICT``, the WAL checkpoint, the hashing key kept beside the database and
the online backup. The other store modules call these functions and never import
``sqlalchemy.dialects.sqlite``, so a second database (PostgreSQL) is one more module like it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from intake.errors import StoreError, UsageError

PREFIX = "sqlite:///"
MEMORY = "sqlite:///:memory:"


def database_path(url: str) -> Path | None:
    """The SQLite file behind ``url`` (None: in memory, or not SQLite)."""
    if not url.startswith(PREFIX) or url == MEMORY:
        return None
    return Path(url.removeprefix(PREFIX))


def open_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file is created owner-only (with its folder) first."""
    path = database_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Owner-only from the first byte; SQLite gives its -wal/-shm files the same mode. Only
        # ever a new file: closing a descriptor of an existing one would drop every POSIX
        # lock this process holds on it (SQLite's, in another thread's Store), and another
        # process could then write, or delete the WAL, under that Store's feet.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _pragmas)
    return engine


def _pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten, not left in free pages: erasure and retention mean gone.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def insert_or_ignore(table: Table) -> Insert:
    """INSERT that skips a row whose key is already there (ON CONFLICT DO NOTHING)."""
    return sqlite_insert(table).on_conflict_do_nothing()


def upsert(
    table: Table, row: Mapping[str, Any], keys: Sequence[str], changes: Mapping[str, Any],
    where: ColumnElement[bool] | None = None,
) -> Insert:  # fmt: skip
    """INSERT ``row``, or where ``keys`` already has one (and ``where`` holds), UPDATE it with
    ``changes``: one statement, so two processes racing cannot both insert."""
    statement = sqlite_insert(table).values(dict(row))
    return statement.on_conflict_do_update(index_elements=list(keys), set_=dict(changes),
                                           where=where)  # fmt: skip


def checkpoint(conn: Connection) -> tuple[int, int, int]:
    """Copy the WAL into the database and truncate it (SQLite; a no-op elsewhere); returns
    SQLite's (busy, log frames, checkpointed frames)."""
    if conn.dialect.name != "sqlite":
        return (0, 0, 0)
    row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return (int(row[0]), int(row[1]), int(row[2]))


def key_beside(url: str) -> bytes:
    """The store's own hashing key: ``<database>.key`` beside a SQLite file, created once with
    32 random bytes, owner-only. (An in-memory store gets a key for its lifetime.)"""
    database = database_path(url)
    if database is None:
        return secrets.token_bytes(32)
    path = database.with_name(database.name + ".key")
    if not path.exists():
        # Written whole under a private name, then linked into place: a process starting at the
        # same moment sees either no key or the whole key, never an empty file. The first
        # link wins; every process then reads the same key.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_hex(32).encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes()


def backup(url: str, target: Path) -> int:
    """Copy the SQLite store at ``url`` to ``target``, a new file readable by its owner alone,
    with SQLite's online backup API (page by page in a read transaction, WAL included, so a
    worker may go on writing meanwhile); returns its size in bytes. UsageError when
    ``target`` exists (a backup never overwrites) or the store is not a SQLite file;
    StoreError when SQLite fails."""
    source = database_path(url)
    if source is None:
        raise UsageError("backup: only a SQLite store file is copied this way")
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


UPGRADE_WAIT_MS = 120_000  # how long an upgrade waits for another's to finish


@contextmanager
def write_locked(engine: Engine) -> Iterator[Connection]:
    """A connection holding SQLite's write lock (BEGIN IMMEDIATE) until the block ends, then
    committed (rolled back on an error): two processes upgrading one store take turns, the
    second waiting up to busy_timeout. The driver is put in autocommit mode so that it starts
    and ends no transaction of its own around ours (DDL included)."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        # Several processes opening a fresh store queue here, each running every revision in
        # turn: longer than an ordinary write's wait, and it happens once per upgrade.
        conn.exec_driver_sql(f"PRAGMA busy_timeout={UPGRADE_WAIT_MS}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")
