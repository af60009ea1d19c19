"""Command line and composition root: the only place the stages are wired together.

One pass reads top to bottom: fetch -> parse -> tag -> store -> acknowledge (``run_once``);
the digest follows on its schedule (``digest_job``). The worker's jobs (``poll_job``,
``digest_job``, ``housekeeping_job``) are plain functions of (settings, now) that
``worker.serve`` ticks. Only this module reads the config file, the environment and the
clock; every stage receives settings and ``now``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from config.schedule import cron_trigger, digest_due, housekeeping_due, poll_due
from config.settings import Settings
from intake import report
from intake.copies import MailboxCopy
from intake.errors import PipelineError
from intake.fetch import ImapSettings, ImapSource
from intake.maildir import MaildirSettings, MaildirSource
from intake.records import Batch, MailboxState, RunCounts
from intake.report import Progress
from intake.store import Store
from intake.timing import StageTimer
from stages import Processed, open_stages, process
from triage.alerts import alert_due, record_poll, send_alert
from triage.deliver import acknowledge, confirm_interrupted, decide_stories
from triage.digest_out import DigestContext, DigestOutcome, send_digest
from triage.erasure import Folders
from triage.privacy import (
    hold_withdrawn,
    housekeeping,
)
from triage.send_watch import watch_sending
from triage.sender import Sender

if TYPE_CHECKING:
    from triage.tag import Tagger  # spaCy: loaded by the stages that tag, not at import

log = logging.getLogger("story_intake")
# What the per-batch log line counts: ids and numbers only, never a message's content.
BATCH_COUNTS = ("fetched", "stored", "duplicates", "quarantined", "too_large")


class Source(Protocol):
    """What the run loop needs from a mailbox (ImapSource and MaildirSource both fit)."""

    def open(self) -> MailboxState: ...
    def fetch_new(self, state: MailboxState, last_uid: int) -> Iterator[Batch]: ...
    def mark_stored(self, uids: Sequence[int]) -> None: ...
    def erase_copies(self, copies: Sequence[MailboxCopy]) -> int: ...
    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> set[str]: ...
    def close(self) -> None: ...


def open_source(settings: ImapSettings | MaildirSettings) -> Source:
    """The source the ``[mailbox]`` section names."""
    if isinstance(settings, ImapSettings):
        return ImapSource(settings)
    return MaildirSource(settings)


def run_once(
    settings: Settings, now: datetime, source: Source | None = None,
    tagger: Tagger | None = None, stop: threading.Event | None = None,
    timer: StageTimer | None = None,
) -> RunCounts:  # fmt: skip
    """One pass: fetch what is new, parse and tag it, store it, mark it on the server, then
    acknowledge.

    ``source`` and ``tagger`` default to the ones the settings name (a tagger handed in also
    means parsing and tagging here, not in ``[intake] workers``). When ``stop`` is set (a
    signal), the pass ends after the batch or acknowledgement in hand, everything committed.
    ``timer`` collects the seconds spent in each stage.
    """
    counts = RunCounts()
    stop = stop or threading.Event()
    timer = timer or StageTimer()
    source = source or open_source(settings.mailbox)
    progress = Progress(sys.stderr if sys.stderr.isatty() else None, time.monotonic)
    with Store(settings.store) as store, Sender(store, now, settings.acknowledgement,
                                                settings.smtp, stop.is_set) as sender:  # fmt: skip
        with closing(source):
            state = source.open()
            _finish_pending_marks(source, store, state)
            batches = _timed(source.fetch_new(state, store.last_uid(state)), timer)
            workers = settings.intake.workers
            with open_stages(settings.tagger, workers, tagger, timer,
                             settings.mailbox.batch_bytes) as stages:  # fmt: skip
                for batch, processed in stages.map(batches):
                    sender.wait()  # the store is this thread's again
                    step = _handle_batch(batch, processed, state, source, store, now, settings,
                                         timer)  # fmt: skip
                    # Replies go out while the next batch is fetched, parsed and tagged.
                    sender.start(timer)
                    counts = _add(counts, step)
                    log.info("batch mailbox_uid<=%d %s %s", batch.last_uid,
                             report.counts_line(step, BATCH_COUNTS),
                             progress.update(counts.fetched, batch.remaining))  # fmt: skip
                    del batch, processed  # the raw bytes go before the next fetch
                    if stop.is_set():
                        break
            sender.wait()
            progress.close()
            confirm_interrupted(store, now, settings.smtp, source.find_message_ids)
        with timer.stage("acknowledge"):
            sent, suppressed = acknowledge(store, now, settings.acknowledgement, settings.smtp,
                                           settings.intake.addresses, stop.is_set, sender,
                                           settings.intake.trusted_authserv_ids)  # fmt: skip
        ack = settings.acknowledgement
        watch_sending(store, sender.failure(), sender.worked, now, settings.alerts,
                      settings.smtp, ack.team_name, ack.max_per_hour)  # fmt: skip
    return replace(counts, acknowledged=sent, suppressed=counts.suppressed + suppressed)


def _timed(batches: Iterator[Batch], timer: StageTimer) -> Iterator[Batch]:
    """The source's batches, the time spent waiting for each counted as fetching."""
    while True:
        with timer.stage("fetch"):
            batch = next(batches, None)
        if batch is None:
            return
        timer.add("fetch", 0.0, len(batch.messages))
        yield batch


