"""Store stage, the outbox: acknowledgement decisions and their states. SQLAlchemy Core only.

A table group of ``Store`` (``store.outbox``): the same engine, the same transactions. Sending
is claimed before it starts (``pending`` -> ``sending``, committed) and finished after
(``sent``/``pending``/ ``failed``), so a crash in between leaves a ``sending`` row that the next
run holds for a person instead of sending twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Update, bindparam, func, insert, select, update

from intake.records import UNVERIFIED_REQUEST, Acknowledgement, ReplyState, Story, Triage
from intake.store import rows, schema
from intake.store.group import TableGroup
from intake.store.reply_events import add_event_rows, add_events, follow_statement
from intake.store.unsubscribe import add_unsubscribed, held_unsubscribes

# The states that count towards the rate limit.
ACTIVE = (ReplyState.PENDING, ReplyState.SENDING, ReplyState.SENT, ReplyState.HELD)


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one attempt to send an acknowledgement ended (see ``OutboxRows.finish``)."""

    story_id: str
    state: str  # sent, pending (to retry at retry_at) or failed
    error: str | None = None
    message_id: str | None = None
    retry_at: datetime | None = None
    permanent: bool = False
    detail: str = ""  # the reply history's reason: an SMTP status class, never text


class OutboxRows(TableGroup):
    """Outbox queries (``store.outbox``)."""

    def undecided(self, limit: int) -> list[tuple[Story, Triage | None]]:
        """Up to ``limit`` stored stories without an acknowledgement decision, oldest first.

        A page at a time, so a backlog of thousands never sits in memory at once.
        """
        if self._every_story_decided():
            return []
        outbox = schema.outbox
        query = (
            schema.stories_with_triage()
            .outerjoin(outbox, outbox.c.story_id == schema.stories.c.story_id)
            .where(outbox.c.story_id.is_(None))
            .limit(limit)
        )
        with self._connect() as conn:
            found = conn.execute(query).mappings().all()
        return [(rows.row_story(r), rows.row_triage(r)) for r in found]

    def _every_story_decided(self) -> bool:
        # The outbox has at most one row per story and, by its foreign key, none for a story
        # that is not there: equal counts mean nothing is undecided. Two counts take 2 ms on a
        # store of 100,000 stories, the join below 50 ms, and an idle poll asks every time.
        counts = select(
            select(func.count()).select_from(schema.stories).scalar_subquery(),
            select(func.count()).select_from(schema.outbox).scalar_subquery(),
        )
        with self._connect() as conn:
            stories, decided = conn.execute(counts).one()
        return bool(stories == decided)

    def record_decisions(
        self, decided: Sequence[tuple[Acknowledgement, str]], now: datetime,
        unsubscribed: Sequence[str] = (),
    ) -> None:  # fmt: skip
        """Store decisions with their sender keys (``pending`` or ``suppressed``), and put the
        ``unsubscribed`` sender keys (honoured unsubscribes) on the suppression list, atomically."""
        batch = [{"story_id": item.story_id, "sender_key": key, "reason": item.reason,
                  "template": item.template, "recipient": item.to, "state": item.state,
                  "attempts": 0, "permanent": False, "urgent": item.urgent,
                  "created_at": now, "updated_at": now}
                 for item, key in decided]  # fmt: skip
        if batch:
            with self._begin() as conn:
                conn.execute(insert(schema.outbox), batch)
                changes = [(item.story_id, item.state, item.reason) for item, _ in decided]
                add_event_rows(conn, changes, now)
                add_unsubscribed(conn, unsubscribed, now)

    def sender_flags(
        self, keys: Sequence[str], since: datetime, recipients: Sequence[str]
    ) -> tuple[set[str], set[str]]:
        """Of these sender keys, those acknowledged (or on the way) since ``since``; of these
        recipient addresses, those refused for good (a 5xx) before. One query each for a
        whole page. Refusal is by the exact address: a forged ``ann+x@`` that a server
        refuses must not stop replies to ``ann@``, though both share one rate-limit key."""
        o = schema.outbox.c
        wanted = sorted(set(keys))
        recent = select(o.sender_key).where(o.sender_key.in_(wanted), o.state.in_(ACTIVE),
                                            o.created_at >= since)  # fmt: skip
        # By key first (indexed), then the exact address among that inbox's rows.
        refused = select(o.recipient).where(o.sender_key.in_(wanted), o.permanent.is_(True),
                                            o.recipient.in_(sorted(set(recipients))))  # fmt: skip
        with self._connect() as conn:
            return set(conn.execute(recent).scalars()), set(conn.execute(refused).scalars())

    def confirmations_since(
        self, keys: Sequence[str], since: datetime, template: str = "withdrawal_confirmation"
    ) -> set[str]:
        """Of these sender keys: those sent (or due, or held) a confirmation of this
        ``template`` since ``since``. Confirmations are limited among themselves: an
        acknowledgement of a story does not stop the confirmation of its withdrawal, and one
        held for a person stops a second request being held beside it."""
        o = schema.outbox.c
        query = select(o.sender_key).where(o.sender_key.in_(sorted(set(keys))),
                                           o.template == template,
                                           o.state.in_(ACTIVE), o.created_at >= since)  # fmt: skip
        with self._connect() as conn:
            return set(conn.execute(query).scalars())

    def needs_confirmation(self) -> list[str]:
        """story_ids of requests held until a person confirms them, oldest first."""
        o = schema.outbox.c
        waiting = (o.state == ReplyState.HELD, o.reason == UNVERIFIED_REQUEST)
        query = select(o.story_id).where(*waiting).order_by(o.created_at)
        with self._connect() as conn:
            return list(conn.execute(query).scalars())

    def sent_since(self, since: datetime) -> int:
        """How many acknowledgements were sent since ``since`` (the hourly cap)."""
        o = schema.outbox.c
        query = select(func.count()).where(o.state == ReplyState.SENT, o.updated_at >= since)
        with self._connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def due(
        self, limit: int, now: datetime, exclude: Sequence[str] = ()
    ) -> list[tuple[Acknowledgement, str]]:
        """Up to ``limit`` pending acknowledgements due by ``now`` (not in ``exclude``), oldest
        first, each with its sender's display name (to greet them by). Nothing is marked."""
        o, s = schema.outbox, schema.stories
        due = (o.c.retry_at.is_(None)) | (o.c.retry_at <= now)
        query = (select(o, s.c.sender_name).join(s, s.c.story_id == o.c.story_id)
                 .where(o.c.state == ReplyState.PENDING, due, o.c.story_id.not_in(list(exclude)))
                 .order_by(o.c.created_at).limit(limit))  # fmt: skip
        with self._connect() as conn:
            found = conn.execute(query).mappings().all()
        return [(_acknowledgement(r, ReplyState.PENDING), r["sender_name"]) for r in found]

    def claim_ids(self, story_ids: Sequence[str], now: datetime) -> list[str]:
        """Mark these acknowledgements ``sending``, committed before anything goes; returns
        those that were still ``pending`` (only they may be sent)."""
        return self.finish_and_claim((), story_ids, now)

    def finish_and_claim(
        self, attempts: Sequence[Attempt], story_ids: Sequence[str], now: datetime
    ) -> list[str]:
        """``finish_many`` then ``claim_ids`` in one transaction: over SMTP, recording how one
        message went and claiming the next cost one commit, not two."""
        with self._begin() as conn:
            if attempts:
                finished = _finish_rows(attempts, now)
                conn.execute(_FINISH, finished)
                conn.execute(_FOLLOW, finished)
            if not story_ids:
                return []
            claimed = list(conn.execute(_CLAIM, {"ids": list(story_ids), "now": now}).scalars())
            add_events(conn, claimed, ReplyState.SENDING, now)
            return claimed

    def claim(
        self, limit: int, now: datetime, exclude: Sequence[str] = ()
    ) -> list[Acknowledgement]:
        """Up to ``limit`` due acknowledgements, marked ``sending`` and committed: ``due`` then
        ``claim_ids`` (which the sender calls apart, to render in between)."""
        found = [item for item, _ in self.due(limit, now, exclude)]
        claimed = set(self.claim_ids([item.story_id for item in found], now))
        return [replace(item, state=ReplyState.SENDING) for item in found
                if item.story_id in claimed]  # fmt: skip

    def finish(
        self, story_id: str, state: str, now: datetime, error: str | None = None,
        message_id: str | None = None, retry_at: datetime | None = None,
        permanent: bool = False, detail: str = "",
    ) -> None:  # fmt: skip
        """Record how an attempt ended: ``sent``, ``pending`` (retry at ``retry_at``) or
        ``failed`` (``permanent`` when the server refused the address for good); ``detail``
        is the reply history's reason code."""
        attempt = Attempt(story_id, state, error, message_id, retry_at, permanent, detail)
        self.finish_many([attempt], now)

    def finish_many(self, attempts: Sequence[Attempt], now: datetime) -> None:
        """Record how each attempt ended, all in one transaction (a page of pickup files)."""
        if attempts:
            self.finish_and_claim(attempts, (), now)

    def release_held(
        self, story_ids: Sequence[str] | None, state: str, now: datetime, who: str = ""
    ) -> int:
        """A person (``who``) has checked held acknowledgements (all, or these stories'):
        ``pending`` (it did not go: send it) or ``sent`` (it went). Returns how many changed."""
        o = schema.outbox
        query = update(o).where(o.c.state == ReplyState.HELD)
        if story_ids is not None:
            query = query.where(o.c.story_id.in_(list(story_ids)))
        else:  # "all" means interrupted sends: a request is confirmed one at a time, by name
            query = query.where(o.c.reason != UNVERIFIED_REQUEST)
        with self._begin() as conn:
            if story_ids is not None:  # a person confirmed these: held unsubscribes now apply
                add_unsubscribed(conn, held_unsubscribes(conn, story_ids), now)
            released = list(conn.execute(query.values(state=state, updated_at=now, retry_at=None)
                                         .returning(o.c.story_id)).scalars())  # fmt: skip
            add_events(conn, released, state, now, "released", who)
            return len(released)

    def interrupted(self) -> list[str]:
        """story_ids of acknowledgements a crash left in ``sending``."""
        o = schema.outbox.c
        with self._connect() as conn:
            query = select(o.story_id).where(o.state == ReplyState.SENDING)
            return list(conn.execute(query).scalars())

    def hold_interrupted(self, now: datetime) -> int:
        """Turn ``sending`` rows left by a crash into ``held``; returns how many."""
        o = schema.outbox
        with self._begin() as conn:
            held = list(conn.execute(update(o).where(o.c.state == ReplyState.SENDING)
                                     .values(state=ReplyState.HELD, updated_at=now)
                                     .returning(o.c.story_id)).scalars())  # fmt: skip
            add_events(conn, held, ReplyState.HELD, now, "interrupted")
            return len(held)

    def outbox_states(self) -> dict[str, str]:
        """story_id -> ``sent``/``pending``/``held``/``failed``/``suppressed:<reason>``."""
        o = schema.outbox.c
        with self._connect() as conn:
            found = conn.execute(select(o.story_id, o.state, o.reason)).all()
        # One being sent shows as pending: it may yet be retried.
        return {r[0]: ReplyState.shown(ReplyState.PENDING if r[1] == ReplyState.SENDING else r[1],
                                       r[2]) for r in found}  # fmt: skip

    def urgent_ids(self) -> set[str]:
        """Stories whose wording reads as a person in crisis."""
        o = schema.outbox.c
        with self._connect() as conn:
            return set(conn.execute(select(o.story_id).where(o.urgent.is_(True))).scalars())

    def outbox_counts(self) -> dict[str, int]:
        """How many acknowledgements are in each state (suppressed ones by reason)."""
        with self._connect() as conn:
            return state_counts(conn)


