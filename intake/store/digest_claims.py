"""Store stage, which digest a row belongs to: claimed by id, never chosen by clock. Core only.

Opening a digest inserts its row and, in the same transaction, claims every story, run
record, quarantine entry and final acknowledgement outcome no digest has claimed yet
(``digest_id IS NULL``). A row committed before that transaction is claimed by it; one
committed after (or still uncommitted) is invisible to it and goes to the next digest. So a
pass that commits while a digest is being built can neither be missed nor counted twice,
whatever the clocks say; the digest's start and end are labels only.

A store made before claiming existed has NULL everywhere: rows a finished digest already
covered by time are marked as claimed by it the first time a claiming digest opens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, exists, func, select, update

from intake.records import DigestState, ReplyState
from intake.store import schema

# Acknowledgement outcomes the health counts report; "held" and "pending" are not outcomes yet.
OUTCOMES = (ReplyState.SENT, ReplyState.FAILED, ReplyState.SUPPRESSED)
# Digests whose content is fixed (rendered or finished): what they covered is not claimed again.
_FIXED = (DigestState.RENDERED, DigestState.SENDING, DigestState.SENT, DigestState.WRITTEN,
          DigestState.SKIPPED)  # fmt: skip


def claim(conn: Connection, digest_id: int) -> None:
    """Give every unclaimed row to ``digest_id`` (inside the transaction that opens it)."""
    for table in (schema.stories, schema.runs, schema.quarantine):
        conn.execute(update(table).where(table.c.digest_id.is_(None))
                     .values(digest_id=digest_id))  # fmt: skip
    o = schema.outbox.c
    conn.execute(update(schema.outbox).where(*unclaimed_outcomes())
                 .values(digest_id=digest_id, counted_state=o.state))  # fmt: skip


def release(conn: Connection, digest_id: int) -> None:
    """Hand back what ``digest_id`` claimed besides the stories it showed (a digest skipped
    because it had no story to show): the next digest counts those health rows and held
    stories instead of nobody."""
    for table in (schema.stories, schema.runs, schema.quarantine):
        conn.execute(update(table).where(table.c.digest_id == digest_id)
                     .values(digest_id=None))  # fmt: skip
    conn.execute(update(schema.outbox).where(schema.outbox.c.digest_id == digest_id)
                 .values(digest_id=None, counted_state=None))  # fmt: skip


def unclaimed_outcomes() -> tuple[ColumnElement[bool], ...]:
    """Outbox rows with an outcome not counted yet: new, or changed since it was counted."""
    o = schema.outbox.c
    return (o.state.in_(OUTCOMES),
            (o.counted_state.is_(None)) | (o.counted_state != o.state))  # fmt: skip


def member(table: Table, digest_id: int | None) -> ColumnElement[bool]:
    """Rows of ``table`` claimed by ``digest_id``; with None, the rows nobody has claimed
    yet (what the next digest would take: a preview)."""
    column = table.c.digest_id
    return column.is_(None) if digest_id is None else column == digest_id


def adopt_legacy(conn: Connection) -> None:
    """Before the first claiming digest: mark rows that digests made by time already covered
    (stored, run, quarantined or decided before the end of the last of them) as claimed by
    the last of them, so they are not shown again. Does nothing once a digest has claimed."""
    d = schema.digests.c
    if conn.execute(select(exists().where(d.claims.is_(True)))).scalar():
        return
    last = conn.execute(select(d.id, d.end).where(d.state.in_(_FIXED))
                        .order_by(d.end.desc(), d.id.desc()).limit(1)).first()  # fmt: skip
    if last is None:
        return
    digest_id, end = int(last[0]), last[1]
    _mark_before(conn, schema.stories, schema.stories.c.stored_at, end, digest_id)
    _mark_before(conn, schema.runs, schema.runs.c.started_at, end, digest_id)
    _mark_before(conn, schema.quarantine, schema.quarantine.c.quarantined_at, end, digest_id)
    o = schema.outbox.c
    conn.execute(update(schema.outbox).where(*unclaimed_outcomes(), o.updated_at < end)
                 .values(digest_id=digest_id, counted_state=o.state))  # fmt: skip


def _mark_before(conn: Connection, table: Table, at: Any, end: datetime, digest_id: int) -> None:
    conn.execute(update(table).where(table.c.digest_id.is_(None), at < end)
                 .values(digest_id=digest_id))  # fmt: skip


def outcome_counts(conn: Connection, digest_id: int | None) -> list[Any]:
    """(state, reason, count) of the acknowledgement outcomes ``digest_id`` counted (None:
    those the next digest would count), by the state each had when it was counted."""
    o = schema.outbox.c
    if digest_id is None:
        where: tuple[ColumnElement[bool], ...] = unclaimed_outcomes()
        state: Any = o.state
    else:
        where, state = (o.digest_id == digest_id,), o.counted_state
    query = select(state, o.reason, func.count()).where(*where).group_by(state, o.reason)
    return list(conn.execute(query).all())
