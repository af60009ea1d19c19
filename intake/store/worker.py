"""Store stage, the worker's own state: the mailbox lease and poll health. SQLAlchemy Core only.

A table group of ``Store`` (``store.worker``). The lease makes a second worker on the same
mailbox refuse to start; it expires on its own if its holder dies, and a holder on this host
whose process is gone is taken over at once. Poll health (consecutive failures, last success,
whether the team has been alerted) is one small JSON record, so ``status`` and the alerts read
the same thing; send health (the same shape, for handing acknowledgements over) and the
acknowledgement breaker are two more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from intake.store import dialect, schema
from intake.store.group import TableGroup


@dataclass(frozen=True, slots=True)
class PollHealth:
    """How polling (or, as send health, sending) has gone lately. Instants are ISO 8601
    strings (None: never). ``woken_at``: when IMAP IDLE last said something arrived (a poll
    is due at once); ``idle_drops``: how many times the IDLE connection was lost."""

    failures: int = 0
    last_attempt_at: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None
    alerted: bool = False
    woken_at: str | None = None
    idle_drops: int = 0


@dataclass(frozen=True, slots=True)
class Breaker:
    """The acknowledgement breaker. It trips when ``max_per_hour`` replies have gone within
    an hour and stays tripped, across hours and runs, until a person resumes it: ``sent`` is
    how many had gone when it tripped, ``alerted`` whether the team has been told. After a
    resume the hour is counted from ``resumed_at``, so the replies before it do not trip it
    again at once. Instants are ISO 8601 strings (None: never)."""

    tripped_at: str | None = None
    sent: int = 0
    alerted: bool = False
    resumed_at: str | None = None


class WorkerRows(TableGroup):
    """Lease and worker-state queries (``store.worker``)."""

    def acquire_lease(
        self, name: str, holder: str, now: datetime, ttl: timedelta, stale: str | None = None
    ) -> str | None:
        """Take or renew the lease ``name``; returns None when ``holder`` has it, else who has.

        One statement, so two workers starting at the same moment cannot both win. ``stale``
        names a holder known to be dead, whose lease may be taken before it expires.
        """
        leases = schema.leases
        row = {"name": name, "holder": holder, "expires_at": now + ttl}
        free = (leases.c.expires_at < now) | (leases.c.holder == holder)
        if stale:
            free = free | (leases.c.holder == stale)
        upsert = dialect.upsert(
            leases, row, ["name"], {"holder": holder, "expires_at": now + ttl}, where=free
        )
        with self._begin() as conn:
            conn.execute(upsert)
            current = conn.execute(select(leases.c.holder).where(leases.c.name == name)).scalar()
        return None if current == holder else str(current)

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease ``name`` now, expired or not (None: nobody)."""
        leases = schema.leases.c
        with self._connect() as conn:
            found = conn.execute(select(leases.holder).where(leases.name == name)).scalar()
        return None if found is None else str(found)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up, if ``holder`` still has it."""
        leases = schema.leases
        with self._begin() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))

    def last_housekeeping_at(self) -> datetime | None:
        """When housekeeping last ran (None: never)."""
        r = schema.runs.c
        with self._connect() as conn:
            return conn.execute(select(func.max(r.started_at))
                                .where(r.command == "housekeeping")).scalar()  # fmt: skip

    def poll_health(self) -> PollHealth:
        """The poll record (all zero before the first poll)."""
        found = self._state("poll")
        return PollHealth(**found) if found else PollHealth()

    def save_poll_health(self, health: PollHealth, now: datetime) -> None:
        """Replace the poll record."""
        self._save_state("poll", asdict(health), now)

    def token_expiry(self, channel: str = "mailbox") -> str | None:
        """When the OAuth2 token ``channel`` (``mailbox`` or ``smtp``) last logged in with
        expires (ISO 8601; None: never logged in by OAuth2). The expiry only: tokens are never
        stored."""
        found = self._state(_named("oauth2", channel))
        return str(found["expires_at"]) if found else None

    def save_token_expiry(
        self, expires_at: datetime, now: datetime, channel: str = "mailbox"
    ) -> None:
        """Record the expiry of the token ``channel`` just used (for ``status``)."""
        self._save_state(_named("oauth2", channel), {"expires_at": expires_at.isoformat()}, now)

    def credential_expiry(self, channel: str = "mailbox") -> dict[str, Any]:
        """When ``channel``'s OAuth2 credentials the provider dated expire (``expires``: kind
        -> ISO 8601) and whether the team was told (``alerted``). Dates only, never a
        credential."""
        found = self._state(_named("oauth2_credentials", channel))
        return found or {"expires": {}, "alerted": False}

    def save_credential_expiry(
        self, record: dict[str, Any], now: datetime, channel: str = "mailbox"
    ) -> None:
        """Replace ``channel``'s credential expiry record."""
        self._save_state(_named("oauth2_credentials", channel), record, now)

    def send_health(self) -> PollHealth:
        """The send record: connection-level failures handing acknowledgements over."""
        found = self._state("send")
        return PollHealth(**found) if found else PollHealth()

    def save_send_health(self, health: PollHealth, now: datetime) -> None:
        """Replace the send record."""
        self._save_state("send", asdict(health), now)

    def breaker(self) -> Breaker:
        """The acknowledgement breaker (never tripped before the first trip)."""
        found = self._state("breaker")
        return Breaker(**found) if found else Breaker()

    def save_breaker(self, breaker: Breaker, now: datetime) -> None:
        """Replace the breaker record."""
        self._save_state("breaker", asdict(breaker), now)

    def _state(self, name: str) -> dict[str, Any] | None:
        w = schema.worker_state.c
        with self._connect() as conn:
            found = conn.execute(select(w.value).where(w.name == name)).scalar()
        return dict(found) if found else None

    def _save_state(self, name: str, value: dict[str, Any], now: datetime) -> None:
        table = schema.worker_state
        with self._begin() as conn:
            done = conn.execute(update(table).where(table.c.name == name)
                                .values(value=value, updated_at=now))  # fmt: skip
            if not done.rowcount:
                conn.execute(insert(table).values(name=name, value=value, updated_at=now))


def _named(record: str, channel: str) -> str:
    # The mailbox's records keep the names they had before SMTP had a client of its own.
    return record if channel == "mailbox" else f"{record}_{channel}"
