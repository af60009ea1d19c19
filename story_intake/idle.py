"""The worker's IMAP IDLE watcher: a thread that waits on IDLE and wakes the poll loop the
moment the server says a message arrived.

Polling stays the safety net: when the server does not offer IDLE, or ``[schedule] idle`` is
off, or the mailbox is the embedded Maildir, the watcher returns and the worker polls every
``poll_seconds`` as before. The watcher never fetches: it records the arrival in poll health
(``woken_at``, which makes the poll due at once) and wakes the poll loop, so passes still run
one at a time, in the poll loop, under the worker's lease.

Keeping the connection honest: IDLE is renewed (DONE, NOOP, IDLE) every
``idle_renew_seconds`` and as soon as the server has said nothing for
``idle_silence_seconds``; a probe that gets no answer, a BYE or a closed socket drops the
connection, which is counted and reconnected with backoff; failed reconnections count as failed
attempts in poll health, so the team is alerted after ``[alerts] after_failures``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from intake.errors import FetchError, PipelineError
from intake.sources.imap import ImapSettings
from intake.sources.imap_idle import IdleConnection
from story_intake.app_settings import ScheduleSettings, Settings
from story_intake.jobs import note_idle, record_attempt
from story_intake.schedule import idle_renew_due, idle_retry_seconds

log = logging.getLogger("story_intake.idle")
SLICE = 1.0  # seconds per wait on the socket: how quickly a stop is seen


def watch(settings: Settings, stop: threading.Event, wake: Callable[[], None]) -> None:
    """Wait on IDLE until ``stop``, calling ``wake`` after each arrival (and each time IDLE
    starts listening: what arrived before is fetched at once). Returns at once when IDLE is
    not to be used; the thread's body in ``worker.serve``."""
    box = settings.mailbox
    if not isinstance(box, ImapSettings) or not settings.schedule.idle:
        return
    failures = 0
    while not stop.is_set():
        dropped: bool | None = True
        try:
            failures, dropped = _session(box, settings, stop, wake, failures)
        except PipelineError as err:  # the store, busy or failing: polling goes on; retry
            log.error("IDLE watcher: %s", err)
            failures += 1
        if dropped is None:
            return
        if failures or dropped:  # 1 s after a drop, then doubling while reconnecting fails
            stop.wait(idle_retry_seconds(failures, settings.schedule.poll_seconds))


def _session(
    box: ImapSettings, settings: Settings, stop: threading.Event, wake: Callable[[], None],
    failures: int,
) -> tuple[int, bool | None]:  # fmt: skip
    """One IDLE connection, from connecting to losing it: (failed connections in a row,
    whether it was lost; None when IDLE is not offered and the watcher ends)."""
    with IdleConnection(box) as connection:
        try:
            offered = connection.open()
        except FetchError as err:
            log.warning("IDLE reconnection failed (%d in a row): %s", failures + 1, err)
            record_attempt(settings, datetime.now(UTC), f"IDLE: {err}"[:300])
            return failures + 1, False
        if not offered:
            log.info("the server does not offer IDLE: polling every %ds",
                     settings.schedule.poll_seconds)  # fmt: skip
            return 0, None
        try:
            idle_until(connection, settings, stop, wake)
        except FetchError as err:
            log.warning("IDLE connection lost, reconnecting: %s", err)
            note_idle(settings, datetime.now(UTC), dropped=True)
            return 0, True
    return 0, False


def idle_until(
    connection: IdleConnection, settings: Settings, stop: threading.Event,
    wake: Callable[[], None],
) -> None:  # fmt: skip
    """Idle on the open ``connection`` until ``stop``, renewing it as ``idle_renew_due``
    says; FetchError when the connection is lost."""
    schedule: ScheduleSettings = settings.schedule
    connection.start()
    log.info("waiting with IDLE (renewed every %ds)", schedule.idle_renew_seconds)
    # One pass now that IDLE listens: what came in before it did (while connecting, or while
    # the connection was down) is not announced again.
    _arrived(settings, wake)
    renewed = heard = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if idle_renew_due(now - renewed, now - heard, schedule.idle_renew_seconds,
                          schedule.idle_silence_seconds):  # fmt: skip
            said = connection.renew()
            renewed = heard = time.monotonic()
        else:
            said = connection.wait(SLICE)
            if said.anything:
                heard = time.monotonic()
        if said.arrived:
            _arrived(settings, wake)


def _arrived(settings: Settings, wake: Callable[[], None]) -> None:
    note_idle(settings, datetime.now(UTC), arrived=True)
    wake()
