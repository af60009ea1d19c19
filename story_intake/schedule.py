"""When jobs are due: pure predicates of ``now`` over the stored state. Wraps APScheduler's cron.

The only module that imports APScheduler's triggers (``worker`` wires the scheduler itself).
A cron expression is read as crontab(5) reads it: in particular the weekday field counts from
Sunday = 0 (or 7), where APScheduler 3's own numbering starts at Monday = 0, so numeric
weekdays are translated to names before APScheduler sees them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from intake.errors import ConfigError

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMERIC_PART = re.compile(r"(\*|\d{1,2})(?:-(\d{1,2}))?(?:/(\d{1,2}))?")
MAX_POLL_BACKOFF = timedelta(hours=1)


def cron_trigger(expression: str, timezone: str, key: str = "digest.schedule") -> CronTrigger:
    """The trigger for a 5-field crontab expression in ``timezone``; ConfigError naming ``key``
    (or ``digest.timezone``) when either is not valid."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError("digest.timezone is not a known time zone") from err
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError(f"{key} must have 5 fields: minute hour day month weekday")
    try:
        fields[4] = crontab_weekdays(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
    except ValueError as err:
        raise ConfigError(f"{key} is not a valid cron expression ({err})") from err


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field with numbers (Sunday = 0 or 7) rewritten as day names."""
    parts = []
    for part in field.lower().split(","):
        match = _NUMERIC_PART.fullmatch(part)
        if not match:  # names ("mon-fri") already mean the same to both
            parts.append(part)
            continue
        first, last, step = match.groups()
        low = 0 if first == "*" else int(first)
        high = 7 if first == "*" else int(last or first)
        if high > 7 or low > high:
            raise ValueError(f"weekday {part!r} is out of range")
        days = range(low, high + 1, int(step or 1))
        parts.extend(_DAYS[day % 7] for day in days)
    return ",".join(dict.fromkeys(parts))


def digest_due(trigger: CronTrigger, last_end: datetime | None, now: datetime) -> bool:
    """Whether a scheduled time has passed since the last digest's window ended.

    Before any digest, ``last_end`` is None and the first scheduled time from now on is awaited
    (the caller passes when the worker first saw stories)."""
    if last_end is None:
        return False
    fire = trigger.get_next_fire_time(None, last_end + timedelta(microseconds=1))
    return fire is not None and fire <= now


def next_poll_at(
    last_attempt_at: datetime | None, failures: int, poll_seconds: int
) -> datetime | None:
    """When the next poll may start: right away the first time, ``poll_seconds`` after the
    last one, and after failures twice as long each time (up to an hour) so a dead server is
    not hammered."""
    if last_attempt_at is None:
        return None
    interval = timedelta(seconds=poll_seconds)
    if failures:
        interval = max(interval, min(interval * 2 ** (failures - 1), MAX_POLL_BACKOFF))
    return last_attempt_at + interval


def poll_due(last_attempt_at: datetime | None, failures: int, poll_seconds: int,
             now: datetime, woken_at: datetime | None = None) -> bool:  # fmt: skip
    """Whether a poll should start at ``now`` (see ``next_poll_at``), or at once when IDLE
    said something arrived (``woken_at``) since the last one began: the server that just
    spoke is up, so no backoff holds the new message back."""
    if woken_at is not None and (last_attempt_at is None or woken_at > last_attempt_at):
        return True
    due = next_poll_at(last_attempt_at, failures, poll_seconds)
    # Half a second of slack: the scheduler's tick may fire a hair before the exact instant.
    return due is None or due <= now + timedelta(milliseconds=500)


def idle_renew_due(
    since_renewed: float, since_heard: float, renew_seconds: int, silence_seconds: int
) -> bool:
    """Whether the IDLE connection should be renewed (DONE, NOOP, IDLE) now: at least every
    ``renew_seconds`` (RFC 2177: before a server's 30-minute timeout), and sooner when the
    server has said nothing for ``silence_seconds``, so a dead connection is found (the
    NOOP gets no answer) instead of waited on for ever."""
    return since_renewed >= renew_seconds or since_heard >= silence_seconds


def idle_retry_seconds(failures: int, poll_seconds: int) -> float:
    """How long to wait before reconnecting IDLE after ``failures`` failed attempts in a row
    (0: it just dropped): 1 s, then twice as long each time, never longer than a poll
    interval (the poll is the safety net meanwhile) nor MAX_POLL_BACKOFF."""
    cap = min(poll_seconds, MAX_POLL_BACKOFF.total_seconds())
    return float(max(1.0, min(2.0**failures, cap)))


def housekeeping_due(last_at: datetime | None, now: datetime) -> bool:
    """Whether the daily housekeeping should run: never run, or not for a day."""
    return last_at is None or now - last_at >= timedelta(days=1)
