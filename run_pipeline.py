"""Command line and composition root: the only place the stages are wired together.

One pass reads top to bottom: fetch -> parse -> tag -> store -> acknowledge (``run_once``);
the digest follows on its schedule (``digest_job``). The worker's jobs (``poll_job``,
``digest_job``, ``housekeeping_job``) are plain functions of (settings, now) that
``worker.serve`` ticks. Only this module reads the config file, the environment and the
clock; every stage receives settings and ``now``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import worker
from config.schedule import cron_trigger, digest_due, poll_due
from config.settings import Settings, load_settings
from intake import report
from intake.errors import ConfigError, PipelineError
from intake.fetch import ImapSettings, ImapSource
from intake.maildir import MaildirSettings, MaildirSource, open_maildir
from intake.parse import parse
from intake.records import (
    Batch,
    MailboxState,
    Quarantined,
    RawMessage,
    RunCounts,
    Story,
    Triage,
)
from intake.store import Store
from triage.alerts import alert_due, record_poll, send_alert
from triage.deliver import TEMPLATES, acknowledge, confirm_interrupted
from triage.digest_out import DigestContext, DigestOutcome, preview_digest, send_digest
from triage.evaluate import evaluate, format_report
from triage.examples import load_examples, story_from_text, training_files
from triage.outbox import check_templates, make_environment
from triage.rules import TagSettings
from triage.tag import Tagger, load_or_train, load_tagger, model_path, tag_many

SENDING_COMMANDS = ("once", "demo", "run", "digest")  # these render mail: check templates first
In = TypeVar("In")
Out = TypeVar("Out")

log = logging.getLogger("story_intake")
ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG = ROOT / "config" / "pipeline.toml"
SAMPLES = ROOT / "samples" / "stories"



class Source(Protocol):
    """What the run loop needs from a mailbox (ImapSource and MaildirSource both fit)."""

    def open(self) -> MailboxState: ...
    def fetch_new(self, state: MailboxState, last_uid: int) -> Iterator[Batch]: ...
    def mark_stored(self, uids: Sequence[int]) -> None: ...
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
) -> RunCounts:  # fmt: skip
    """One pass: fetch what is new, parse and tag it, store it, mark it on the server, then
    acknowledge.

    ``source`` and ``tagger`` default to the ones the settings name. When ``stop`` is set (a
    signal), the pass ends after the batch or acknowledgement in hand, everything committed.
    """
    counts = RunCounts()
    stop = stop or threading.Event()
    source = source or open_source(settings.mailbox)
    with Store(settings.store) as store:
        with closing(source):
            state = source.open()
            _finish_pending_marks(source, store, state)
            for batch in source.fetch_new(state, store.last_uid(state)):
                # Loaded with the first batch, so a poll that finds nothing new stays cheap.
                tagger = tagger or load_tagger(settings.tagger)
                counts = _add(counts, _handle_batch(batch, state, source, store, tagger, now))
                if stop.is_set():
                    break
            confirm_interrupted(store, now, settings.smtp, source.find_message_ids)
        sent, suppressed = acknowledge(store, now, settings.acknowledgement, settings.smtp,
                                       settings.intake.addresses, stop.is_set)  # fmt: skip
    return replace(counts, acknowledged=sent, suppressed=suppressed)


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
) -> None:
    """Daily upkeep (retention purges arrive with the privacy issue)."""


def digest_context(settings: Settings) -> DigestContext:
    """What the digest needs from the settings."""
    return DigestContext(settings.digest, settings.smtp, settings.acknowledgement.team_name,
                         settings.tagger.theme_names)  # fmt: skip


def process(
    raws: Sequence[RawMessage], tagger: Tagger
) -> tuple[list[tuple[RawMessage, Story, Triage]], list[Quarantined]]:
    """The per-message stages in order, parse then tag; a failure quarantines that message."""
    stories, unparsed = run_stage("parse", [(raw, raw) for raw in raws], _parse_each)
    triages, untagged = run_stage("tag", stories, partial(tag_many, tagger=tagger))
    story_of = {raw.key: story for raw, story in stories}
    done = [(raw, story_of[raw.key], triage) for raw, triage in triages]
    return done, unparsed + untagged


def _parse_each(raws: Sequence[RawMessage]) -> list[Story]:
    return [parse(raw) for raw in raws]


def run_stage(
    stage: str, items: Sequence[tuple[RawMessage, In]], handler: Callable[[list[In]], Sequence[Out]]
) -> tuple[list[tuple[RawMessage, Out]], list[Quarantined]]:
    """Apply a stage to a whole batch (spaCy is much faster on batches); if it fails, again item
    by item, so that only the message that breaks it is quarantined and the rest go on."""
    done: list[tuple[RawMessage, Out]] = []
    failed: list[Quarantined] = []
    pending = deque([list(items)] if items else [])
    while pending:
        group = pending.popleft()
        try:
            outputs = handler([item for _, item in group])
        except Exception as err:  # the one broad except: quarantine, never lose, never crash
            if len(group) > 1:
                pending.extendleft(reversed([[one] for one in group]))
                continue
            reason = f"{type(err).__name__}: {err}"[:500]
            failed.append(Quarantined(group[0][0], stage, reason, traceback.format_exc(limit=20)))
            continue
        done.extend((raw, out) for (raw, _), out in zip(group, outputs, strict=True))
    return done, failed


def _handle_batch(
    batch: Batch, state: MailboxState, source: Source, store: Store, tagger: Tagger,
    now: datetime,
) -> RunCounts:  # fmt: skip
    done, failed = process(batch.messages, tagger)
    parsed = [(raw, story) for raw, story, _ in done]
    triages = {story.story_id: triage for _, story, triage in done}
    result = store.commit_batch(state, batch.last_uid, parsed, failed, now, triages)
    # Only now that the store has committed may the server be told.
    uids = [raw.uid for raw in batch.messages]
    source.mark_stored(uids)
    store.clear_marks(state, uids)
    too_large = sum(1 for raw in batch.messages if raw.too_large)
    log.info(
        "batch mailbox_uid<=%d fetched=%d stored=%d duplicates=%d quarantined=%d too_large=%d",
        batch.last_uid, len(batch.messages), result.stored, result.duplicates,
        result.quarantined, too_large,
    )  # fmt: skip
    return RunCounts(fetched=len(batch.messages), stored=result.stored,
                     duplicates=result.duplicates, quarantined=result.quarantined,
                     too_large=too_large, tagged=result.stored)  # fmt: skip


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


def train_model(settings: TagSettings) -> str:
    """Train (or find cached) the tagger's model; returns where it is."""
    examples = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    load_or_train(examples, settings)
    return f"model for {len(examples)} training examples: {model_path(examples, settings)}"


