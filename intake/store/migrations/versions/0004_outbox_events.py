"""The reply's history: ``outbox_events``, one row per outbox state change.

Revision ID: 0004
Revises: 0003

A new table only: replies decided before it show their current state alone (the outbox row),
their earlier states having never been recorded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INSTANT = sa.String(32)  # schema.UtcDateTime: aware UTC instants as ISO 8601 text


def upgrade() -> None:
    """Create ``outbox_events`` and its indexes, where missing."""
    if "outbox_events" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("story_id", sa.String(), nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(32), nullable=False),
        sa.Column("who", sa.String(64), nullable=False),
    )
    op.create_index("ix_outbox_events_story_id", "outbox_events", ["story_id"])
    op.create_index("ix_outbox_events_at", "outbox_events", ["at"])


def downgrade() -> None:
    """Drop ``outbox_events``."""
    op.drop_table("outbox_events")