def state_counts(conn: Connection) -> dict[str, int]:
    """How many acknowledgements are in each state (suppressed ones by reason), in ``conn``."""
    o = schema.outbox.c
    query = select(o.state, o.reason, func.count()).group_by(o.state, o.reason)
    counts: dict[str, int] = {}
    for state, reason, count in conn.execute(query).all():
        name = ReplyState.shown(state, reason)
        counts[name] = counts.get(name, 0) + int(count)
    return dict(sorted(counts.items()))


def _acknowledgement(row: Any, state: str) -> Acknowledgement:
    return Acknowledgement(row["story_id"], row["reason"], row["template"], row["recipient"],
                           state, int(row["attempts"]), bool(row["urgent"]))  # fmt: skip


# The two statements the sender runs for every message, built once: building an UPDATE and
# its cache key anew cost SQLAlchemy 0.35 of the 0.55 ms a message's record-and-claim took.
def _finish_statement() -> Update:
    o = schema.outbox
    return (update(o).where(o.c.story_id == bindparam("id"))
            .values(state=bindparam("new_state"),
                    updated_at=bindparam("now", type_=schema.UtcDateTime()),
                    error=bindparam("err"), attempts=o.c.attempts + 1,
                    retry_at=bindparam("retry", type_=schema.UtcDateTime()),
                    permanent=bindparam("refused"),
                    message_id=func.coalesce(bindparam("mid"), o.c.message_id)))  # fmt: skip


def _claim_statement() -> Update:
    o = schema.outbox
    return (update(o).where(o.c.story_id.in_(bindparam("ids", expanding=True)),
                            o.c.state == ReplyState.PENDING)
            .values(state=ReplyState.SENDING,
                    updated_at=bindparam("now", type_=schema.UtcDateTime()))
            .returning(o.c.story_id))  # fmt: skip


_FINISH = _finish_statement()
_CLAIM = _claim_statement()
_FOLLOW = follow_statement()  # the reply history's event for each finished attempt


def _finish_rows(attempts: Sequence[Attempt], now: datetime) -> list[dict[str, Any]]:
    return [{"id": a.story_id, "new_state": a.state, "err": a.error, "retry": a.retry_at,
             "refused": a.permanent, "mid": a.message_id, "now": now, "detail": a.detail}
            for a in attempts]  # fmt: skip
