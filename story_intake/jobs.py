"""The worker's jobs: plain functions of (settings, now) that ``worker.serve`` ticks and the
command line runs once. Whether each is due is a pure predicate of settings and ``now``
(``story_intake.schedule``); tests call the jobs directly, synchronously.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from intake import report
from intake.errors import PipelineError
from intake.records import RunCounts
from intake.sources import Source, open_source
from intake.sources.maildir import MaildirSettings
from intake.store.engine import Store
from intake.store.worker import PollHealth
from story_intake.app_settings import Settings
from story_intake.pipeline import run_once
from story_intake.retrain import retrain_if_corrected
from story_intake.schedule import cron_trigger, digest_due, housekeeping_due, poll_due
from story_intake.warm import Warm
from triage.alerts import alert_due, record_poll, send_alert
from triage.digest.deliver import DigestContext, DigestOutcome, send_digest
from triage.erasure import Folders
from triage.privacy import housekeeping

log = logging.getLogger("story_intake")
# Poll health is one record written by the poll job and by the IDLE watcher's thread: each
# read-modify-write holds this, so neither loses the other's update.
HEALTH_LOCK = threading.Lock()


def poll_job(
    settings: Settings, now: datetime, stop: threading.Event | None = None,
    warm: Warm | None = None,
) -> bool:  # fmt: skip
    """The worker's poll: ``run_once`` when due, its health recorded, the team alerted after
    ``[alerts] after_failures`` failures in a row and told when it works again. ``warm``: what
    the worker keeps loaded between passes (``story_intake.warm``).

    Returns whether a pass ran (False: not due, the last failure's backoff still running).
    """
    with Store(settings.store) as store:
        health = store.worker.poll_health()
    last, woken = _instant(health.last_attempt_at), _instant(health.woken_at)
    if not poll_due(last, health.failures, settings.schedule.poll_seconds, now, woken):
        return False
    counts, error = RunCounts(), None
    try:
        counts = run_once(settings, now, stop=stop, warm=warm)
    except Exception as err:  # the worker loop's one broad except: record it and go on
        # Our own errors say what failed without personal data; others by type alone.
        error = str(err)[:300] if isinstance(err, PipelineError) else type(err).__name__
        log.error("poll failed (%d in a row): %s", health.failures + 1, error)
    record_attempt(settings, now, error)
    with Store(settings.store) as store:
        store.runs.record_run("poll", now, datetime.now(UTC), asdict(counts), error)
    if error is None:
        log.info("poll %s", report.counts_line(counts))
    return True


def record_attempt(settings: Settings, now: datetime, error: str | None) -> PollHealth:
    """Record one attempt to reach the mailbox (a pass, or an IDLE reconnection) in poll
    health, alerting the team after ``[alerts] after_failures`` failures in a row and when it
    works again. Read and written under HEALTH_LOCK: the IDLE watcher's thread writes too."""
    with HEALTH_LOCK:
        with Store(settings.store) as store:
            health = record_poll(store.worker.poll_health(), now, error)
        action = alert_due(health, settings.alerts.after_failures)
        if action:
            health = send_alert(action, health, now, settings.alerts, settings.smtp,
                                settings.acknowledgement.team_name)  # fmt: skip
        with Store(settings.store) as store:
            store.worker.save_poll_health(health, now)
    return health


def note_idle(settings: Settings, now: datetime, *, arrived: bool = False,
              dropped: bool = False) -> None:  # fmt: skip
    """Record what the IDLE watcher saw: a message ``arrived`` (a poll is due at once), or
    the connection ``dropped`` (counted; ``status`` shows it)."""
    with HEALTH_LOCK, Store(settings.store) as store:
        health = store.worker.poll_health()
        if arrived:
            health = replace(health, woken_at=now.isoformat())
        if dropped:
            health = replace(health, idle_drops=health.idle_drops + 1)
        store.worker.save_poll_health(health, now)


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def digest_job(
    settings: Settings, now: datetime, stop: threading.Event | None = None
) -> DigestOutcome | None:
    """The scheduled digest: sent when a ``[digest] schedule`` time has passed since the last
    one (or since the pipeline first ran), or to finish one a crash interrupted."""
    trigger = cron_trigger(settings.digest.schedule, settings.digest.timezone)
    with Store(settings.store) as store:
        last = store.digests.last_digest_end() or store.digests.first_run_at()
        if not (store.digests.digest_unfinished() or digest_due(trigger, last, now)):
            return None
        return send_digest(store, now, digest_context(settings))


def housekeeping_job(
    settings: Settings, now: datetime, stop: threading.Event | None = None
) -> dict[str, int] | None:
    """Retention: purge what has expired (rows, var files, and the mailbox when
    ``[retention] purge_mailbox``), at most once a day. Returns the counts, None if not due."""
    with Store(settings.store) as store:
        if not housekeeping_due(store.worker.last_housekeeping_at(), now):
            return None
    return run_housekeeping(settings, now)


def run_housekeeping(settings: Settings, now: datetime) -> dict[str, int]:
    """Retention now, whenever it last ran (``story-intake housekeeping``, for deployments
    that run ``once`` from cron or a timer instead of the worker), then the tagger retrained
    when reviewers' corrections changed its data (after retention: a purged story's
    correction is no longer trained on); returns the counts."""
    with Store(settings.store) as store:
        with privacy_mailbox(settings) as mailbox:
            counts = housekeeping(store, now, settings.retention, var_folders(settings), mailbox)
        store.runs.record_run("housekeeping", now, datetime.now(UTC), counts, None)
        counts["tagger_retrained"] = int(retrain_if_corrected(settings.tagger, store) is not None)
    return counts


@contextmanager
def privacy_mailbox(settings: Settings) -> Iterator[Source | None]:
    """The opened mailbox when privacy work may delete from it, else None: the mailbox is
    then left as it is. An IMAP mailbox when ``[retention] purge_mailbox`` allows it; the
    embedded Maildir always (it is the pipeline's own copy: erasure removes from it)."""
    own = isinstance(settings.mailbox, MaildirSettings)
    if not (settings.retention.purge_mailbox or own):
        yield None
        return
    with closing(open_source(settings.mailbox)) as source:
        source.open()
        yield source


def var_folders(settings: Settings) -> Folders:
    """Where copies of personal data are written besides the store."""
    pickup = None if settings.smtp.host else Path(settings.smtp.pickup_dir)
    return Folders(Path(settings.digest.output_dir), pickup)


def digest_context(settings: Settings) -> DigestContext:
    """What the digest needs from the settings."""
    return DigestContext(settings.digest, settings.smtp, settings.acknowledgement.team_name,
                         settings.tagger.theme_names, settings.review.base_url)  # fmt: skip
