"""Alembic's environment for the store's migrations.

Run two ways. ``intake.store.upgrade`` runs it with the Store's own connection (in
``config.attributes["connection"]``, holding the write lock): no alembic.ini at run time. The
``alembic`` command (``-c intake/store/migrations/alembic.ini``, README "Backup and upgrade")
runs it to write a revision, against the store ``STORY_STORE_URL`` names.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from intake.store import dialect, schema


def run(connection: Connection) -> None:
    """Run the migrations on ``connection``; schema.metadata is what autogenerate compares."""
    # Batch mode: SQLite alters most things by copying the table, which batch does for us.
    context.configure(connection=connection, target_metadata=schema.metadata,
                      render_as_batch=True, compare_type=True)  # fmt: skip
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("the store's migrations run online only (no --sql)")
if given is not None:
    run(given)
else:
    url = os.environ.get("STORY_STORE_URL") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set STORY_STORE_URL to the store to compare with (sqlite:///...)")
    engine = dialect.open_engine(url)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()
