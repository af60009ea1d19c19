"""Store stage, what reviewers do: corrections, reviewed marks, the audit log. SQLAlchemy
Core only.

A table group composed beside ``Store`` (``store.review``). A correction changes
the story's triage and records before and after in one transaction. The audit log names a
story by its reference only, never its content; erasure deletes a story's corrections and
reviewed mark with it (``intake.store.privacy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from intake.records import UNVERIFIED_REQUEST, ReplyState
from intake.store import schema
from intake.store.group import TableGroup
from intake.store.reply_events import add_events

FIELDS = ("themes", "kind")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log."""

    at: datetime
    user: str
    action: str
    reference: str


@dataclass(frozen=True, slots=True)
class Correction:
    """One correction of one field of a story's triage."""

    story_id: str
    user: str
    at: datetime
    field: str
    before: Any
    after: Any


class ReviewRows(TableGroup):
    """Corrections, reviewed marks and the audit log."""

    def audit(self, user: str, action: str, reference: str, now: datetime) -> None:
        """Append one line to the audit log."""
        row = {"at": now, "user_name": user, "action": action, "reference": reference}
        with self._begin() as conn:
            conn.execute(insert(schema.audit_log), [row])

    def audit_entries(self, limit: int = 200, reference: str = "") -> list[AuditEntry]:
        """The latest audit lines (about ``reference`` when given), newest first."""
        a = schema.audit_log.c
        query = select(a.at, a.user_name, a.action, a.reference).order_by(a.id.desc())
        if reference:
            query = query.where(a.reference == reference)
        with self._connect() as conn:
            return [AuditEntry(*row) for row in conn.execute(query.limit(limit)).all()]

    def purge_audit(self, before: datetime) -> int:
        """Delete audit lines older than ``before`` (``[retention] audit_days``)."""
        a = schema.audit_log
        with self._begin() as conn:
            return int(conn.execute(delete(a).where(a.c.at < before)).rowcount)

    def correct(self, story_id: str, user: str, field: str, after: Any, now: datetime) -> bool:
        """Set ``field`` (themes or kind) of the story's triage to ``after`` and record the
        correction; False when the story has no triage or nothing changed."""
        if field not in FIELDS:
            raise ValueError(f"not a correctable field: {field}")
        t = schema.triage
        with self._begin() as conn:
            before = conn.execute(select(t.c[field]).where(t.c.story_id == story_id)).first()
            if before is None or before[0] == after:
                return False
            conn.execute(update(t).where(t.c.story_id == story_id).values({field: after}))
            conn.execute(insert(schema.corrections), [{
                "story_id": story_id, "user_name": user, "at": now, "field": field,
                "before": before[0], "after": after}])  # fmt: skip
        return True

    def corrections(self, story_ids: Sequence[str] | None = None) -> list[Correction]:
        """Every correction (of these stories), oldest first."""
        c = schema.corrections.c
        query = select(c.story_id, c.user_name, c.at, c.field, c.before, c.after)
        if story_ids is not None:
            query = query.where(c.story_id.in_(list(story_ids)))
        with self._connect() as conn:
            return [Correction(*row) for row in conn.execute(query.order_by(c.id)).all()]

    def mark_reviewed(self, story_id: str, user: str, now: datetime) -> bool:
        """Mark a story reviewed; False when it already was."""
        r = schema.reviews
        with self._begin() as conn:
            if conn.execute(select(r.c.story_id).where(r.c.story_id == story_id)).first():
                return False
            conn.execute(insert(r), [{"story_id": story_id, "user_name": user, "at": now}])
        return True

    def reviewed_at(self) -> dict[str, datetime]:
        """story_id -> when it was marked reviewed."""
        r = schema.reviews.c
        with self._connect() as conn:
            return {row[0]: row[1] for row in conn.execute(select(r.story_id, r.at))}

    def reviewed(self) -> dict[str, str]:
        """story_id -> who marked it reviewed."""
        r = schema.reviews.c
        with self._connect() as conn:
            return {row[0]: row[1] for row in conn.execute(select(r.story_id, r.user_name))}

    def reply_record(self, story_id: str) -> dict[str, Any] | None:
        """The story's acknowledgement as the outbox keeps it (only its current state:
        decision, template, state, attempts, times, last error), None before a decision."""
        o = schema.outbox.c
        query = select(o.reason, o.template, o.state, o.attempts, o.created_at, o.updated_at,
                       o.retry_at, o.permanent, o.error).where(o.story_id == story_id)  # fmt: skip
        with self._connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def correction_count(self) -> int:
        """How many corrections are stored."""
        with self._connect() as conn:
            query = select(func.count()).select_from(schema.corrections)
            return int(conn.execute(query).scalar() or 0)

    def reject_request(self, story_id: str, now: datetime, who: str = "") -> bool:
        """A person (``who``) judged a held request not to be one: the story stays and its
        sender gets the ordinary acknowledgement (pending, sent by the next pass). False when
        the story had no request waiting."""
        o = schema.outbox
        query = (update(o).where(o.c.story_id == story_id, o.c.state == "held",
                                 o.c.reason == UNVERIFIED_REQUEST)
                 .values(state="pending", reason="send", template="acknowledgement",
                         updated_at=now, retry_at=None)
                 .returning(o.c.story_id))  # fmt: skip
        with self._begin() as conn:
            changed = list(conn.execute(query).scalars())
            add_events(conn, changed, ReplyState.PENDING, now, "not_a_request", who)
            return bool(changed)
