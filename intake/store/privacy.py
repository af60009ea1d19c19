"""Store stage, privacy: retention purges, erasure, holds and subject access. SQLAlchemy Core.

A table group of ``Store`` (``store.privacy``). Purging keeps what is anonymous (kind, themes,
scores, states, counts) and removes what is personal (raw mail, the words, names, addresses,
subjects, evidence spans, reply addresses). Erasure removes every row about a story. A story
held after its sender asked to withdraw is left out of digests until someone erases it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from intake.records import DigestState, ReplyState, Story, StoryStatus, Triage
from intake.store import rows, schema
from intake.store.erasure import (
    FILE,
    add_files,
    add_quarantine_copies,
    add_story_copies,
    take_subject_access,
)
from intake.store.group import TableGroup

PURGED = StoryStatus.PURGED
ON_HOLD = StoryStatus.ON_HOLD
# Outbox states nothing will change any more.
FINAL = (ReplyState.SENT, ReplyState.FAILED, ReplyState.SUPPRESSED)


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Everything stored before these instants has expired."""

    raw: datetime
    body: datetime
    quarantine: datetime
    outbox: datetime
    digest: datetime


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    """What one erasure removes: stories, quarantined messages, files (digests, replies),
    the subject-access output of ``sender_key`` ("" for none), and with ``copies`` their
    mailbox copies."""

    story_ids: Sequence[str]
    quarantine_ids: Sequence[int]
    files: Sequence[str]
    sender_key: str
    copies: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class Held:
    """Everything held about one story, for a subject access request."""

    story: Story
    triage: Triage | None
    raw: bytes | None
    stored_at: datetime
    status: str
    acknowledgement: dict[str, Any] | None