def evaluate_model(settings: TagSettings) -> str:
    """Tag the held-out evaluation set and report how the tags compare with its labels."""
    gold = load_examples([Path(settings.data_dir) / "eval.jsonl"], settings.theme_names)
    predicted = tag_many([story_from_text(e.id, e.text) for e in gold], load_tagger(settings))
    return format_report(evaluate(gold, predicted, settings.theme_names))


def seed_demo(settings: Settings) -> int:
    """Copy the sample stories into the embedded Maildir; returns how many."""
    if not isinstance(settings.mailbox, MaildirSettings):
        raise ConfigError("demo needs the embedded default: mailbox.maildir must be set")
    box = open_maildir(settings.mailbox.maildir)
    files = sorted(SAMPLES.glob("*.eml"))
    for path in files:
        box.add(path.read_bytes())
    return len(files)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, load the config and run one command; returns the exit code."""
    args = _parser().parse_args(argv)
    _configure_logging(args.log_level, args.log_format)
    try:
        settings = load_settings(Path(args.config), os.environ)
        if args.command in SENDING_COMMANDS:  # a broken template stops these at start
            check_templates(make_environment(TEMPLATES))
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    return _command(args, settings)


def _command(args: argparse.Namespace, settings: Settings) -> int:
    started_at = datetime.now(UTC)
    try:
        if args.command == "once":
            if args.dry_run:  # decide and record, send nothing: every story is "disabled"
                off = replace(settings.acknowledgement, enabled=False)
                settings = replace(settings, acknowledgement=off)
            return _once(settings, started_at, args.json)
        if args.command == "demo":
            return _demo(settings, started_at)
        if args.command == "run":
            jobs = worker.Jobs(poll=poll_job, digest=digest_job, housekeeping=housekeeping_job)
            return worker.serve(settings, jobs)
        if args.command == "digest":
            with Store(settings.store) as store:
                make = send_digest if args.send else preview_digest
                outcome = make(store, started_at, digest_context(settings))
            print(json.dumps({"digest": outcome.digest_id, "state": outcome.state,
                              "stories": outcome.stories,
                              "file": str(outcome.path) if outcome.path else None}))  # fmt: skip
        if args.command == "train":
            print(train_model(settings.tagger))
        elif args.command == "evaluate":
            print(evaluate_model(settings.tagger))
        elif args.command == "requeue":
            released, still = requeue(settings, started_at)
            print(json.dumps({"released": released, "quarantined": still}))
        elif args.command == "status":
            with Store(settings.store) as store:
                print(json.dumps(_status(store, settings, started_at), indent=2))
        elif args.command == "export":
            with Store(settings.store) as store:
                _export(store, args.format)
    except PipelineError as err:
        log.error("%s failed: %s", args.command, err)
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _export(store: Store, fmt: str) -> None:
    """Export to stdout; a reader that stops early (`export | head`) ends it quietly.

    Not SIGPIPE's default action: that would also kill the worker on a closed socket.
    """
    try:
        report.export(store, fmt, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's advice: point stdout at devnull so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _status(store: Store, settings: Settings, now: datetime) -> dict[str, object]:
    """The store's status, the worker's polling health and lease, and whether the hourly
    acknowledgement cap has tripped."""
    sent = store.sent_since(now - timedelta(hours=1))
    cap = settings.acknowledgement.max_per_hour
    breaker = {"max_per_hour": cap, "sent_last_hour": sent,
               "state": "open: sending paused" if sent >= cap else "closed"}  # fmt: skip
    health = store.poll_health()
    polling = {"last_success_at": health.last_success_at,
               "consecutive_failures": health.failures, "last_error": health.last_error,
               "alert_sent": health.alerted}  # fmt: skip
    holder = store.lease_holder(worker.lease_name(settings))
    return {**store.status(), "held": store.outbox_counts().get("held", 0),
            "polling": polling, "worker": holder.rsplit(":", 1)[0] if holder else None,
            "acknowledgement_breaker": breaker}  # fmt: skip


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors (``--log-format json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}  # fmt: skip
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])  # a no-op where logging is set up
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every tick at INFO


def _once(settings: Settings, now: datetime, as_json: bool) -> int:
    try:
        counts = run_once(settings, now)
    except PipelineError as err:
        _record_run(settings, "once", now, RunCounts(), str(err))
        raise
    _record_run(settings, "once", now, counts, None)
    print(json.dumps(asdict(counts)) if as_json else report.counts_line(counts))
    return 0


def _record_run(
    settings: Settings, command: str, started_at: datetime, counts: RunCounts, error: str | None
) -> None:
    with Store(settings.store) as store:
        store.record_run(command, started_at, datetime.now(UTC), asdict(counts), error)


def _demo(settings: Settings, now: datetime) -> int:
    seeded = seed_demo(settings)
    counts = run_once(settings, now)
    print(f"seeded {seeded} sample stories into {settings.mailbox.maildir}")  # type: ignore[union-attr]
    print(report.counts_line(counts))
    with Store(settings.store) as store:
        report.demo_summary(store, sys.stdout)
        digest = send_digest(store, datetime.now(UTC), digest_context(settings))
    print(f"store: {settings.store.url}   export: python run_pipeline.py export --format jsonl")
    print(f"digest ({digest.stories} stories, {digest.state}): {digest.path}")
    print(f"acknowledgements: {settings.smtp.pickup_dir}/*.eml")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_pipeline.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="TOML settings file")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"],
                        help="json: one object per line, for log collectors")
    commands = parser.add_subparsers(dest="command", required=True)
    once = commands.add_parser("once", help="one pass: fetch, parse, store")
    once.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    once.add_argument("--dry-run", action="store_true",
                      help="store and tag; send no acknowledgement (recorded as disabled)")
    export = commands.add_parser("export", help="every story with its triage")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    commands.add_parser("requeue", help="retry quarantined messages")
    commands.add_parser("train", help="train the theme tagger from triage/data (deterministic)")
    commands.add_parser("evaluate", help="precision, recall and F1 on the held-out examples")
    commands.add_parser("status", help="checkpoints, counts, last run, last error")
    commands.add_parser("demo", help="the whole pipeline on the embedded default")
    commands.add_parser("run", help="the scheduled worker, until SIGINT/SIGTERM")
    digest = commands.add_parser("digest", help="build (and send) the digest for the open window")
    digest.add_argument("--send", action="store_true",
                        help="send it and close the window (without: a preview file only)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
