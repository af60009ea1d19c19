"""The round-2 schema: every table as intake/store/schema.py defined it when migrations began.

Revision ID: 0001
Revises: (none)

On an empty database it creates the tables. On a store written before migrations existed
(tables, no alembic_version) it completes them instead: a missing table is created, a missing
column added (nullable, as the versions before it added theirs) and a missing index created,
so a store from round 1 or round 2 reaches this shape and is stamped 0001.

The tables are frozen here, not imported from schema.py: schema.py moves on with later
revisions, and this one must always build the same thing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

INSTANT = sa.String(32)  # schema.UtcDateTime: aware UTC instants as ISO 8601 text
METADATA = sa.MetaData()

stories = sa.Table(
    "stories",
    METADATA,
    sa.Column("story_id", sa.String, primary_key=True),
    sa.Column("mailbox", sa.String, nullable=False),
    sa.Column("uidvalidity", sa.Integer, nullable=False),
    sa.Column("uid", sa.Integer, nullable=False),
    sa.Column("sender_name", sa.Text, nullable=False),
    sa.Column("sender_address", sa.Text, nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("sent_at", INSTANT),
    sa.Column("received_at", INSTANT, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("quoted", sa.Text, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("footer", sa.Text, nullable=False),
    sa.Column("forwarded", sa.Boolean, nullable=False),
    sa.Column("html_only", sa.Boolean, nullable=False),
    sa.Column("attachments", sa.JSON, nullable=False),
    sa.Column("defects", sa.JSON, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stored_at", INSTANT, nullable=False),
    # The digest that claimed it (see intake.digest_claims); NULL until one does.
    sa.Column("digest_id", sa.Integer, index=True),
)

raw_messages = sa.Table(
    "raw_messages",
    METADATA,
    sa.Column("story_id", sa.String, sa.ForeignKey("stories.story_id"), primary_key=True),
    sa.Column("internal_at", INSTANT, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("too_large", sa.Boolean, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

quarantine = sa.Table(
    "quarantine",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # sha256 of the raw bytes: the same bad message seen again is one entry.
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("mailbox", sa.String, nullable=False),
    sa.Column("uidvalidity", sa.Integer, nullable=False),
    sa.Column("uid", sa.Integer, nullable=False),
    sa.Column("internal_at", INSTANT, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("too_large", sa.Boolean, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("quarantined_at", INSTANT, nullable=False),
    sa.Column("digest_id", sa.Integer, index=True),  # the digest whose health counted it
)

checkpoints = sa.Table(
    "checkpoints",
    METADATA,
    sa.Column("mailbox", sa.String, primary_key=True),
    sa.Column("uidvalidity", sa.Integer, primary_key=True),
    sa.Column("last_uid", sa.Integer, nullable=False),
    sa.Column("updated_at", INSTANT, nullable=False),
)

# Messages stored but not yet tagged $Triaged/moved on the server; cleared once marked, so a
# crash between commit and marking is finished by the next run instead of forgotten.
pending_marks = sa.Table(
    "pending_marks",
    METADATA,
    sa.Column("mailbox", sa.String, primary_key=True),
    sa.Column("uidvalidity", sa.Integer, primary_key=True),
    sa.Column("uid", sa.Integer, primary_key=True),
)

runs = sa.Table(
    "runs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("command", sa.String(16), nullable=False),
    sa.Column("started_at", INSTANT, nullable=False),
    sa.Column("finished_at", INSTANT, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("digest_id", sa.Integer, index=True),  # the digest whose health counted it
)

triage = sa.Table(
    "triage",
    METADATA,
    sa.Column("story_id", sa.String, sa.ForeignKey("stories.story_id"), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("themes", sa.JSON, nullable=False),
    sa.Column("scores", sa.JSON, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("review_reasons", sa.JSON, nullable=False),
    sa.Column("tagged_at", INSTANT, nullable=False),
)

# One row per story: the acknowledgement decision and its state. sender_key is a keyed hash
# (HMAC) of the normalised sender address (never the address), for the per-sender rate limit.
outbox = sa.Table(
    "outbox",
    METADATA,
    sa.Column("story_id", sa.String, sa.ForeignKey("stories.story_id"), primary_key=True),
    sa.Column("sender_key", sa.String(64), nullable=False, index=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("urgent", sa.Boolean, nullable=False, default=False),  # crisis wording: digest first
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("retry_at", INSTANT),  # a temporary failure waits until then (backoff)
    sa.Column("permanent", sa.Boolean, nullable=False, default=False),  # refused for good (5xx)
    sa.Column("error", sa.Text),
    sa.Column("message_id", sa.Text),
    sa.Column("created_at", INSTANT, nullable=False),
    sa.Column("updated_at", INSTANT, nullable=False),
    # The digest whose health counted this row's outcome, and the state it counted: a row
    # whose state changes after that (failed, then sent) is counted again for its new state.
    sa.Column("digest_id", sa.Integer, index=True),
    sa.Column("counted_state", sa.String(16)),
    # What the sender asks for: the oldest pending rows, read in index order (no sort of the
    # whole backlog for every page).
    sa.Index("ix_outbox_due", "state", "created_at"),
    sa.Index("ix_outbox_sent", "state", "updated_at"),  # the hourly cap: sent in the last hour
)


# One row per digest window (see records.Digest); the rendered message is kept until sent so a
# retry sends the same bytes, and ``health`` is the window's counts for the next digest's
# "change since last time".
digests = sa.Table(
    "digests",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("start", INSTANT, nullable=False),
    sa.Column("end", INSTANT, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("message_id", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.LargeBinary),
    sa.Column("stories", sa.Integer, nullable=False, default=0),
    sa.Column("health", sa.JSON, nullable=False, default=dict),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
    sa.Column("created_at", INSTANT, nullable=False),
    sa.Column("updated_at", INSTANT, nullable=False),
    # True: its stories were claimed by id (intake.digest_claims); NULL: made by a version
    # that chose them by stored_at, before claiming existed.
    sa.Column("claims", sa.Boolean),
)

# The worker's lease on a mailbox: one worker at a time. ``holder`` is host:pid:token.
leases = sa.Table(
    "leases",
    METADATA,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("holder", sa.String, nullable=False),
    sa.Column("expires_at", INSTANT, nullable=False),
)

# Small named records of the worker's own state (poll health, alert sent), as JSON.
worker_state = sa.Table(
    "worker_state",
    METADATA,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", INSTANT, nullable=False),
)


# An erasure's remaining work, written in the transaction that deletes its rows: files
# (``kind`` file or folder, ``path``) and mailbox copies (where fetched, exact identity). Each
# row goes once done; the next erase or housekeeping finishes what a crash left. Personal
# (paths, Message-IDs): kept only until done.
erasures = sa.Table(
    "erasures",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(8), nullable=False),  # file, folder, copy
    sa.Column("path", sa.Text, nullable=False, default=""),
    sa.Column("mailbox", sa.String, nullable=False, default=""),
    sa.Column("uidvalidity", sa.Integer, nullable=False, default=0),
    sa.Column("uid", sa.Integer, nullable=False, default=0),
    sa.Column("story_id", sa.Text, nullable=False, default=""),
    sa.Column("digest", sa.String(64), nullable=False, default=""),
    sa.Column("size", sa.Integer, nullable=False, default=0),
    sa.Column("too_large", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", INSTANT, nullable=False),
)

# What ``subject-access`` wrote for whom, so erasing that person removes it: the keyed hash
# of the normalised address (as the outbox's sender_key, never the address) and each path.
subject_access_files = sa.Table(
    "subject_access_files",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender_key", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(8), nullable=False),  # file, folder
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", INSTANT, nullable=False),
)

# Inboxes that asked for no more mail (an honoured request:unsubscribe): the keyed hash of the
# inbox (``triage.reply.identity.mailbox_identity``), as the outbox's sender_key, never the address.
# Kept beyond retention and erasure: it is how the request goes on being honoured. No
# story_id: erasing the request's story must leave nothing that names it.
unsubscribed = sa.Table(
    "unsubscribed",
    METADATA,
    sa.Column("sender_key", sa.String(64), primary_key=True),
    sa.Column("created_at", INSTANT, nullable=False),
)


def upgrade() -> None:
    """Create the round-2 tables, or complete those a store made before migrations has."""
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for table in METADATA.sorted_tables:
        if table.name not in present:
            table.create(bind)
            continue
        have = {column["name"] for column in sa.inspect(bind).get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))
        for index in table.indexes:
            index.create(bind, checkfirst=True)


def downgrade() -> None:
    """There is nothing before the first revision: restore the backup taken before it."""
    raise NotImplementedError("0001 is the first revision; restore a backup instead")
