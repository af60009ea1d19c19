"""Store stage: the tables. SQLAlchemy Core only; built and changed only by the migrations.

Raw bytes live apart from the parsed story so that retention can purge bodies and raw mail
while the anonymous counts and tags stay. A change here needs a revision in
``migrations/versions/`` (README "Backup and upgrade"); tests/test_migrations.py fails until
it has one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    select,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes stored as ISO 8601 text, so SQLite sorts and compares them."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


metadata = MetaData()

stories = Table(
    "stories",
    metadata,
    Column("story_id", String, primary_key=True),
    Column("mailbox", String, nullable=False),
    Column("uidvalidity", Integer, nullable=False),
    Column("uid", Integer, nullable=False),
    Column("sender_name", Text, nullable=False),
    Column("sender_address", Text, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("subject", Text, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("received_at", UtcDateTime, nullable=False),
    Column("text", Text, nullable=False),
    Column("quoted", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("footer", Text, nullable=False),
    Column("forwarded", Boolean, nullable=False),
    Column("html_only", Boolean, nullable=False),
    Column("attachments", JSON, nullable=False),
    Column("defects", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("stored_at", UtcDateTime, nullable=False),
    # The digest that claimed it (see intake.digest_claims); NULL until one does.
    Column("digest_id", Integer, index=True),
)

raw_messages = Table(
    "raw_messages",
    metadata,
    Column("story_id", String, ForeignKey("stories.story_id"), primary_key=True),
    Column("internal_at", UtcDateTime, nullable=False),
    Column("size", Integer, nullable=False),
    Column("too_large", Boolean, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # sha256 of the raw bytes: the same bad message seen again is one entry.
    Column("digest", String(64), nullable=False, unique=True),
    Column("mailbox", String, nullable=False),
    Column("uidvalidity", Integer, nullable=False),
    Column("uid", Integer, nullable=False),
    Column("internal_at", UtcDateTime, nullable=False),
    Column("size", Integer, nullable=False),
    Column("too_large", Boolean, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("stage", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Column("quarantined_at", UtcDateTime, nullable=False),
    Column("digest_id", Integer, index=True),  # the digest whose health counted it
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("mailbox", String, primary_key=True),
    Column("uidvalidity", Integer, primary_key=True),
    Column("last_uid", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Messages stored but not yet tagged $Triaged/moved on the server; cleared once marked, so a
# crash between commit and marking is finished by the next run instead of forgotten.
pending_marks = Table(
    "pending_marks",
    metadata,
    Column("mailbox", String, primary_key=True),
    Column("uidvalidity", Integer, primary_key=True),
    Column("uid", Integer, primary_key=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("error", Text),
    Column("digest_id", Integer, index=True),  # the digest whose health counted it
)

triage = Table(
    "triage",
    metadata,
    Column("story_id", String, ForeignKey("stories.story_id"), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("themes", JSON, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("review_reasons", JSON, nullable=False),
    Column("tagged_at", UtcDateTime, nullable=False),
    Column("agencies", JSON),  # [[agency, rule, start, end, text]]; NULL: tagged before agencies
)

# One row per story: the acknowledgement decision and its state. sender_key is a keyed hash
# (HMAC) of the normalised sender address (never the address), for the per-sender rate limit.
outbox = Table(
    "outbox",
    metadata,
    Column("story_id", String, ForeignKey("stories.story_id"), primary_key=True),
    Column("sender_key", String(64), nullable=False, index=True),
    Column("reason", String(32), nullable=False),
    Column("template", String(64), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("urgent", Boolean, nullable=False, default=False),  # crisis wording: digest first
    Column("attempts", Integer, nullable=False, default=0),
    Column("retry_at", UtcDateTime),  # a temporary failure waits until then (backoff)
    Column("permanent", Boolean, nullable=False, default=False),  # refused for good (5xx)
    Column("error", Text),
    Column("message_id", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The digest whose health counted this row's outcome, and the state it counted: a row
    # whose state changes after that (failed, then sent) is counted again for its new state.
    Column("digest_id", Integer, index=True),
    Column("counted_state", String(16)),
    # What the sender asks for: the oldest pending rows, read in index order (no sort of the
    # whole backlog for every page).
    Index("ix_outbox_due", "state", "created_at"),
    Index("ix_outbox_sent", "state", "updated_at"),  # the hourly cap: sent in the last hour
)


# The reply's history: one row per outbox state change, written in the transaction that makes
# it. ``detail`` is a reason code or SMTP status class (never an address or any text); ``who``
# the person whose action it was ("" for the pipeline). Erased with the story; kept under
# ``[retention] audit_days``, like the audit log it is shown beside.
outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("story_id", String, nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("detail", String(32), nullable=False, default=""),
    Column("who", String(64), nullable=False, default=""),
)

# One row per digest window (see records.Digest); the rendered message is kept until sent so a
# retry sends the same bytes, and ``health`` is the window's counts for the next digest's
# "change since last time".
digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("start", UtcDateTime, nullable=False),
    Column("end", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("message_id", Text, nullable=False, default=""),
    Column("data", LargeBinary),
    Column("stories", Integer, nullable=False, default=0),
    Column("health", JSON, nullable=False, default=dict),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # True: its stories were claimed by id (intake.digest_claims); NULL: made by a version
    # that chose them by stored_at, before claiming existed.
    Column("claims", Boolean),
)

# The worker's lease on a mailbox: one worker at a time. ``holder`` is host:pid:token.
leases = Table(
    "leases",
    metadata,
    Column("name", String, primary_key=True),
    Column("holder", String, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

# Small named records of the worker's own state (poll health, alert sent), as JSON.
worker_state = Table(
    "worker_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)


# An erasure's remaining work, written in the transaction that deletes its rows: files
# (``kind`` file or folder, ``path``) and mailbox copies (where fetched, exact identity). Each
# row goes once done; the next erase or housekeeping finishes what a crash left. Personal
# (paths, Message-IDs): kept only until done.
erasures = Table(
    "erasures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # file, folder, copy
    Column("path", Text, nullable=False, default=""),
    Column("mailbox", String, nullable=False, default=""),
    Column("uidvalidity", Integer, nullable=False, default=0),
    Column("uid", Integer, nullable=False, default=0),
    Column("story_id", Text, nullable=False, default=""),
    Column("digest", String(64), nullable=False, default=""),
    Column("size", Integer, nullable=False, default=0),
    Column("too_large", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# What ``subject-access`` wrote for whom, so erasing that person removes it: the keyed hash
# of the normalised address (as the outbox's sender_key, never the address) and each path.
subject_access_files = Table(
    "subject_access_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender_key", String(64), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # file, folder
    Column("path", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Inboxes that asked for no more mail (an honoured request:unsubscribe): the keyed hash of the
# inbox (``triage.reply.identity.mailbox_identity``), as the outbox's sender_key, never the address.
# Kept beyond retention and erasure: it is how the request goes on being honoured. No
# story_id: erasing the request's story must leave nothing that names it.
unsubscribed = Table(
    "unsubscribed",
    metadata,
    Column("sender_key", String(64), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)


def stories_with_triage() -> Select[Any]:
    """Every story's columns with its triage's (labelled ``triage_*``; NULL when untagged),
    oldest first."""
    return (
        select(stories, *[c.label(f"triage_{c.name}") for c in triage.c])
        .outerjoin(triage, triage.c.story_id == stories.c.story_id)
        .order_by(stories.c.received_at, stories.c.story_id)
    )


# --- The review page (story_intake/web): accounts, sessions, audit log, corrections. ---
# People who may open the review page: an argon2id hash, never the password.
users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),  # reviewer | admin
    Column("password_hash", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Signed-in sessions: only the sha256 of the session id (a stolen database opens nothing).
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_name", String(64), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
)

# Who did what when, naming the story by its reference only, never its content.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("user_name", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("reference", String(16), nullable=False, default=""),
)

# A reviewer's correction of a story's triage (field themes or kind), before and after.
corrections = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("story_id", String, nullable=False, index=True),
    Column("user_name", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("field", String(16), nullable=False),
    Column("before", JSON, nullable=False),
    Column("after", JSON, nullable=False),
)

# Stories a reviewer has marked as reviewed.
reviews = Table(
    "reviews",
    metadata,
    Column("story_id", String, primary_key=True),
    Column("user_name", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
