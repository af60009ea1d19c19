"""One pass of the pipeline, top to bottom: fetch -> parse -> tag -> store -> mark ->
acknowledge (``run_once``), and ``requeue`` for what was quarantined.

Sources, stages and adapters are wired together here and in ``jobs`` (the composition
root is ``story_intake``); every stage receives its settings and ``now``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, replace
from datetime import datetime
from typing import TYPE_CHECKING

from intake import report
from intake.errors import FetchError
from intake.records import Batch, BatchOutcome, MailboxState, RunCounts
from intake.report import Progress
from intake.sources import Source, open_source
from intake.store.engine import BatchResult, Store
from intake.timing import StageTimer
from story_intake.app_settings import Settings
from story_intake.earlier_store import StoredStories
from story_intake.pool import open_stages
from story_intake.stages import process
from story_intake.token_watch import note_mailbox_expiry, note_smtp_expiry
from story_intake.warm import Warm
from triage.privacy import hold_withdrawn
from triage.reply.deliver import acknowledge, confirm_interrupted, decide_stories
from triage.reply.send_watch import watch_sending
from triage.reply.sender import Sender

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger  # spaCy: loaded by the stages that tag, not at import

log = logging.getLogger("story_intake")
# What the per-batch log line counts: ids and numbers only, never a message's content.
BATCH_COUNTS = ("fetched", "stored", "duplicates", "quarantined", "too_large")


def run_once(
    settings: Settings, now: datetime, source: Source | None = None,
    tagger: Tagger | None = None, stop: threading.Event | None = None,
    timer: StageTimer | None = None, warm: Warm | None = None,
) -> RunCounts:  # fmt: skip
    """One pass: fetch what is new, parse and tag it, store it, mark it on the server, then
    acknowledge.

    ``source`` and ``tagger`` default to the ones the settings name (a tagger handed in also
    means parsing and tagging here, not in ``[intake] workers``). When ``stop`` is set (a
    signal), the pass ends after the batch or acknowledgement in hand, everything committed.
    ``timer`` collects the seconds spent in each stage. ``warm`` (the worker's): the parse
    processes or the tagger kept loaded from earlier passes, instead of loading them again.
    """
    stop = stop or threading.Event()
    timer = timer or StageTimer()
    if warm is not None:
        warm.follow_swaps()  # housekeeping may have swapped a retrained model in
    failed: FetchError | None = None
    with Store(settings.store) as store, Sender(store, now, settings.acknowledgement,
                                                settings.smtp, stop.is_set) as sender:  # fmt: skip
        try:
            counts = _intake(settings, now, source, tagger, stop, timer, warm, store, sender)
        except FetchError as err:
            # The mailbox (or its token) failed: nothing more is fetched, stored or marked,
            # but the replies already queued still go out before the pass reports it.
            sender.wait()  # the store is this thread's again
            counts, failed = RunCounts(), err
        with timer.stage("acknowledge"):
            sent, suppressed = acknowledge(store, now, settings.acknowledgement, settings.smtp,
                                           settings.intake.addresses, stop.is_set, sender,
                                           settings.intake.trusted_authserv_ids)  # fmt: skip
        ack = settings.acknowledgement
        watch_sending(store, sender.failure(), sender.worked, now, settings.alerts,
                      settings.smtp, ack.team_name, ack.max_per_hour)  # fmt: skip
        note_smtp_expiry(settings, store, now)
    if failed is not None:
        raise failed
    return replace(counts, acknowledged=sent, suppressed=counts.suppressed + suppressed)


def _intake(
    settings: Settings, now: datetime, source: Source | None, tagger: Tagger | None,
    stop: threading.Event, timer: StageTimer, warm: Warm | None, store: Store, sender: Sender,
) -> RunCounts:  # fmt: skip
    """Fetch, parse, tag, store and mark what is new, a batch at a time, each batch's replies
    handed to ``sender`` while the next is fetched; the counts so far."""
    counts = RunCounts()
    source = source or open_source(settings.mailbox)
    progress = Progress(sys.stderr if sys.stderr.isatty() else None, time.monotonic)
    with closing(source):
        state = source.open()
        note_mailbox_expiry(settings, store, now)
        _finish_pending_marks(source, store, state)
        store.staging.clear(state.mailbox)  # what a crashed pass staged
        batches = _timed(source.fetch_new(state, store.stories.last_uid(state)), timer)
        # The stored stories each batch answers, for the clean stage (issue 22).
        stored = StoredStories(settings.store)
        with open_stages(settings.tagger, settings.intake.workers, tagger, timer,
                         store, warm) as stages, closing(stored):  # fmt: skip
            for batch in stages.map(stored.attach(batches)):
                sender.wait()  # the store is this thread's again
                step = _handle_batch(batch, state, source, store, now, settings, timer)
                # Replies go out while the next batch is fetched, parsed and tagged.
                sender.start(timer)
                counts = _add(counts, step)
                log.info("batch mailbox_uid<=%d %s %s", batch.last_uid,
                         report.counts_line(step, BATCH_COUNTS),
                         progress.update(counts.fetched, batch.remaining))  # fmt: skip
                del batch  # any raw bytes it holds go before the next fetch
                if stop.is_set():
                    break
        sender.wait()
        progress.close()
        confirm_interrupted(store, now, settings.smtp, source.find_message_ids)
    return counts


def _timed(batches: Iterator[Batch], timer: StageTimer) -> Iterator[Batch]:
    """The source's batches, the time spent waiting for each counted as fetching."""
    while True:
        with timer.stage("fetch"):
            batch = next(batches, None)
        if batch is None:
            return
        timer.add("fetch", 0.0, len(batch.messages))
        yield batch
        del batch  # not held while the next batch is fetched


def _handle_batch(
    batch: BatchOutcome, state: MailboxState, source: Source, store: Store, now: datetime,
    settings: Settings, timer: StageTimer,
) -> RunCounts:  # fmt: skip
    """The stages after parse and tag, in order: store, mark, decide the acknowledgements."""
    uids = [raw.uid for raw in batch.raws]
    with timer.stage("store", len(uids)):
        result = _store(batch, state, store, now, settings)
    # Only now that the store has committed may the server be told.
    with timer.stage("mark", len(uids)):
        source.mark_stored(uids)
        store.stories.clear_marks(state, uids)
    with timer.stage("acknowledge"):
        suppressed = _decide(batch, result, store, now, settings)
    too_large = sum(1 for raw in batch.raws if raw.too_large)
    return RunCounts(fetched=len(uids), stored=result.stored,
                     duplicates=result.duplicates, quarantined=result.quarantined,
                     too_large=too_large, tagged=result.stored, suppressed=suppressed)  # fmt: skip


def _store(
    batch: BatchOutcome, state: MailboxState, store: Store, now: datetime, settings: Settings
) -> BatchResult:
    """Commit the batch with its checkpoint; hold what a withdrawal asks to hold."""
    done = batch.processed
    parsed = [(item.raw, item.story) for item in done]
    triages = {item.story.story_id: item.triage for item in done}
    result = store.stories.commit_batch(state, batch.last_uid, parsed, batch.quarantined, now,
                                        triages)  # fmt: skip
    hold_withdrawn(store, [(item.story, item.triage) for item in done],
                   settings.intake.trusted_authserv_ids)  # fmt: skip
    return result


def _decide(
    batch: BatchOutcome, result: BatchResult, store: Store, now: datetime, settings: Settings
) -> int:
    """Decide the acknowledgement of each story this batch stored; how many were suppressed."""
    # The first of each story_id is the one stored (a batch may hold the same mail twice).
    first = {item.story.story_id: (item.story, item.triage) for item in reversed(batch.processed)}
    fresh = [pair for story_id, pair in first.items() if story_id in result.fresh]
    return decide_stories(store, now, settings.acknowledgement, settings.intake.addresses, fresh,
                          settings.intake.trusted_authserv_ids)  # fmt: skip


def _finish_pending_marks(source: Source, store: Store, state: MailboxState) -> None:
    """Mark what a previous run stored but could not mark (it crashed in between)."""
    known = store.stories.known_uidvalidities(state.mailbox)
    if state.uidvalidity and known and state.uidvalidity not in known:
        log.warning(
            "UIDVALIDITY of %s changed to %d: re-scanning, already-stored stories are skipped",
            state.mailbox, state.uidvalidity,
        )  # fmt: skip
    store.stories.drop_stale_marks(state)
    pending = store.stories.pending_marks(state)
    if pending:
        source.mark_stored(pending)
        store.stories.clear_marks(state, pending)
        log.info("marked %d messages left unmarked by an earlier run", len(pending))


def _add(a: RunCounts, b: RunCounts) -> RunCounts:
    return RunCounts(**{k: v + asdict(b)[k] for k, v in asdict(a).items()})


def requeue(settings: Settings, now: datetime, tagger: Tagger | None = None) -> tuple[int, int]:
    """Retry every quarantined message; returns (released, still quarantined)."""
    from triage.tag.tagger import load_tagger

    released = still = 0
    tagger = tagger or load_tagger(settings.tagger)
    with Store(settings.store) as store:
        for entry in store.quarantine.quarantined():
            done, failed = process([entry.raw], tagger)
            for item in failed:
                store.quarantine.requarantine(entry.id, item.stage, item.reason, item.detail)
                still += 1
            for processed in done:
                store.quarantine.release(entry.id, processed.story, entry.raw, processed.triage,
                                         now)  # fmt: skip
                released += 1
    return released, still
