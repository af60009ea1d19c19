"""The command line: argument parsing, logging, and one function per command.

``story-intake`` and ``run_pipeline.py`` both call ``main`` here. The pass is in ``pipeline``,
the worker's jobs in ``jobs``; the scheduler wiring in ``worker``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from intake import report
from intake.errors import ConfigError, PipelineError, UsageError
from intake.records import ReplyState, RunCounts
from intake.sources.maildir import MaildirSettings, open_maildir
from intake.store.backup import backup
from intake.store.engine import Store
from story_intake import worker
from story_intake.addresses import address_warnings
from story_intake.app_settings import Settings
from story_intake.cli_parser import build_parser
from story_intake.jobs import (
    digest_context,
    digest_job,
    housekeeping_job,
    poll_job,
    privacy_mailbox,
    var_folders,
)
from story_intake.pipeline import requeue, run_once
from story_intake.secrets import ALL, with_secrets
from story_intake.settings import load_settings
from story_intake.shipped import CHECKOUT
from triage.digest.deliver import preview_digest, send_digest
from triage.erasure import erase
from triage.privacy import confirm_requests, stories_of, story_by_reference, subject_access
from triage.reply.identity import mailbox_identity
from triage.reply.policy import reference
from triage.reply.render import TEMPLATES, check_templates, make_environment
from triage.reply.send_watch import breaker_status, resume, sending_status
from triage.tag.rules import TagSettings

SENDING_COMMANDS = ("once", "demo", "run", "digest")  # these render mail: check templates first
log = logging.getLogger("story_intake")
# The tagger's modules (spaCy) are imported by the commands that tag; ``once`` and ``run``
# leave them to the worker processes (see ``story_intake.pool``).
SAMPLES = CHECKOUT / "samples" / "stories"


def train_model(settings: TagSettings) -> str:
    """Train (or find cached) the tagger's model; returns where it is."""
    from triage.tag.examples import load_examples, training_files
    from triage.tag.model_cache import model_path
    from triage.tag.tagger import load_or_train

    examples = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    load_or_train(examples, settings)
    return f"model for {len(examples)} training examples: {model_path(examples, settings)}"


def evaluate_model(settings: TagSettings) -> str:
    """Tag each held-out evaluation set (``eval*.jsonl``) and report how the tags compare with
    its labels."""
    from triage.tag.evaluate import evaluate, format_report
    from triage.tag.examples import load_examples, story_from_text
    from triage.tag.tagger import load_tagger, tag_many

    tagger, reports = load_tagger(settings), []
    for path in sorted(Path(settings.data_dir).glob("eval*.jsonl")):
        gold = load_examples([path], settings.theme_names)
        predicted = tag_many([story_from_text(e.id, e.text) for e in gold], tagger)
        report = format_report(evaluate(gold, predicted, settings.theme_names))
        reports.append(f"== {path.name} ({len(gold)} examples)\n{report}")
    return "\n\n".join(reports)


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
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # everything this process writes (store, mail, digests) is owner-only
    _configure_logging(args.log_level, args.log_format)
    try:
        settings = load_settings(Path(args.config), os.environ, secrets=())
        settings = with_secrets(settings, os.environ, _secrets_needed(args, settings))
        if args.command in SENDING_COMMANDS:  # a broken template stops these at start
            check_templates(make_environment(TEMPLATES))
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    for warning in address_warnings(settings):
        log.warning("%s", warning)
    return _command(args, settings)


