"""The commands that run the pipeline: ``once``, ``run``, ``demo`` and ``housekeeping``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import asdict, replace
from datetime import UTC, datetime

from intake import report
from intake.errors import ConfigError, PipelineError
from intake.records import RunCounts
from intake.sources.maildir import MaildirSettings, open_maildir
from intake.store.engine import Store
from story_intake import idle, worker
from story_intake.app_settings import Settings
from story_intake.jobs import (
    digest_context,
    digest_job,
    housekeeping_job,
    poll_job,
    run_housekeeping,
)
from story_intake.pipeline import run_once
from story_intake.shipped import shipped
from story_intake.warm import Warm
from triage.digest.deliver import send_digest

# Shipped inside the package (story_intake/samples), so `demo` works in any folder.
SAMPLES = shipped("samples") / "stories"


def once_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``once [--json] [--dry-run]``: one pass, under the mailbox's lease."""
    if args.dry_run:  # decide and record, send nothing: every story is "disabled"
        settings = replace(settings, acknowledgement=replace(settings.acknowledgement,
                                                             enabled=False))  # fmt: skip
    stop = threading.Event()
    try:
        # The worker's lease: a pass never runs beside a worker or another pass on one mailbox.
        with worker.holding_lease(settings, stop):
            counts = run_once(settings, now, stop=stop)
    except PipelineError as err:
        _record_run(settings, "once", now, RunCounts(), str(err))
        raise
    _record_run(settings, "once", now, counts, None)
    print(json.dumps(asdict(counts)) if args.json else report.counts_line(counts))
    return 0


def run_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``run``: the scheduled worker, until SIGINT/SIGTERM. The parse processes (or the tagger)
    are loaded by the first pass that has mail and kept for the worker's life."""
    with Warm(settings.tagger, settings.intake.workers) as warm:

        def poll(settings: Settings, now: datetime, stop: threading.Event) -> bool:
            return poll_job(settings, now, stop, warm)

        jobs = worker.Jobs(poll=poll, digest=digest_job, housekeeping=housekeeping_job,
                           watch=idle.watch)  # fmt: skip
        return worker.serve(settings, jobs)


def housekeeping_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``housekeeping``: the worker's retention job, once, now; under the mailbox's lease, so
    it never deletes beside a pass or a worker (which does its own housekeeping)."""
    with worker.holding_lease(settings, threading.Event()):
        counts = run_housekeeping(settings, now)
    print(json.dumps(counts))
    return 0


def demo_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``demo``: seed the sample stories, run one pass and the digest, say where to look."""
    seeded = seed_demo(settings)
    counts = run_once(settings, now)
    print(f"seeded {seeded} sample stories into {settings.mailbox.maildir}")  # type: ignore[union-attr]
    print(report.counts_line(counts))
    with Store(settings.store) as store:
        report.demo_summary(store, sys.stdout)
        digest = send_digest(store, datetime.now(UTC), digest_context(settings))
    print(f"store: {settings.store.url}   export: story-intake export --format jsonl")
    print(f"digest ({digest.stories} stories, {digest.state}): {digest.path}")
    print(f"acknowledgements: {settings.smtp.pickup_dir}/*.eml")
    return 0


def seed_demo(settings: Settings) -> int:
    """Copy the sample stories into the embedded Maildir; returns how many."""
    if not isinstance(settings.mailbox, MaildirSettings):
        raise ConfigError("demo needs the embedded default: mailbox.maildir must be set")
    box = open_maildir(settings.mailbox.maildir)
    files = sorted(SAMPLES.glob("*.eml"))
    for path in files:
        box.add(path.read_bytes())
    return len(files)


def _record_run(
    settings: Settings, command: str, started_at: datetime, counts: RunCounts, error: str | None
) -> None:
    with Store(settings.store) as store:
        store.runs.record_run(command, started_at, datetime.now(UTC), asdict(counts), error)
