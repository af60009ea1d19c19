"""IMAP IDLE in the worker: the real worker process against Dovecot and aiosmtpd, with a poll
interval so long that only IDLE can explain a prompt acknowledgement; the IDLE connection
kicked by ``doveadm kick``; SIGTERM while idling; and the pure predicates behind it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

from story_intake.schedule import idle_renew_due, idle_retry_seconds, poll_due

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger  # trained once (the worker's first pass loads it)

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
POLL = 300  # the safety-net poll: far longer than any wait below


def health(database: Path) -> dict[str, Any]:
    """The poll health record the worker keeps (empty before the first write)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT value FROM worker_state WHERE name = 'poll'").fetchone()
    except sqlite3.OperationalError:
        return {}
    return dict(json.loads(row[0])) if row else {}


def listening_since(database: Path, after: str = "") -> str:
    """When IDLE last started listening (its wake), once the pass that wake caused has
    finished and it is later than ``after``; "" until then."""
    h = health(database)
    woken, attempt = h.get("woken_at") or "", h.get("last_attempt_at") or ""
    return woken if woken > after and attempt > woken else ""


def acks(sink: SmtpSink) -> int:
    return sum(b"<ack-" in data for _, _, data in sink.messages)


def idle_worker(tmp_path: Path, box: Mailbox, sink: SmtpSink, extra: str = "") -> Path:
    return imap_config(tmp_path, box, smtp_port=sink.port, extra=(
        f'[digest]\noutput_dir = "{tmp_path}/digests"\n[schedule]\npoll_seconds = {POLL}\n'
        + extra))  # fmt: skip


def stop_worker(worker: subprocess.Popen[str]) -> tuple[int, str]:
    worker.send_signal(signal.SIGTERM)
    try:
        _, err = worker.communicate(timeout=15)  # seconds, not the next poll's 300
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    return worker.returncode, err


