"""Store stage, the digests: windows, their rendered messages and states. SQLAlchemy Core only.

A table group of ``Store`` (``store.digests``). A digest's stories are fixed when its row is
created (``open``): it claims them in that transaction (``intake.store.digest_claims``); the
window's start and end are labels. The rendered message is stored before anything is sent
(``rendered``), sending is claimed (``sending``) and finished (``sent``). A crash anywhere
leaves a row the next run takes up where it stopped, with the same stories, bytes and
Message-ID: one digest each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from intake.records import (
    BEGINNING,
    UNVERIFIED_REQUEST,
    Digest,
    DigestEntry,
    DigestState,
    IntakeHealth,
    ReplyState,
    StoryStatus,
)
from intake.store import digest_claims, rows, schema
from intake.store.group import TableGroup

UNFINISHED = (DigestState.OPEN, DigestState.RENDERED, DigestState.SENDING)
FINISHED = (DigestState.SENT, DigestState.WRITTEN, DigestState.SKIPPED)


class DigestRows(TableGroup):
    """Digest queries (``store.digests``)."""

    def open_digest(self, now: datetime) -> Digest:
        """The unfinished digest if there is one (its window and stories stay as they were),
        else a new one from the end of the last finished digest to ``now``, which claims
        every story (and health row) committed so far, in the same transaction."""
        with self._begin() as conn:
            found = _unfinished(conn)
            if found is not None and found["claims"] is None and found["state"] == DigestState.OPEN:
                _start_claiming(conn, int(found["id"]))  # opened by a version before claiming
            if found is not None:
                return _digest(found)
            start = _last_end(conn) or BEGINNING
            row = {"start": start, "end": max(now, start), "state": DigestState.OPEN,
                   "message_id": "", "stories": 0, "health": {}, "attempts": 0, "created_at": now,
                   "updated_at": now}  # fmt: skip
            created = conn.execute(insert(schema.digests).values(row)).inserted_primary_key
            assert created is not None  # an insert always has a primary key
            _start_claiming(conn, int(created[0]))
        return Digest(int(created[0]), start, max(now, start), DigestState.OPEN)

    def next_window(self, now: datetime) -> tuple[int | None, datetime, datetime]:
        """What a digest built now would show, without opening one (a preview): the
        unfinished digest's id and window, or None (the unclaimed rows) and the next window."""
        with self._connect() as conn:
            found = _unfinished(conn)
            if found is not None and found["claims"]:
                return int(found["id"]), found["start"], found["end"]
            start = _last_end(conn) or BEGINNING
        return None, start, max(now, start)

    def digest_unfinished(self) -> bool:
        """Whether a digest was opened but not finished (a crash, or a failed hand-over)."""
        with self._connect() as conn:
            return _unfinished(conn) is not None

    def first_run_at(self) -> datetime | None:
        """When the pipeline first ran or stored a story in this store (None: never)."""
        with self._connect() as conn:
            found = [
                conn.execute(select(func.min(schema.runs.c.started_at))).scalar(),
                conn.execute(select(func.min(schema.stories.c.stored_at))).scalar(),
            ]
        return min((at for at in found if at is not None), default=None)

    def last_digest_end(self) -> datetime | None:
        """Where the last finished digest's window ended (None before the first)."""
        with self._connect() as conn:
            return _last_end(conn)

    def previous_health(self, before_id: int | None = None) -> IntakeHealth | None:
        """The counts of the last finished digest (before ``before_id``), for "change since"."""
        d = schema.digests.c
        query = select(d.health).where(d.state.in_(FINISHED)).order_by(d.id.desc()).limit(1)
        if before_id is not None:
            query = query.where(d.id < before_id)
        with self._connect() as conn:
            found = conn.execute(query).scalar()
        return _health(found) if found else None

    def save_rendered(
        self, digest_id: int, message_id: str, data: bytes, stories: int, health: IntakeHealth,
        now: datetime,
    ) -> None:  # fmt: skip
        """Keep the rendered message and the window's counts: ``open`` -> ``rendered``."""
        values = {"state": DigestState.RENDERED, "message_id": message_id, "data": data,
                  "stories": stories, "health": _health_row(health), "updated_at": now}  # fmt: skip
        self._update_digest(digest_id, (DigestState.OPEN,), values)

    def claim_digest(self, digest_id: int, now: datetime) -> bool:
        """``rendered`` (or ``sending`` after a crash) -> ``sending``; False if someone else
        finished it meanwhile."""
        values = {"state": DigestState.SENDING, "updated_at": now,
                  "attempts": schema.digests.c.attempts + 1}  # fmt: skip
        return self._update_digest(digest_id, (DigestState.RENDERED, DigestState.SENDING), values)

    def finish_digest(
        self, digest_id: int, state: str, now: datetime, error: str | None = None
    ) -> None:
        """Record how an attempt ended: ``sent``/``written``, or back to ``rendered`` with the
        error, to be tried again by the next run."""
        values = {"state": state, "updated_at": now, "error": error}
        if state in FINISHED:
            values["data"] = None  # the excerpts are in the .html file; no second copy
        self._update_digest(digest_id, UNFINISHED, values)

    def skip_digest(self, digest_id: int, now: datetime) -> None:
        """``open`` -> ``skipped`` (no story to show, and ``send_empty`` is off), handing
        back what it claimed so that the next digest reports it (``digest_claims.release``)."""
        d = schema.digests
        with self._begin() as conn:
            skip = (update(d).where(d.c.id == digest_id, d.c.state == DigestState.OPEN)
                    .values(state=DigestState.SKIPPED, updated_at=now))  # fmt: skip
            done = conn.execute(skip).rowcount
            if done:
                digest_claims.release(conn, digest_id)

    def digest_entries(self, digest_id: int | None) -> Iterator[DigestEntry]:
        """The stories ``digest_id`` claimed (None: those no digest has claimed yet) with
        their triage and acknowledgement, oldest first, streamed."""
        s, o = schema.stories, schema.outbox
        query = (schema.stories_with_triage()
                 .add_columns(o.c.state.label("ack_state"), o.c.reason.label("ack_reason"),
                              o.c.urgent.label("ack_urgent"))
                 .outerjoin(o, o.c.story_id == s.c.story_id)
                 .where(digest_claims.member(s, digest_id)))  # fmt: skip
        with self._connect() as conn:
            for row in conn.execute(query).mappings():
                state, reason = row["ack_state"], row["ack_reason"]
                ack = ReplyState.shown(state, reason)
                if state == ReplyState.HELD and reason == UNVERIFIED_REQUEST:  # the person's cue
                    ack = "needs confirmation (release --story to confirm)"
                ack = ReplyState.PENDING if ack == ReplyState.SENDING else ack
                yield DigestEntry(rows.row_story(row), rows.row_triage(row), ack,
                                  bool(row["ack_urgent"]),
                                  row["status"] == StoryStatus.ON_HOLD)  # fmt: skip

    def intake_health(self, digest_id: int | None) -> IntakeHealth:
        """What intake did in the runs, quarantine entries and acknowledgement outcomes
        ``digest_id`` claimed (None: those not claimed yet)."""
        with self._connect() as conn:
            fetched, stored, duplicates, failed = _run_totals(conn, digest_id)
            q = schema.quarantine
            reasons = conn.execute(
                select(q.c.stage, q.c.reason, func.count())
                .where(digest_claims.member(q, digest_id))
                .group_by(q.c.stage, q.c.reason)
            ).all()
            o = schema.outbox.c
            held = conn.execute(select(func.count()).where(o.state == ReplyState.HELD)).scalar()
            acks = digest_claims.outcome_counts(conn, digest_id)
        return IntakeHealth(
            fetched=fetched, stored=stored, duplicates=duplicates,
            quarantined=sum(int(n) for *_, n in reasons),
            quarantine_reasons=_tally((f"{stage}: {_error_type(reason)}", n)
                                      for stage, reason, n in reasons),
            acknowledgements=_tally((ReplyState.shown(state, reason), n)
                                    for state, reason, n in acks),
            held=int(held or 0), failed_polls=failed,
        )  # fmt: skip

    def _update_digest(self, digest_id: int, states: tuple[str, ...], values: Any) -> bool:
        d = schema.digests
        with self._begin() as conn:
            result = conn.execute(update(d).where(d.c.id == digest_id, d.c.state.in_(states))
                                  .values(**values))  # fmt: skip
            return bool(result.rowcount)