def poll_job(settings: Settings, now: datetime, stop: threading.Event | None = None) -> bool:
    """The worker's poll: ``run_once`` when due, its health recorded, the team alerted after
    ``[alerts] after_failures`` failures in a row and told when it works again.

    Returns whether a pass ran (False: not due, the last failure's backoff still running).
    """
    with Store(settings.store) as store:
        health = store.poll_health()
    last = datetime.fromisoformat(health.last_attempt_at) if health.last_attempt_at else None
    if not poll_due(last, health.failures, settings.schedule.poll_seconds, now):
        return False
    counts, error = RunCounts(), None
    try:
        counts = run_once(settings, now, stop=stop)
    except Exception as err:  # the worker loop's one broad except: record it and go on
        # Our own errors say what failed without personal data; others by type alone.
        error = str(err)[:300] if isinstance(err, PipelineError) else type(err).__name__
        log.error("poll failed (%d in a row): %s", health.failures + 1, error)
    health = record_poll(health, now, error)
    action = alert_due(health, settings.alerts.after_failures)
    if action:
        health = send_alert(action, health, now, settings.alerts, settings.smtp,
                            settings.acknowledgement.team_name)  # fmt: skip
    with Store(settings.store) as store:
        store.save_poll_health(health, now)
        store.record_run("poll", now, datetime.now(UTC), asdict(counts), error)
    if error is None:
        log.info("poll %s", report.counts_line(counts))
    return True


def digest_job(
    settings: Settings, now: datetime, stop: threading.Event | None = None
) -> DigestOutcome | None:
    """The scheduled digest: sent when a ``[digest] schedule`` time has passed since the last
    one (or since the pipeline first ran), or to finish one a crash interrupted."""
    trigger = cron_trigger(settings.digest.schedule, settings.digest.timezone)
    with Store(settings.store) as store:
        last = store.last_digest_end() or store.first_run_at()
        if not (store.digest_unfinished() or digest_due(trigger, last, now)):
            return None
        return send_digest(store, now, digest_context(settings))


def housekeeping_job(
    settings: Settings, now: datetime, stop: threading.Event | None = None
) -> dict[str, int] | None:
    """Retention: purge what has expired (rows, var files, and the mailbox when
    ``[retention] purge_mailbox``), at most once a day. Returns the counts, None if not due."""
    with Store(settings.store) as store:
        if not housekeeping_due(store.last_housekeeping_at(), now):
            return None
        with privacy_mailbox(settings) as mailbox:
            counts = housekeeping(store, now, settings.retention, var_folders(settings), mailbox)
        store.record_run("housekeeping", now, datetime.now(UTC), counts, None)
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
                         settings.tagger.theme_names)  # fmt: skip


def _handle_batch(
    batch: Batch, processed: Processed, state: MailboxState, source: Source, store: Store,
    now: datetime, settings: Settings, timer: StageTimer,
) -> RunCounts:  # fmt: skip
    done, failed = processed
    parsed = [(raw, story) for raw, story, _ in done]
    triages = {story.story_id: triage for _, story, triage in done}
    with timer.stage("store", len(batch.messages)):
        result = store.commit_batch(state, batch.last_uid, parsed, failed, now, triages)
        hold_withdrawn(store, [(story, triage) for _, story, triage in done],
                       settings.intake.trusted_authserv_ids)  # fmt: skip
    # Only now that the store has committed may the server be told.
    uids = [raw.uid for raw in batch.messages]
    with timer.stage("mark", len(uids)):
        source.mark_stored(uids)
        store.clear_marks(state, uids)
    # The first of each story_id is the one stored (a batch may hold the same mail twice).
    first = {story.story_id: (story, triage) for _, story, triage in reversed(done)}
    fresh = [pair for story_id, pair in first.items() if story_id in result.fresh]
    with timer.stage("acknowledge"):
        suppressed = decide_stories(store, now, settings.acknowledgement,
                                    settings.intake.addresses, fresh,
                                    settings.intake.trusted_authserv_ids)  # fmt: skip
    too_large = sum(1 for raw in batch.messages if raw.too_large)
    return RunCounts(fetched=len(batch.messages), stored=result.stored,
                     duplicates=result.duplicates, quarantined=result.quarantined,
                     too_large=too_large, tagged=result.stored, suppressed=suppressed)  # fmt: skip


def _finish_pending_marks(source: Source, store: Store, state: MailboxState) -> None:
    """Mark what a previous run stored but could not mark (it crashed in between)."""
    known = store.known_uidvalidities(state.mailbox)
    if state.uidvalidity and known and state.uidvalidity not in known:
        log.warning(
            "UIDVALIDITY of %s changed to %d: re-scanning, already-stored stories are skipped",
            state.mailbox, state.uidvalidity,
        )  # fmt: skip
    store.drop_stale_marks(state)
    pending = store.pending_marks(state)
    if pending:
        source.mark_stored(pending)
        store.clear_marks(state, pending)
        log.info("marked %d messages left unmarked by an earlier run", len(pending))


def _add(a: RunCounts, b: RunCounts) -> RunCounts:
    return RunCounts(**{k: v + asdict(b)[k] for k, v in asdict(a).items()})


def requeue(settings: Settings, now: datetime, tagger: Tagger | None = None) -> tuple[int, int]:
    """Retry every quarantined message; returns (released, still quarantined)."""
    from triage.tag import load_tagger

    released = still = 0
    tagger = tagger or load_tagger(settings.tagger)
    with Store(settings.store) as store:
        for entry in store.quarantined():
            done, failed = process([entry.raw], tagger)
            for item in failed:
                store.requarantine(entry.id, item.stage, item.reason, item.detail)
                still += 1
            for raw, story, triage in done:
                store.release(entry.id, story, raw, triage, now)
                released += 1
    return released, still


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: parse it, load the config, run one command (see ``cli``)."""
    import cli  # here, not at the top: cli builds on this module

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