def test_idle_worker_acknowledges_an_append_at_once_and_stops_on_sigterm(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger
) -> None:
    database = tmp_path / "stories.db"
    worker = start_pipeline(idle_worker(tmp_path, mailbox, smtp_sink), "--log-format", "json",
                            "run")  # fmt: skip
    try:
        wait_for(lambda: bool(listening_since(database)), 60, "IDLE listening")
        # The first poll has run; the next is 300 s away: only IDLE can fetch this one.
        mailbox.append(story_message(1, sender="Sam Example <sam@example.org>"))
        wait_for(lambda: acks(smtp_sink) == 1, 60, "the acknowledgement, long before a poll")
        code, err = stop_worker(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, err[-2000:]
    assert "worker stopped" in err and "sam@example.org" not in err


def test_idle_worker_reconnects_after_a_kick_and_counts_it(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, dovecot: DovecotServer, tagger: Tagger
) -> None:
    database = tmp_path / "stories.db"
    config = idle_worker(tmp_path, mailbox, smtp_sink)
    worker = start_pipeline(config, "--log-format", "json", "run")
    try:
        wait_for(lambda: bool(listening_since(database)), 60, "IDLE listening")
        first = listening_since(database)
        kicked = subprocess.run(["doveadm", "-c", str(dovecot.config), "kick", mailbox.user],
                                capture_output=True, text=True)  # fmt: skip
        assert kicked.returncode == 0, kicked.stderr
        wait_for(lambda: health(database).get("idle_drops") == 1, 30, "the drop counted")
        wait_for(lambda: bool(listening_since(database, first)), 30, "IDLE listening again")
        mailbox.append(story_message(2))
        wait_for(lambda: acks(smtp_sink) == 1, 60, "the acknowledgement after the reconnect")
        code, err = stop_worker(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, err[-2000:]
    shown = start_pipeline(config, "status")
    out, _ = shown.communicate(timeout=60)
    assert json.loads(out)["polling"]["idle_reconnects"] == 1


def test_idle_watchdog_reconnects_when_the_server_stops_answering(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, dovecot: DovecotServer, tagger: Tagger
) -> None:
    database = tmp_path / "stories.db"
    config = idle_worker(tmp_path, mailbox, smtp_sink, "idle_silence_seconds = 2\n")
    worker = start_pipeline(config, "--log-format", "json", "run")
    frozen: list[int] = []
    try:
        wait_for(lambda: bool(listening_since(database)), 60, "IDLE listening")
        first = listening_since(database)
        # The process behind the IDLE connection freezes: the socket stays open, nothing
        # more is said, and only the silence probe (NOOP, then the read timeout) can tell.
        frozen = imap_pids(dovecot, mailbox.user)
        assert len(frozen) == 1
        os.kill(frozen[0], signal.SIGSTOP)
        wait_for(lambda: health(database).get("idle_drops") == 1, 40, "the dead connection found")
        wait_for(lambda: bool(listening_since(database, first)), 30, "IDLE listening again")
        mailbox.append(story_message(3))
        wait_for(lambda: acks(smtp_sink) == 1, 60, "the acknowledgement after the reconnect")
        code, err = stop_worker(worker)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGKILL)
        if worker.poll() is None:
            worker.kill()
    assert code == 0, err[-2000:]


def test_idle_failed_reconnections_count_as_failed_polls_and_alert(
    tmp_path: Path, own_dovecot: DovecotServer, smtp_sink: SmtpSink, tagger: Tagger
) -> None:
    database = tmp_path / "stories.db"
    box = Mailbox(own_dovecot, "alerted")
    config = idle_worker(tmp_path, box, smtp_sink, (
        '[alerts]\nrecipients = ["oncall@example.org"]\nafter_failures = 2\n'))  # fmt: skip
    worker = start_pipeline(config, "--log-format", "json", "run")
    try:
        wait_for(lambda: bool(listening_since(database)), 60, "IDLE listening")
        own_dovecot.stop()  # the next poll is 300 s away: only IDLE can notice, and count it
        wait_for(lambda: len(alerts(smtp_sink)) == 1, 30, "the alert after 2 failed reconnections")
        # (the alert goes out before the health record that counts it is saved)
        wait_for(lambda: health(database)["failures"] >= 2, 10, "the failures counted")
        assert health(database)["idle_drops"] == 1
        own_dovecot.start()
        box.append(story_message(5))
        wait_for(lambda: acks(smtp_sink) == 1, 60, "the acknowledgement once it is back")
        wait_for(lambda: len(alerts(smtp_sink)) == 2, 30, "the all-clear")
        code, err = stop_worker(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, err[-2000:]
    assert b"works again" in alerts(smtp_sink)[1]
    assert health(database)["failures"] == 0


def alerts(sink: SmtpSink) -> list[bytes]:
    return [data for _, _, data in sink.messages if b"Message-ID: <alert-" in data]


def test_idle_worker_polls_when_the_server_offers_no_idle(
    tmp_path: Path, smtp_sink: SmtpSink, tagger: Tagger
) -> None:
    server = DovecotServer("imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS MOVE\n")
    server.start()
    try:
        box = Mailbox(server, "no-idle")
        config = imap_config(
            tmp_path,
            box,
            smtp_port=smtp_sink.port,
            extra=(f'[digest]\noutput_dir = "{tmp_path}/digests"\n[schedule]\npoll_seconds = 1\n'),
        )
        worker = start_pipeline(config, "--log-format", "json", "run")
        try:
            box.append(story_message(4))
            wait_for(lambda: acks(smtp_sink) == 1, 60, "the acknowledgement by polling")
            code, err = stop_worker(worker)
        finally:
            if worker.poll() is None:
                worker.kill()
    finally:
        server.remove()
    assert code == 0, err[-2000:]
    assert "does not offer IDLE: polling every 1s" in err
    assert health(tmp_path / "stories.db").get("idle_drops") == 0


def imap_pids(server: DovecotServer, user: str) -> list[int]:
    """The imap processes serving ``user`` (``doveadm who -1``: user, service, pid, ip)."""
    who = subprocess.run(["doveadm", "-c", str(server.config), "who", "-1", user],
                         capture_output=True, text=True, check=True)  # fmt: skip
    rows = [line.split() for line in who.stdout.splitlines()[1:]]
    return [int(row[2]) for row in rows if row[1] == "imap"]


def test_idle_poll_is_due_at_once_after_an_arrival_even_while_backing_off() -> None:
    last = AT
    assert not poll_due(last, 0, POLL, AT + timedelta(seconds=10))
    assert poll_due(last, 0, POLL, AT + timedelta(seconds=10), woken_at=AT + timedelta(seconds=5))
    assert poll_due(last, 3, POLL, AT + timedelta(seconds=10), woken_at=AT + timedelta(seconds=5))
    # A wake the last pass already began after changes nothing.
    assert not poll_due(last, 0, POLL, AT + timedelta(seconds=10), woken_at=AT)


@pytest.mark.parametrize(
    ("since_renewed", "since_heard", "due"),
    [(10, 10, False), (1740, 10, True), (100, 300, True), (1739, 299, False)],
)
def test_idle_renewal_is_due_every_29_minutes_or_after_silence(
    since_renewed: float, since_heard: float, due: bool
) -> None:
    assert idle_renew_due(since_renewed, since_heard, 1740, 300) is due


def test_idle_reconnection_backs_off_up_to_the_poll_interval() -> None:
    delays = [idle_retry_seconds(n, POLL) for n in range(12)]
    assert delays[:4] == [1, 2, 4, 8] and max(delays) == POLL
    assert delays == sorted(delays)
