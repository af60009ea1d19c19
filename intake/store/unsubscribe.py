"""Store stage, the suppression list: inboxes that asked for no more mail. SQLAlchemy Core only.

A table group of ``Store`` (``store.unsubscribe``). An entry is the keyed hash of the inbox (the
outbox's ``sender_key`` of ``triage.reply.identity.mailbox_identity``), never the address, so
the table alone cannot be searched for a known address. It is written in the transaction that
records the decision to confirm an unsubscribe (or that releases a held one), so a crash cannot
send the confirmation without the inbox being suppressed, nor suppress it without the
confirmation. Retention and erasure leave it alone: it is how the request goes on being
honoured; only ``lift_unsubscribe`` (the person asked to hear from us again) removes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from intake.records import ReplyState
from intake.store import schema
from intake.store.group import TableGroup

UNSUBSCRIBE_TEMPLATE = "unsubscribe_confirmation"


class UnsubscribeRows(TableGroup):
    """Suppression-list queries (``store.unsubscribe``)."""

    def unsubscribed_among(self, keys: Sequence[str]) -> set[str]:
        """Of these sender keys, those on the suppression list (one query for a page)."""
        u = schema.unsubscribed.c
        query = select(u.sender_key).where(u.sender_key.in_(sorted(set(keys))))
        with self._connect() as conn:
            return set(conn.execute(query).scalars())

    def lift_unsubscribe(self, key: str) -> int:
        """The inbox asked to hear from us again: take ``key`` off the list; returns 0 or 1."""
        u = schema.unsubscribed
        with self._begin() as conn:
            return int(conn.execute(delete(u).where(u.c.sender_key == key)).rowcount)


def add_unsubscribed(conn: Connection, keys: Sequence[str], now: datetime) -> int:
    """Put these sender keys on the list in ``conn``'s transaction (a key already there
    keeps its first date); returns how many were new."""
    u = schema.unsubscribed.c
    wanted = sorted({key for key in keys if key})  # "": a row whose key retention blanked
    if not wanted:
        return 0
    there = set(conn.execute(select(u.sender_key).where(u.sender_key.in_(wanted))).scalars())
    rows = [{"sender_key": key, "created_at": now} for key in wanted if key not in there]
    if rows:
        conn.execute(insert(schema.unsubscribed), rows)
    return len(rows)


def held_unsubscribes(conn: Connection, story_ids: Sequence[str]) -> list[str]:
    """The sender keys of the held unsubscribe confirmations among ``story_ids``."""
    o = schema.outbox.c
    query = select(o.sender_key).where(o.story_id.in_(list(story_ids)), o.state == ReplyState.HELD,
                                       o.template == UNSUBSCRIBE_TEMPLATE)  # fmt: skip
    return list(conn.execute(query).scalars())
