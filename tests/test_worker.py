"""The scheduled worker: the poll job's health and alerts on an injected clock, the mailbox
lease, and the real worker process against Dovecot and aiosmtpd, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import (
    DovecotServer,
    Mailbox,
    SmtpSink,
    imap_config,
    start_pipeline,
    story_message,
    wait_for,
)

from intake.store.engine import Store
from story_intake import worker
from story_intake.app_settings import Settings
from story_intake.jobs import poll_job
from triage.alerts import AlertSettings
from triage.reply.settings import SmtpSettings

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=2)


def alerts_at(sink: SmtpSink) -> list[bytes]:
    return [data for _, _, data in sink.messages if b"Message-ID: <alert-" in data]


def test_worker_lease_refuses_a_second_holder_until_it_expires(tmp_path: Path) -> None:
    from intake.store.engine import StoreSettings

    with Store(StoreSettings(f"sqlite:///{tmp_path}/s.db")) as store:
        assert store.worker.acquire_lease("box", "host:1:a", AT, TTL) is None
        later = AT + timedelta(minutes=1)
        assert store.worker.acquire_lease("box", "host:2:b", later, TTL) == "host:1:a"
        assert store.worker.acquire_lease("box", "host:1:a", AT + timedelta(minutes=1), TTL) is None
        assert store.worker.acquire_lease("box", "host:2:b", AT + timedelta(minutes=4), TTL) is None
        store.worker.release_lease("box", "host:1:a")  # not the holder any more: changes nothing
        assert store.worker.lease_holder("box") == "host:2:b"


def test_worker_lease_of_a_dead_process_on_this_host_is_taken_over(
    maildir_settings: Settings,
) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead = f"{socket.gethostname()}:{finished.stdout.strip()}:gone"
    alive = f"{socket.gethostname()}:{os.getpid()}:me"
    name = worker.lease_name(maildir_settings)
    with Store(maildir_settings.store) as store:
        store.worker.acquire_lease(name, alive, datetime.now(UTC), TTL)
    with pytest.raises(worker.WorkerBusy, match="already polling"):
        worker._acquire(maildir_settings, name, "other:1:x")  # a live holder keeps it
    with Store(maildir_settings.store) as store:
        store.worker.release_lease(name, alive)
        store.worker.acquire_lease(name, dead, datetime.now(UTC), TTL)
    worker._acquire(maildir_settings, name, "new:2:y")
    with Store(maildir_settings.store) as store:
        assert store.worker.lease_holder(name) == "new:2:y"


def test_worker_poll_alerts_once_after_failures_and_once_on_recovery(
    own_dovecot: DovecotServer, imap_settings: Callable[..., Settings], smtp_sink: SmtpSink
) -> None:
    box = Mailbox(own_dovecot, "alerted")
    settings = replace(
        imap_settings(box),
        smtp=SmtpSettings(host=smtp_sink.host, port=smtp_sink.port, security="none"),
        alerts=AlertSettings(recipients=("oncall@example.org",), after_failures=2),
    )  # fmt: skip
    poll = settings.schedule.poll_seconds
    own_dovecot.stop()
    at = AT
    assert poll_job(settings, at)  # failure 1: no alert yet
    assert alerts_at(smtp_sink) == []
    assert not poll_job(settings, at + timedelta(seconds=poll - 5))  # not due yet
    at += timedelta(seconds=poll)
    assert poll_job(settings, at)  # failure 2: the alert
    assert not poll_job(settings, at + timedelta(seconds=poll))  # backing off: twice as long
    for _ in range(3):  # failures 3, 4, 5: no storm
        at += timedelta(hours=1)
        assert poll_job(settings, at)
    assert len(alerts_at(smtp_sink)) == 1
    with Store(settings.store) as store:
        health = store.worker.poll_health()
    assert (health.failures, health.alerted) == (5, True)
    assert "ConnectionRefused" in (health.last_error or "")
    own_dovecot.start()
    box.append(story_message(1))
    assert poll_job(settings, at + timedelta(hours=1))
    assert poll_job(settings, at + timedelta(hours=2))  # a second good poll: nothing more
    alerts = alerts_at(smtp_sink)
    assert len(alerts) == 2 and b"works again" in alerts[1]
    with Store(settings.store) as store:
        assert store.worker.poll_health().failures == 0 and len(list(store.stories.stories())) == 1


def write_worker_config(tmp_path: Path, box: Mailbox, sink: SmtpSink) -> Path:
    return imap_config(tmp_path, box, smtp_port=sink.port, extra=(
        '[digest]\nrecipients = ["team@example.org"]\nschedule = "* * * * *"\n'
        f'output_dir = "{tmp_path}/digests"\n[schedule]\npoll_seconds = 1\n'))  # fmt: skip


def start_worker(config: Path) -> subprocess.Popen[str]:
    return start_pipeline(config, "--log-format", "json", "run")


@pytest.mark.slow
def test_worker_process_acknowledges_digests_refuses_a_twin_and_stops_on_sigterm(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink
) -> None:
    config = write_worker_config(tmp_path, mailbox, smtp_sink)
    body = "The GP, the hospital and the council all asked me the same questions again."
    first = start_worker(config)
    try:
        mailbox.append(story_message(1, body=body, sender="Sam Example <sam@example.org>"))
        wait_for(lambda: any(b"<ack-" in m[2] for m in smtp_sink.messages), 60,
                 "the acknowledgement at the sink")  # fmt: skip
        twin = start_worker(config)
        _, twin_err = twin.communicate(timeout=60)
        assert twin.returncode != 0 and "another worker" in twin_err
        wait_for(lambda: any(b"<digest-" in m[2] for m in smtp_sink.messages), 90,
                 "the digest at the sink (schedule: every minute)")  # fmt: skip
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any("worker stopped" in line["message"] for line in lines)
    assert not any(s in err for s in ("sam@example.org", "My story number", "GP, the hospital"))
    database = sqlite3.connect(tmp_path / "stories.db")
    sending = database.execute("SELECT count(*) FROM outbox WHERE state = 'sending'").fetchone()
    assert sending == (0,)
    assert database.execute("SELECT state FROM digests").fetchall() == [("sent",)]
    assert database.execute("SELECT count(*) FROM leases").fetchone()[0] == 0
    assert sum(b"<ack-" in m[2] for m in smtp_sink.messages) == 1
