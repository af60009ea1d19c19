"""Store stage, the reply's history (``outbox_events``). SQLAlchemy Core only.

Every change of an outbox row's state adds one event in the transaction that makes it: the
writers in ``outbox`` and ``review`` call the functions taking a connection. An event holds
the new state, a reason code or SMTP status class and who acted ("" for the pipeline), never
an address or any text. ``store.reply_events`` (a table group) reads a story's events and
prunes the old ones; erasure deletes a story's with it (``PrivacyRows.erase``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Insert, String, bindparam, delete, insert, literal, select

from intake.store import schema
from intake.store.group import TableGroup


@dataclass(frozen=True, slots=True)
class ReplyEvent:
    """One state change of a story's reply: when, the new state, why (a reason code or an
    SMTP status class, "" when there is nothing to say) and who ("" for the pipeline)."""

    at: datetime
    state: str
    detail: str = ""
    who: str = ""


class ReplyEventRows(TableGroup):
    """Reply history queries (``store.reply_events``)."""

    def events(self, story_id: str) -> list[ReplyEvent]:
        """The story's reply events, in the order they happened."""
        e = schema.outbox_events.c
        query = (select(e.at, e.state, e.detail, e.who).where(e.story_id == story_id)
                 .order_by(e.id))  # fmt: skip
        with self._connect() as conn:
            return [ReplyEvent(r[0], str(r[1]), str(r[2]), str(r[3])) for r in conn.execute(query)]

    def purge_events(self, before: datetime) -> int:
        """Delete events older than ``before`` (``[retention] audit_days``); returns how many."""
        e = schema.outbox_events
        with self._begin() as conn:
            return int(conn.execute(delete(e).where(e.c.at < before)).rowcount)


def add_events(
    conn: Connection, story_ids: Sequence[str], state: str, now: datetime,
    detail: str = "", who: str = "",
) -> None:  # fmt: skip
    """One event per story in ``conn``'s transaction: these replies are now in ``state``."""
    add_event_rows(conn, [(story_id, state, detail) for story_id in story_ids], now, who)


def add_event_rows(
    conn: Connection, changes: Sequence[tuple[str, str, str]], now: datetime, who: str = ""
) -> None:
    """One event per (story_id, new state, detail), in ``conn``'s transaction."""
    rows = [{"story_id": story_id, "at": now, "state": state, "detail": detail, "who": who}
            for story_id, state, detail in changes]  # fmt: skip
    if rows:
        conn.execute(insert(schema.outbox_events), rows)


def follow_statement() -> Insert:
    """An event for the outbox row ``:id`` (run with the parameters of the update that
    changed it: ``:new_state``, ``:detail``, ``:now``). Copied from the row itself, so a row
    an erasure removed meanwhile leaves no event naming its story."""
    o = schema.outbox
    changed = select(
        o.c.story_id,
        bindparam("now", type_=schema.UtcDateTime()),
        bindparam("new_state", type_=String()),
        bindparam("detail", type_=String()),
        literal("", String()),
    ).where(o.c.story_id == bindparam("id"))
    columns = ["story_id", "at", "state", "detail", "who"]
    return insert(schema.outbox_events).from_select(columns, changed)
