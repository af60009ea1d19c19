"""The scheduled worker: APScheduler wiring, the mailbox lease and a clean stop on a signal.

The only module that imports APScheduler's scheduler. The jobs are plain functions of
``(settings, now)`` from ``story_intake.jobs`` that tests call directly; each decides for itself
whether it is due (``story_intake.schedule``), so the scheduler only has to tick. SIGTERM or SIGINT
sets ``stop``: the job in hand finishes the batch it is on, commits and returns, the lease is
given up, and the process exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from intake.errors import PipelineError
from intake.sources import mailbox_name
from intake.store.engine import Store
from story_intake.app_settings import Settings

log = logging.getLogger("story_intake.worker")
LEASE_TTL = timedelta(minutes=2)  # a dead worker's lease frees itself after this
RENEW_EVERY = 30  # seconds
MAX_TICK = 30  # seconds between due-checks of the digest and housekeeping

Job = Callable[[Settings, datetime, threading.Event], object]
# The IDLE watcher's thread body: (settings, stop, wake); see ``story_intake.idle``.
Watch = Callable[[Settings, threading.Event, Callable[[], None]], None]
WATCH_STOP = 10  # seconds a stop waits for the IDLE watcher to log out


class WorkerBusy(PipelineError):
    """Another worker holds this mailbox's lease."""


@dataclass(frozen=True, slots=True)
class Jobs:
    """The worker's jobs, each a function of (settings, now, stop)."""

    poll: Job
    digest: Job
    housekeeping: Job
    watch: Watch | None = None  # wakes the poll when IMAP IDLE says mail arrived


def lease_name(settings: Settings) -> str:
    """What the lease is on: the mailbox, so two workers can never poll the same one."""
    return mailbox_name(settings.mailbox)


def serve(settings: Settings, jobs: Jobs, stop: threading.Event | None = None) -> int:
    """Run the jobs on their schedules until ``stop`` is set (by SIGTERM/SIGINT); returns 0.

    WorkerBusy when another worker holds the mailbox's lease.
    """
    stop, wake = stop or threading.Event(), threading.Event()
    with holding_lease(settings, stop):
        _on_signals(stop)
        scheduler = BackgroundScheduler(timezone=UTC)
        poll_every = settings.schedule.poll_seconds
        tick = min(poll_every, MAX_TICK)
        _every(scheduler, "digest", tick, _guarded(jobs.digest, settings, stop))
        _every(scheduler, "housekeeping", max(tick, 60),
               _guarded(jobs.housekeeping, settings, stop))  # fmt: skip
        threads = [
            threading.Thread(
                target=_poll_loop,
                name="poll",
                args=(_guarded(jobs.poll, settings, stop), stop, wake, tick),
            )
        ]
        if jobs.watch is not None:
            threads.append(threading.Thread(target=jobs.watch, args=(settings, stop, wake.set),
                                            name="idle", daemon=True))  # fmt: skip
        scheduler.start()
        for thread in threads:
            thread.start()
        log.info("worker started: polling every %ds", poll_every)
        try:
            stop.wait()
        finally:
            wake.set()  # the poll loop sees ``stop`` now, not at its next tick
            for thread in threads:
                thread.join(WATCH_STOP if thread.daemon else None)
            scheduler.shutdown(wait=True)  # the job in hand sees ``stop``, ends after its batch
    log.info("worker stopped")
    return 0


def _poll_loop(poll: Callable[[], None], stop: threading.Event, wake: threading.Event,
               tick: int) -> None:  # fmt: skip
    """Passes one at a time: the poll job every ``tick`` seconds (it decides whether it is
    due), and at once when ``wake`` is set (IDLE saw mail arrive, even during a pass)."""
    while not stop.is_set():
        wake.clear()
        poll()
        wake.wait(tick)


@contextmanager
def holding_lease(settings: Settings, stop: threading.Event) -> Iterator[None]:
    """Hold the mailbox's lease for the block (the worker, or one ``once`` pass), renewed
    every RENEW_EVERY seconds; WorkerBusy when another process holds it. If the lease is lost
    (this process stalled past its TTL and another took over) ``stop`` is set."""
    name = lease_name(settings)
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    _acquire(settings, name, holder)
    done = threading.Event()
    renewer = threading.Thread(target=_keep_renewing, args=(settings, name, holder, stop, done),
                               name="lease", daemon=True)  # fmt: skip
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()
        with Store(settings.store) as store:
            store.worker.release_lease(name, holder)


def _every(
    scheduler: BackgroundScheduler, name: str, seconds: int, job: Callable[[], None]
) -> None:
    # One instance at a time; a tick missed while the last one ran is dropped, not queued.
    scheduler.add_job(job, IntervalTrigger(seconds=seconds), id=name, max_instances=1,
                      coalesce=True, misfire_grace_time=max(seconds, 30),
                      next_run_time=datetime.now(UTC))  # fmt: skip


def _guarded(job: Job, settings: Settings, stop: threading.Event) -> Callable[[], None]:
    def run() -> None:
        if stop.is_set():
            return
        try:
            job(settings, datetime.now(UTC), stop)
        except Exception:  # the worker loop's one broad except: log, and tick again later
            log.exception("job %s failed", getattr(job, "__name__", "job"))

    return run


def _acquire(settings: Settings, name: str, holder: str) -> None:
    with Store(settings.store) as store:
        current = store.worker.lease_holder(name)
        stale = current if current and _is_dead_here(current) else None
        other = store.worker.acquire_lease(name, holder, datetime.now(UTC), LEASE_TTL, stale)
    if other:
        raise WorkerBusy(f"another worker ({other.rsplit(':', 1)[0]}) is already polling this "
                         "mailbox; stop it first, or wait for its lease to expire")  # fmt: skip


def _keep_renewing(
    settings: Settings, name: str, holder: str, stop: threading.Event, done: threading.Event
) -> None:
    while not done.wait(RENEW_EVERY):
        try:
            with Store(settings.store) as store:
                other = store.worker.acquire_lease(name, holder, datetime.now(UTC), LEASE_TTL)
        except PipelineError as err:  # a busy store: the lease has minutes left, try again
            log.warning("lease not renewed: %s", err)
            continue
        if other:  # someone took it over (we stalled past the TTL): two pollers must not run
            log.error("lease lost to another worker: stopping")
            stop.set()
            return


def _is_dead_here(holder: str) -> bool:
    """Whether ``holder`` (host:pid:token) is a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the work in hand, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
