"""The agencies a story names, stored with its triage.

Revision ID: 0003
Revises: 0002

One nullable JSON column: stories tagged before it read as naming no agency until they are
tagged again (``requeue`` of a quarantined message, or a retrain that re-tags).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``triage.agencies`` where missing."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("triage")}
    if "agencies" not in columns:
        with op.batch_alter_table("triage") as batch:
            batch.add_column(sa.Column("agencies", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop ``triage.agencies``."""
    with op.batch_alter_table("triage") as batch:
        batch.drop_column("agencies")