def _unfinished(conn: Connection) -> Any:
    """The oldest digest opened but not finished (its row mapping), or None."""
    d = schema.digests
    return conn.execute(select(d).where(d.c.state.in_(UNFINISHED))
                        .order_by(d.c.id).limit(1)).mappings().first()  # fmt: skip


def _last_end(conn: Connection) -> datetime | None:
    d = schema.digests.c
    return conn.execute(select(func.max(d.end)).where(d.state.in_(FINISHED))).scalar()


def _start_claiming(conn: Connection, digest_id: int) -> None:
    digest_claims.adopt_legacy(conn)  # before this digest counts as claiming
    d = schema.digests
    conn.execute(update(d).where(d.c.id == digest_id).values(claims=True))
    digest_claims.claim(conn, digest_id)


def _run_totals(conn: Connection, digest_id: int | None) -> tuple[int, int, int, int]:
    r = schema.runs
    found = conn.execute(select(r.c.counts, r.c.error)
                         .where(digest_claims.member(r, digest_id))).all()  # fmt: skip
    totals = [sum(int(c.get(k, 0)) for c, _ in found) for k in ("fetched", "stored", "duplicates")]
    return totals[0], totals[1], totals[2], sum(1 for _, error in found if error)


def _error_type(reason: str) -> str:
    # "ParseError: <details>" -> "ParseError": the details can quote the message.
    return reason.partition(":")[0][:60]


def _tally(pairs: Iterator[tuple[str, Any]] | Any) -> tuple[tuple[str, int], ...]:
    totals: dict[str, int] = {}
    for name, count in pairs:
        totals[name] = totals.get(name, 0) + int(count)
    return tuple(sorted(totals.items()))


def _digest(row: Any) -> Digest:
    return Digest(int(row["id"]), row["start"], row["end"], row["state"], row["message_id"],
                  row["data"] or b"", int(row["stories"]))  # fmt: skip


def _health_row(health: IntakeHealth) -> dict[str, Any]:
    return {"fetched": health.fetched, "stored": health.stored,
            "duplicates": health.duplicates, "quarantined": health.quarantined,
            "acknowledgements": dict(health.acknowledgements), "held": health.held,
            "failed_polls": health.failed_polls}  # fmt: skip


def _health(row: dict[str, Any]) -> IntakeHealth:
    return IntakeHealth(fetched=int(row.get("fetched", 0)), stored=int(row.get("stored", 0)),
                        duplicates=int(row.get("duplicates", 0)),
                        quarantined=int(row.get("quarantined", 0)),
                        acknowledgements=tuple(sorted(row.get("acknowledgements", {}).items())),
                        held=int(row.get("held", 0)),
                        failed_polls=int(row.get("failed_polls", 0)))  # fmt: skip
