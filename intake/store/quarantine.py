"""Store stage, quarantine: messages a stage could not handle, kept whole. SQLAlchemy Core.

A table group of ``Store`` (``store.quarantine``). ``requeue`` takes them out again: released
into the stories, or recorded as another failed attempt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from intake.records import Quarantined, RawMessage, Story, Triage
from intake.store import dialect, rows, schema
from intake.store.group import TableGroup


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined message as the store holds it."""

    id: int
    raw: RawMessage
    stage: str
    reason: str
    attempts: int
    quarantined_at: datetime


class QuarantineRows(TableGroup):
    """Quarantine queries (``store.quarantine``)."""

    def quarantined(self) -> list[QuarantineEntry]:
        """Every message in quarantine, oldest first."""
        with self._connect() as conn:
            found = conn.execute(select(schema.quarantine).order_by(schema.quarantine.c.id))
            return [_quarantine_entry(r._mapping) for r in found]

    def release(
        self, entry_id: int, story: Story, raw: RawMessage, triage: Triage, now: datetime
    ) -> bool:
        """Move a requeued message out of quarantine into the stories; False if a duplicate."""
        with self._begin() as conn:
            conn.execute(delete(schema.quarantine).where(schema.quarantine.c.id == entry_id))
            exists = select(schema.stories.c.story_id).where(
                schema.stories.c.story_id == story.story_id
            )
            if conn.execute(exists).first():
                return False
            conn.execute(insert(schema.stories), [rows.story_row(story, now)])
            conn.execute(insert(schema.raw_messages), [rows.raw_row(raw, story)])
            conn.execute(insert(schema.triage), [rows.triage_row(triage, now)])
            return True

    def requarantine(self, entry_id: int, stage: str, reason: str, detail: str) -> None:
        """Record another failed attempt at a quarantined message."""
        q = schema.quarantine
        values = {"stage": stage, "reason": reason, "detail": detail, "attempts": q.c.attempts + 1}
        with self._begin() as conn:
            conn.execute(update(q).where(q.c.id == entry_id).values(**values))


def quarantine_row(conn: Any, item: Quarantined, now: datetime) -> None:
    """Insert one quarantined message (the same bytes twice are one entry)."""
    raw = item.raw
    if not isinstance(raw, RawMessage):  # a Staged handle: the caller loads its bytes first
        raise TypeError("quarantine_row needs the raw message, not a staged handle")
    row = {"digest": hashlib.sha256(raw.data).hexdigest(), "mailbox": raw.mailbox,
           "uidvalidity": raw.uidvalidity, "uid": raw.uid, "internal_at": raw.internal_at,
           "size": raw.size, "too_large": raw.too_large, "data": raw.data, "stage": item.stage,
           "reason": item.reason, "detail": item.detail, "quarantined_at": now}  # fmt: skip
    conn.execute(dialect.insert_or_ignore(schema.quarantine), [row])


def _quarantine_entry(row: Any) -> QuarantineEntry:
    raw = RawMessage(row["mailbox"], row["uidvalidity"], row["uid"], row["internal_at"],
                     row["size"], row["data"], row["too_large"])  # fmt: skip
    return QuarantineEntry(row["id"], raw, row["stage"], row["reason"], row["attempts"],
                           row["quarantined_at"])  # fmt: skip
