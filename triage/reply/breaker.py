"""Acknowledge stage, the breaker: how many replies may still go, and when it latches. Pure.

Imports the standard library and ``intake.store.worker`` (the record). A flood of stories (a
campaign, a forwarding loop, someone scripting variants of an address) must not become a flood
of mail from the team's address: once ``max_per_hour`` replies have gone within an hour the
breaker trips, and it stays tripped, whatever the clock says, until a person resumes it
(``resume``, or ``release --all``) and has looked at why. Replies wait as ``pending``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from intake.store.worker import Breaker

HOUR = timedelta(hours=1)


def window_start(breaker: Breaker, now: datetime) -> datetime:
    """Where the hour that counts towards ``max_per_hour`` starts: an hour ago, or at the last
    resume if that was later (what went before it has been looked at)."""
    start = now - HOUR
    if breaker.resumed_at:
        start = max(start, datetime.fromisoformat(breaker.resumed_at))
    return start


def room(breaker: Breaker, max_per_hour: int, sent_in_window: int) -> int:
    """How many more replies may go now: none while tripped."""
    return 0 if breaker.tripped_at else max(0, max_per_hour - sent_in_window)


def tripped(breaker: Breaker, sent: int, now: datetime) -> Breaker:
    """The breaker tripped at ``now`` with ``sent`` replies in the hour; the team not yet told."""
    return replace(breaker, tripped_at=now.isoformat(), sent=sent, alerted=False)


def resumed(now: datetime) -> Breaker:
    """The breaker a person has resumed at ``now``."""
    return Breaker(resumed_at=now.isoformat())
