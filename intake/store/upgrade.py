"""Store stage, schema upgrades: the Alembic migrations in ``migrations/``, run by the store.

``Store`` calls ``upgrade`` when it opens, so the migrations are the only way the schema
changes. Already at head: one read, nothing else. Otherwise, holding the database's write
lock (two processes starting at once take turns), an existing SQLite file is first copied
beside itself (``<database>.from-<revision>.bak``, owner-only, never overwriting one), then
upgraded to head. A store from before migrations (tables, no ``alembic_version``) is
"unversioned": revision 0001 completes its tables to the round-2 shape and stamps it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, String, column, inspect, select, table

from intake.errors import StoreError, UsageError
from intake.store import dialect

log = logging.getLogger(__name__)
# Alembic says "Context impl SQLiteImpl" and the like at INFO on every upgrade, on stderr at
# the default level, where a command promises one line; what changed is logged below.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).with_name("migrations")
UNVERSIONED = "unversioned"  # tables made before migrations existed
EMPTY = "empty"  # no tables yet
VERSION_TABLE = "alembic_version"  # Alembic's default name


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What opening the store did to its schema: the revision found (or ``unversioned``,
    ``empty``), the revision now, and the backup written first (None: none was needed)."""

    before: str
    after: str
    backup: Path | None = None

    def describe(self) -> str:
        """``up to date (0001)`` or ``from unversioned to 0001``."""
        if self.before == self.after:
            return f"up to date ({self.after})"
        return f"from {self.before} to {self.after}"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built here (no alembic.ini), for ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The newest revision shipped (the revision files do not change while we run)."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if found is None:
        raise StoreError("store: no migrations shipped")
    return found


@functools.cache
def known() -> frozenset[str]:
    """Every revision shipped, and the two states before the first."""
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset({EMPTY, UNVERSIONED, *(r.revision for r in script.walk_revisions())})


def revision(conn: Connection) -> str:
    """The store's revision: its ``alembic_version``, else ``unversioned`` or ``empty``."""
    # Read directly, not through Alembic's MigrationContext: every Store opening asks, and
    # that logs two INFO lines each time.
    present = inspect(conn).get_table_names()
    if VERSION_TABLE in present:
        query = select(column("version_num", String)).select_from(table(VERSION_TABLE))
        found = conn.execute(query).scalar()
        if found is not None:
            return str(found)
    return UNVERSIONED if present else EMPTY


def upgrade(engine: Engine, url: str) -> Upgrade:
    """Bring the store at ``url`` to head (a backup of a SQLite file first); says what it did."""
    with engine.connect() as conn:
        if revision(conn) == head():
            return Upgrade(head(), head())
    with dialect.write_locked(engine) as conn:
        before = revision(conn)  # again: another process may have upgraded meanwhile
        if before == head():
            return Upgrade(before, before)
        if before not in known():  # written by a newer version: nothing here can read it
            raise StoreError(
                f"store: schema revision {before} is newer than this version's "
                f"({head()}): install the newer version, or restore a backup"
            )
        saved = None if before == EMPTY else _backup(url, before)
        command.upgrade(alembic_config(conn), "head")
    if before != EMPTY:  # a new store is simply made; an upgrade of one in use is news
        log.info("store: schema upgraded from %s to %s; backup %s", before, head(), saved)
    return Upgrade(before, head(), saved)


def _backup(url: str, before: str) -> Path | None:
    path = dialect.database_path(url)
    if path is None:  # in memory, or a server's database: its own tools back it up
        return None
    for n in count():
        suffix = f".from-{before}.bak" if n == 0 else f".from-{before}.{n}.bak"
        target = path.with_name(path.name + suffix)
        if target.exists() or target.is_symlink():
            continue
        try:
            dialect.backup(url, target)
        except UsageError as err:
            if target.exists():  # another process took this name a moment ago
                continue
            # No backup, no upgrade: the store stays as it is, and says why.
            raise StoreError(f"store: cannot back up before upgrading: {err}") from err
        return target
    raise AssertionError("unreachable")  # count() never ends
