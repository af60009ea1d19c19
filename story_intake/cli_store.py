"""The commands that read or tend the store: ``digest``, ``status``, ``export``, ``requeue``,
``resume`` and ``backup``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from intake import report
from intake.store.dialect import backup
from intake.store.engine import Store
from story_intake import worker
from story_intake.app_settings import Settings
from story_intake.jobs import digest_context
from story_intake.migrate import migrate
from story_intake.pipeline import requeue
from story_intake.token_watch import note_smtp_expiry
from triage.digest.deliver import preview_digest, send_digest
from triage.expiry_watch import expiry_status
from triage.reply.policy import reference
from triage.reply.send_watch import breaker_status, resume, sending_status


def digest_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``digest [--send]``: build (and send) the digest for the open window."""
    with Store(settings.store) as store:
        make = send_digest if args.send else preview_digest
        outcome = make(store, now, digest_context(settings))
        note_smtp_expiry(settings, store, now)  # the digest went over SMTP's own client
    print(json.dumps({"digest": outcome.digest_id, "state": outcome.state,
                      "stories": outcome.stories,
                      "file": str(outcome.path) if outcome.path else None}))  # fmt: skip
    return 0


def backup_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``backup PATH``."""
    size = backup(settings.store.url, Path(args.path))
    print(json.dumps({"backup": args.path, "bytes": size}))
    return 0


def resume_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``resume``: sending starts again after the breaker tripped."""
    with Store(settings.store) as store:
        print(json.dumps({"resumed": resume(store, now)}))
    return 0


def requeue_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``requeue``: retry quarantined messages."""
    released, still = requeue(settings, now)
    print(json.dumps({"released": released, "quarantined": still}))
    return 0


def status_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``status``."""
    with Store(settings.store) as store:
        print(json.dumps(status(store, settings, now), indent=2))
    return 0


def export_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``export [--format jsonl|csv]`` to stdout; a reader that stops early (`export | head`)
    ends it quietly.

    Not SIGPIPE's default action: that would also kill the worker on a closed socket.
    """
    with Store(settings.store) as store:
        try:
            report.export(store, args.format, sys.stdout, reference)
            sys.stdout.flush()
        except BrokenPipeError:
            # Python's advice: point stdout at devnull so the flush at exit does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def status(store: Store, settings: Settings, now: datetime) -> dict[str, object]:
    """The store's status, the worker's polling and sending health and lease, and the
    acknowledgement breaker."""
    health = store.worker.poll_health()
    polling = {"last_success_at": health.last_success_at,
               "consecutive_failures": health.failures, "last_error": health.last_error,
               "alert_sent": health.alerted, "idle_reconnects": health.idle_drops}  # fmt: skip
    holder = store.worker.lease_holder(worker.lease_name(settings))
    awaiting = [reference(s) for s in store.privacy.on_hold()]
    return {**store.runs.status(), "held": store.outbox.outbox_counts().get("held", 0),
            "awaiting_erasure": awaiting,
            "needs_confirmation": [reference(s) for s in store.outbox.needs_confirmation()],
            "polling": polling,
            "sending": sending_status(store, settings.alerts.after_failures),
            "worker": holder.rsplit(":", 1)[0] if holder else None,
            "oauth2_token_expires_at": store.worker.token_expiry(),
            "oauth2_credentials": expiry_status(store, now),
            # SMTP's own client ([smtp] auth = "oauth2"), the same two records for it.
            "smtp_oauth2_token_expires_at": store.worker.token_expiry("smtp"),
            "smtp_oauth2_credentials": expiry_status(store, now, "smtp"),
            "acknowledgement_breaker": breaker_status(
                store, settings.acknowledgement.max_per_hour, now)}  # fmt: skip


def migrate_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``migrate``: upgrade the store to this version's schema and say from which revision."""
    print(migrate(settings.store))
    return 0
