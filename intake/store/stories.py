"""Store stage, the stories: batches, their checkpoints and pending marks. SQLAlchemy Core only.

A table group of ``Store``. A batch is committed in one transaction together with its UID
checkpoint and its pending server marks, so a crash leaves either all of it or none of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from intake.records import MailboxState, Quarantined, RawMessage, Staged, Story, Triage
from intake.store import dialect, rows, schema
from intake.store.group import TableGroup, Transactions
from intake.store.quarantine import quarantine_row
from intake.store.staging import Staging


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What committing one batch did."""

    stored: int
    duplicates: int
    quarantined: int
    fresh: frozenset[str] = frozenset()  # story_ids stored by this batch (not duplicates)


class StoryRows(TableGroup):
    """Stories, raw messages, triage, checkpoints and pending marks (``store.stories``)."""

    def __init__(self, transactions: Transactions, staging: Staging) -> None:
        super().__init__(transactions)
        self._staging = staging  # where a batch's raw bytes wait for its commit

    def last_uid(self, state: MailboxState) -> int:
        """The checkpoint for (mailbox, UIDVALIDITY): the highest UID already handled."""
        c = schema.checkpoints.c
        query = select(c.last_uid).where(
            c.mailbox == state.mailbox, c.uidvalidity == state.uidvalidity
        )
        with self._connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def known_uidvalidities(self, mailbox: str) -> set[int]:
        """Every UIDVALIDITY this mailbox has had a checkpoint under."""
        c = schema.checkpoints.c
        with self._connect() as conn:
            rows = conn.execute(select(c.uidvalidity).where(c.mailbox == mailbox))
            return {int(r[0]) for r in rows}

    def commit_batch(
        self,
        state: MailboxState,
        last_uid: int,
        parsed: Sequence[tuple[RawMessage | Staged, Story]],
        failed: Sequence[Quarantined],
        now: datetime,
        triages: Mapping[str, Triage] | None = None,
    ) -> BatchResult:
        """Store a batch, its triage, quarantine, pending marks and checkpoint, atomically.

        A ``Staged`` message's bytes are read back from ``staging`` one at a time as they are
        stored, and its file removed once the batch is committed."""
        triages = triages or {}
        with self._begin() as conn:
            ids = [story.story_id for _, story in parsed]
            known = set(
                conn.execute(
                    select(schema.stories.c.story_id).where(schema.stories.c.story_id.in_(ids))
                ).scalars()
            )
            fresh = _first_of_each(parsed, known)
            if fresh:
                conn.execute(insert(schema.stories), [rows.story_row(s, now) for _, s in fresh])
                _insert_raw(conn, fresh, self._staging)
                tagged = [triages[s.story_id] for _, s in fresh if s.story_id in triages]
                if tagged:
                    conn.execute(insert(schema.triage), [rows.triage_row(t, now) for t in tagged])
            for item in failed:
                raw = item.raw
                held = self._staging.load(raw) if isinstance(raw, Staged) else raw
                quarantine_row(conn, replace(item, raw=held), now)
                del held
            uids = [r.uid for r, _ in parsed] + [q.raw.uid for q in failed]
            if uids:
                marks = [{"mailbox": state.mailbox, "uidvalidity": state.uidvalidity, "uid": u}
                         for u in uids]  # fmt: skip
                conn.execute(dialect.insert_or_ignore(schema.pending_marks), marks)
            if state.uidvalidity:
                _checkpoint(conn, state, last_uid, now)
        self._staging.drop([r for r in (*(r for r, _ in parsed), *(q.raw for q in failed))
                            if isinstance(r, Staged)])  # fmt: skip
        stored = frozenset(story.story_id for _, story in fresh)
        return BatchResult(len(fresh), len(parsed) - len(fresh), len(failed), stored)

    def pending_marks(self, state: MailboxState) -> list[int]:
        """UIDs stored under this UIDVALIDITY but not yet marked on the server."""
        c = schema.pending_marks.c
        query = select(c.uid).where(c.mailbox == state.mailbox, c.uidvalidity == state.uidvalidity)
        with self._connect() as conn:
            return sorted(int(u) for u in conn.execute(query).scalars())

    def clear_marks(self, state: MailboxState, uids: Sequence[int]) -> None:
        """Forget pending marks for these UIDs: they are marked on the server now."""
        c = schema.pending_marks.c
        query = delete(schema.pending_marks).where(
            c.mailbox == state.mailbox, c.uidvalidity == state.uidvalidity, c.uid.in_(list(uids))
        )
        with self._begin() as conn:
            conn.execute(query)

    def drop_stale_marks(self, state: MailboxState) -> None:
        """Forget pending marks under any other UIDVALIDITY: those UIDs mean nothing now."""
        c = schema.pending_marks.c
        query = delete(schema.pending_marks).where(
            c.mailbox == state.mailbox, c.uidvalidity != state.uidvalidity
        )
        with self._begin() as conn:
            conn.execute(query)

    def texts_of(self, story_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(story_id, sender address, own words) of the stored stories among ``story_ids``
        (an erased story is gone: never found)."""
        c = schema.stories.c
        query = select(c.story_id, c.sender_address, c.text).where(c.story_id.in_(story_ids))
        with self._connect() as conn:
            return [(str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(query)]

    def stories(self) -> Iterator[Story]:
        """Every stored story, in the order received."""
        for story, _ in self.triaged():
            yield story

    def triaged(self) -> Iterator[tuple[Story, Triage | None]]:
        """Every stored story with its triage (None if not tagged yet), in the order received."""
        with self._connect() as conn:
            for row in conn.execute(schema.stories_with_triage()).mappings():
                yield rows.row_story(row), rows.row_triage(row)


def _insert_raw(
    conn: Connection, fresh: Sequence[tuple[RawMessage | Staged, Story]], staging: Staging
) -> None:
    # Staged messages are read back here: this batch's bytes, the only batch in this process.
    staged = iter(staging.read([r for r, _ in fresh if isinstance(r, Staged)]))
    held = [rows.raw_row(r if isinstance(r, RawMessage) else next(staged), s) for r, s in fresh]
    conn.execute(insert(schema.raw_messages), held)


def _first_of_each(
    parsed: Sequence[tuple[RawMessage | Staged, Story]], known: set[str]
) -> list[tuple[RawMessage | Staged, Story]]:
    seen = set(known)
    fresh = []
    for raw, story in parsed:
        if story.story_id not in seen:
            seen.add(story.story_id)
            fresh.append((raw, story))
    return fresh


def _checkpoint(conn: Any, state: MailboxState, last_uid: int, now: datetime) -> None:
    row = {"mailbox": state.mailbox, "uidvalidity": state.uidvalidity,
           "last_uid": last_uid, "updated_at": now}  # fmt: skip
    conn.execute(dialect.upsert(schema.checkpoints, row, ["mailbox", "uidvalidity"],
                                {"last_uid": last_uid, "updated_at": now}))  # fmt: skip
