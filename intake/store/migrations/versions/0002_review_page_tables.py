"""The review page's tables: users, sessions, audit_log, corrections, reviews.

Revision ID: 0002
Revises: 0001

New tables only: the rows already stored are unchanged. A table that is already there is left
alone (a store that code from before this revision completed on its own, as 0001 does for
stores from before migrations), so the upgrade never fails half-way on "already exists".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INSTANT = sa.String(32)  # schema.UtcDateTime: aware UTC instants as ISO 8601 text
NAME = sa.String(64)

TABLES: dict[str, tuple[list[sa.Column[object]], list[tuple[str, str]]]] = {
    # table: (columns, indexes as (index name, column))
    "audit_log": (
        [
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("at", INSTANT, nullable=False),
            sa.Column("user_name", NAME, nullable=False),
            sa.Column("action", sa.String(32), nullable=False),
            sa.Column("reference", sa.String(16), nullable=False),
        ],
        [("ix_audit_log_at", "at")],
    ),
    "corrections": (
        [
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("story_id", sa.String(), nullable=False),
            sa.Column("user_name", NAME, nullable=False),
            sa.Column("at", INSTANT, nullable=False),
            sa.Column("field", sa.String(16), nullable=False),
            sa.Column("before", sa.JSON(), nullable=False),
            sa.Column("after", sa.JSON(), nullable=False),
        ],
        [("ix_corrections_story_id", "story_id")],
    ),
    "reviews": (
        [
            sa.Column("story_id", sa.String(), primary_key=True),
            sa.Column("user_name", NAME, nullable=False),
            sa.Column("at", INSTANT, nullable=False),
        ],
        [],
    ),
    "sessions": (
        [
            sa.Column("id_hash", sa.String(64), primary_key=True),
            sa.Column("user_name", NAME, nullable=False),
            sa.Column("csrf_token", sa.String(64), nullable=False),
            sa.Column("created_at", INSTANT, nullable=False),
            sa.Column("seen_at", INSTANT, nullable=False),
        ],
        [("ix_sessions_user_name", "user_name")],
    ),
    "users": (
        [
            sa.Column("name", NAME, primary_key=True),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("password_hash", sa.Text(), nullable=False),
            sa.Column("created_at", INSTANT, nullable=False),
        ],
        [],
    ),
}


def upgrade() -> None:
    """Create the review page's tables and their indexes, where missing."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, (columns, indexes) in TABLES.items():
        if name in existing:
            continue
        op.create_table(name, *columns)
        for index, column in indexes:
            op.create_index(index, name, [column])


def downgrade() -> None:
    """Drop the review page's tables."""
    for name in reversed(TABLES):
        op.drop_table(name)