class PrivacyRows(TableGroup):
    """Privacy queries (``store.privacy``)."""

    def purge_expired(self, cut: Cutoffs, copies: datetime | None = None) -> dict[str, int]:
        """Remove what has outlived its retention period, in one transaction; returns counts.

        With ``copies`` (the time now), the mailbox copies of the raw messages and quarantined
        mail purged are recorded for deletion (``triage.erasure`` carries it out)."""
        s, r, q, o, d = (schema.stories, schema.raw_messages, schema.quarantine, schema.outbox,
                         schema.digests)  # fmt: skip
        old_raw = select(s.c.story_id).where(s.c.stored_at < cut.raw)
        old_body = select(s.c.story_id).where(s.c.stored_at < cut.body, s.c.status != PURGED)
        with self._begin() as conn:
            bodies = list(conn.execute(old_body).scalars())
            if copies is not None:
                expired = select(r.c.story_id).where(r.c.story_id.in_(old_raw))
                add_story_copies(conn, list(conn.execute(expired).scalars()), copies)
                add_quarantine_copies(conn, q.c.quarantined_at < cut.quarantine, now=copies)
            counts = {
                "raw_messages": conn.execute(delete(r).where(r.c.story_id.in_(old_raw))).rowcount,
                "story_bodies": _scrub_stories(conn, bodies),
                "quarantine": conn.execute(
                    delete(q).where(q.c.quarantined_at < cut.quarantine)).rowcount,
                "outbox_addresses": conn.execute(
                    update(o).where(o.c.updated_at < cut.outbox, o.c.state.in_(FINAL),
                                    o.c.recipient != "")
                    .values(recipient="", sender_key="", error=None)).rowcount,
                "digests": conn.execute(delete(d).where(d.c.created_at < cut.digest,
                                                        d.c.data.is_(None))).rowcount,
            }  # fmt: skip
        return {name: int(count) for name, count in counts.items()}

    def senders(self) -> Iterator[tuple[str, str]]:
        """(story_id, sender address) of every story whose body is still kept."""
        s = schema.stories.c
        with self._connect() as conn:
            found = conn.execute(select(s.story_id, s.sender_address).where(s.status != PURGED))
            yield from ((str(row[0]), str(row[1])) for row in found)

    def erase(self, plan: ErasurePlan, dry_run: bool = False) -> dict[str, int]:
        """Delete every row about these stories (and these quarantined messages), recording
        in the same transaction what remains to delete outside the store (``plan``'s files,
        the person's subject-access output, and with ``plan.copies`` the mailbox copies).
        Returns how many rows of each table. With ``dry_run`` counts only, deleting nothing.

        A digest rendered but not yet sent holds excerpts: it goes back to ``open`` so it is
        rendered again without them.
        """
        ids, quarantine_ids = list(plan.story_ids), list(plan.quarantine_ids)
        # corrections, reviews and reply events name the story too: they go with it (the
        # audit log keeps only the reference).
        tables = (
            schema.outbox_events,
            schema.outbox,
            schema.triage,
            schema.raw_messages,
            schema.corrections,
            schema.reviews,
            schema.stories,
        )
        q, d = schema.quarantine, schema.digests
        with self._begin() as conn:
            counts = {t.name: _count(conn, t, t.c.story_id.in_(ids)) for t in tables}
            counts["quarantine"] = _count(conn, q, q.c.id.in_(quarantine_ids))
            unsent = (
                d.c.state.in_((DigestState.RENDERED, DigestState.SENDING)),
                d.c.data.is_not(None),
            )
            counts["unsent_digests"] = _count(conn, d, *unsent) if ids else 0
            if dry_run:
                return counts
            if plan.copies:
                counts["mailbox_copies"] = add_story_copies(conn, ids, plan.now) + (
                    add_quarantine_copies(conn, q.c.id.in_(quarantine_ids), now=plan.now)
                )
            add_files(conn, [(FILE, path) for path in plan.files], plan.now)
            if plan.sender_key:
                counts["subject_access_paths"] = take_subject_access(conn, plan.sender_key,
                                                                     plan.now)  # fmt: skip
            for table in tables:  # children before the stories they point at
                conn.execute(delete(table).where(table.c.story_id.in_(ids)))
            conn.execute(delete(q).where(q.c.id.in_(quarantine_ids)))
            if ids:
                conn.execute(update(d).where(*unsent).values(state=DigestState.OPEN, data=None,
                                                             message_id=""))  # fmt: skip
        return counts

    def hold(self, story_ids: Sequence[str]) -> int:
        """Put stories on hold: left out of digests until erased. Returns how many changed."""
        s = schema.stories
        with self._begin() as conn:
            done = conn.execute(update(s).where(s.c.story_id.in_(list(story_ids)),
                                                s.c.status.not_in((ON_HOLD, PURGED)))
                                .values(status=ON_HOLD))  # fmt: skip
        return int(done.rowcount)

    def on_hold(self) -> list[str]:
        """story_ids of stories on hold, awaiting erasure."""
        s = schema.stories.c
        with self._connect() as conn:
            return list(conn.execute(select(s.story_id).where(s.status == ON_HOLD)).scalars())

    def held_about(self, story_ids: Sequence[str]) -> Iterator[Held]:
        """Everything stored about these stories, one at a time (subject access)."""
        s, r, o = schema.stories, schema.raw_messages, schema.outbox
        query = (schema.stories_with_triage()
                 .add_columns(r.c.data.label("raw_data"), o.c.state.label("ack_state"),
                              o.c.reason.label("ack_reason"), o.c.updated_at.label("ack_at"))
                 .outerjoin(r, r.c.story_id == s.c.story_id)
                 .outerjoin(o, o.c.story_id == s.c.story_id)
                 .where(s.c.story_id.in_(list(story_ids))))  # fmt: skip
        with self._connect() as conn:
            for row in conn.execute(query).mappings():
                ack = None if row["ack_state"] is None else {
                    "state": row["ack_state"], "reason": row["ack_reason"],
                    "at": rows.plain(row["ack_at"])}  # fmt: skip
                yield Held(rows.row_story(row), rows.row_triage(row), row["raw_data"],
                           row["stored_at"], row["status"], ack)  # fmt: skip


def _scrub_stories(conn: Connection, ids: list[str]) -> int:
    if not ids:
        return 0
    s, t = schema.stories, schema.triage
    conn.execute(update(s).where(s.c.story_id.in_(ids)).values(
        sender_name="", sender_address="", recipients=[], subject="", text="", quoted="",
        signature="", footer="", attachments=[], headers=[], status=PURGED))  # fmt: skip
    conn.execute(update(t).where(t.c.story_id.in_(ids)).values(evidence=[], agencies=[]))
    return len(ids)


def _count(conn: Connection, table: Any, *where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0)
