"""Failed sending is visible: a pass whose replies cannot be handed over ends 0 with the
replies pending, is counted like a failed poll, shown by `status`, alerted once after
``[alerts] after_failures`` passes in a row, and followed by one recovery email."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import SmtpSink, maildir_config, seed_maildir, story_message

from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.cli import main
from story_intake.pipeline import run_once
from triage.alerts import AlertSettings
from triage.reply.settings import SmtpSettings
from triage.tag.tagger import Tagger


def alerts_at(sink: SmtpSink) -> list[bytes]:
    return [data for _, _, data in sink.messages if b"Message-ID: <alert-" in data]


def sending(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 0
    found = json.loads(capsys.readouterr().out)["sending"]
    assert isinstance(found, dict)
    return found


def test_send_watch_starttls_missing_ends_0_counted_in_status_alert_kept_due(
    tmp_path: Path, smtp_sink: SmtpSink, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    def config(security: str) -> Path:
        server = f'host = "127.0.0.1"\nport = {smtp_sink.port}\nsecurity = "{security}"\n'
        alerts = '[alerts]\nrecipients = ["oncall@example.org"]\nafter_failures = 2\n'
        return maildir_config(tmp_path, extra=alerts, smtp=server)

    seed_maildir(tmp_path / "mailbox", story_message(1, message_id="<s1@example.org>"))
    for failures in (1, 2):  # the sink offers no STARTTLS: nothing may go in clear
        assert main(["--config", str(config("starttls")), "once", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["acknowledged"] == 0
        health = sending(config("starttls"), capsys)
        assert health["consecutive_failures"] == failures
        assert "SMTPNotSupportedError" in str(health["last_error"])
    # The alert is due but goes over the same server: it could not go, and status says so.
    assert (health["alert_sent"], health["alert_waiting_to_be_sent"]) == (False, True)
    assert smtp_sink.messages == []
    assert main(["--config", str(config("none")), "once", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["acknowledged"] == 1
    health = sending(config("none"), capsys)
    assert (health["consecutive_failures"], health["alert_waiting_to_be_sent"]) == (0, False)
    assert health["last_success_at"] is not None and len(smtp_sink.messages) == 1


def test_send_watch_alerts_once_after_failures_and_once_on_recovery(
    maildir_settings: Settings, now: datetime, tagger: Tagger, smtp_sink: SmtpSink
) -> None:
    settings = dataclasses.replace(
        maildir_settings,
        smtp=SmtpSettings(host=smtp_sink.host, port=smtp_sink.port, security="none"),
        alerts=AlertSettings(recipients=("oncall@example.org",), after_failures=2),
    )  # fmt: skip
    seed_maildir(
        settings.mailbox.maildir,  # type: ignore[union-attr]
        *(story_message(n, sender=f"P{n} <p{n}@example.org>") for n in range(3)),
    )
    at = now
    for _ in range(3):  # three passes, each ended by three temporary refusals in a row
        for _ in range(3):
            smtp_sink.fail_next(451)
        assert run_once(settings, at, tagger=tagger).acknowledged == 0
        at += timedelta(hours=1)  # past every backoff: all three are due again
    (alert,) = alerts_at(smtp_sink)
    assert b"cannot hand acknowledgements over" in alert and b"451" in alert
    with Store(settings.store) as store:
        health = store.worker.send_health()
    assert (health.failures, health.alerted) == (3, True)
    assert run_once(settings, at, tagger=tagger).acknowledged == 3
    assert run_once(settings, at + timedelta(hours=1), tagger=tagger).acknowledged == 0
    alerts = alerts_at(smtp_sink)
    assert len(alerts) == 2 and b"hands acknowledgements over again" in alerts[1]
    with Store(settings.store) as store:
        assert store.worker.send_health().failures == 0 and not store.worker.send_health().alerted


def test_send_watch_untrusted_certificate_is_a_failed_pass_not_a_sent_reply(
    maildir_settings: Settings, now: datetime, tagger: Tagger, untrusted_tls_sink: SmtpSink
) -> None:
    sink = untrusted_tls_sink
    smtp = SmtpSettings(host=sink.host, port=sink.port, security="starttls")
    settings = dataclasses.replace(maildir_settings, smtp=smtp)
    seed_maildir(settings.mailbox.maildir, story_message(1))  # type: ignore[union-attr]
    counts = run_once(settings, now, tagger=tagger)
    assert (counts.stored, counts.acknowledged) == (1, 0)
    with Store(settings.store) as store:
        health = store.worker.send_health()
        assert store.outbox.outbox_counts() == {"pending": 1}
    assert health.failures == 1 and "SSLCertVerificationError" in (health.last_error or "")
    assert untrusted_tls_sink.messages == []