def _secrets_needed(args: argparse.Namespace, settings: Settings) -> tuple[str, ...]:
    """The parts whose passwords this command needs: only the commands that log in to the
    mailbox or the SMTP relay; those that read the store need none."""
    if args.command in ("once", "run", "demo"):
        return ALL
    if args.command == "digest" and args.send:
        return ("smtp",)
    if args.command == "erase" and settings.retention.purge_mailbox:
        return ("mailbox",)  # it deletes the person's messages from the mailbox too
    return ()


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
        if args.command in ("erase", "subject-access"):
            print(json.dumps(_privacy_command(args, settings, started_at), indent=2))
            return 0
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
        elif args.command == "release":
            with Store(settings.store) as store:
                ids = None if args.all else _named_story(store, args.story)
                state = ReplyState.SENT if args.as_sent else ReplyState.PENDING
                # Naming a held request confirms it: its withdrawal applies before the reply.
                confirmed = confirm_requests(store, ids) if ids else {}
                out = {"released": store.release_held(ids, state, started_at), "as": state,
                       **confirmed}  # fmt: skip
                if args.all:  # everything held has been looked at: sending resumes too
                    out["resumed"] = resume(store, started_at)
                print(json.dumps(out))
        elif args.command == "resubscribe":  # the person asked to hear from us again
            with Store(settings.store) as store:
                key = store.sender_key(mailbox_identity(args.sender))
                print(json.dumps({"lifted": store.lift_unsubscribe(key)}))
        elif args.command == "backup":
            size = backup(settings.store.url, Path(args.path))
            print(json.dumps({"backup": args.path, "bytes": size}))
        elif args.command == "resume":
            with Store(settings.store) as store:
                print(json.dumps({"resumed": resume(store, started_at)}))
        elif args.command == "requeue":
            released, still = requeue(settings, started_at)
            print(json.dumps({"released": released, "quarantined": still}))
        elif args.command == "status":
            with Store(settings.store) as store:
                print(json.dumps(_status(store, settings, started_at), indent=2))
        elif args.command == "export":
            with Store(settings.store) as store:
                _export(store, args.format)
    except UsageError as err:  # asked for the impossible: say why, exit 2 like bad arguments
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PipelineError as err:
        # Said once: as a log record for collectors (--log-format json), else as one line.
        if args.log_format == "json":
            log.error("%s failed: %s", args.command, err)
        else:
            print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _export(store: Store, fmt: str) -> None:
    """Export to stdout; a reader that stops early (`export | head`) ends it quietly.

    Not SIGPIPE's default action: that would also kill the worker on a closed socket.
    """
    try:
        report.export(store, fmt, sys.stdout, reference)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's advice: point stdout at devnull so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _status(store: Store, settings: Settings, now: datetime) -> dict[str, object]:
    """The store's status, the worker's polling and sending health and lease, and the
    acknowledgement breaker."""
    health = store.poll_health()
    polling = {"last_success_at": health.last_success_at,
               "consecutive_failures": health.failures, "last_error": health.last_error,
               "alert_sent": health.alerted}  # fmt: skip
    holder = store.lease_holder(worker.lease_name(settings))
    awaiting = [reference(s) for s in store.on_hold()]
    return {**store.status(), "held": store.outbox_counts().get(ReplyState.HELD, 0),
            "awaiting_erasure": awaiting,
            "needs_confirmation": [reference(s) for s in store.needs_confirmation()],
            "polling": polling,
            "sending": sending_status(store, settings.alerts.after_failures),
            "worker": holder.rsplit(":", 1)[0] if holder else None,
            "acknowledgement_breaker": breaker_status(
                store, settings.acknowledgement.max_per_hour, now)}  # fmt: skip


def _privacy_command(
    args: argparse.Namespace, settings: Settings, now: datetime
) -> dict[str, object]:
    with Store(settings.store) as store:
        if args.command == "subject-access":
            folder = Path(args.out or f"var/subject-access/{now:%Y%m%dT%H%M%SZ}")
            return subject_access(store, args.sender, folder, now)
        ids = stories_of(store, args.sender) if args.sender else _named_story(store, args.story)
        with privacy_mailbox(settings) as mailbox:
            return erase(store, ids, var_folders(settings), settings.smtp.from_address, mailbox,
                         now, address=args.sender or "", dry_run=args.dry_run)  # fmt: skip


def _named_story(store: Store, ref: str) -> list[str]:
    """The story ``ref`` names; UsageError (exit 2) when the store holds none, so a mistyped
    reference is not mistaken for a story released or erased."""
    story_ids = story_by_reference(store, ref)
    if not story_ids:
        raise UsageError(f"no story {ref.strip().upper()} in the store")
    return story_ids


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
    # At DEBUG imapclient logs the protocol, message bodies included: never let it.
    logging.getLogger("imapclient").setLevel(max(logging.INFO, logging.getLevelName(level)))


def _once(settings: Settings, now: datetime, as_json: bool) -> int:
    stop = threading.Event()
    try:
        # The worker's lease: a pass never runs beside a worker or another pass on one mailbox.
        with worker.holding_lease(settings, stop):
            counts = run_once(settings, now, stop=stop)
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
