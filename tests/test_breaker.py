"""The acknowledgement breaker: once ``max_per_hour`` replies have gone within an hour, sending
stops and stays stopped, across hours and runs, until a person resumes it; the team is told
once, and ``status`` and the digest say so."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import maildir_config, seed_maildir, story_message

from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.cli import main
from story_intake.jobs import digest_context
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from triage.digest.deliver import preview_digest
from triage.reply.send_watch import resume
from triage.tag.tagger import Tagger

BREAKER_SUBJECT = "acknowledgements stopped"


def configured(tmp_path: Path) -> tuple[Path, Settings]:
    config = maildir_config(tmp_path, extra=(
        '[acknowledgement]\nmax_per_hour = 3\n[alerts]\nrecipients = ["oncall@example.org"]\n'
        f'[digest]\noutput_dir = "{tmp_path}/digests"\n'))  # fmt: skip
    return config, load_settings(config, {})


def outbox(tmp_path: Path) -> tuple[int, list[str]]:
    """Replies written to the pickup folder, and the subjects of the alerts among them."""
    replies, alerts = 0, []
    for path in sorted((tmp_path / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["Auto-Submitted"] == "auto-generated":
            alerts.append(str(message["Subject"]))
        else:
            replies += 1
    return replies, alerts


def status(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 0
    breaker = json.loads(capsys.readouterr().out)["acknowledgement_breaker"]
    assert isinstance(breaker, dict)
    return breaker


def test_breaker_latches_across_hours_until_resumed_and_alerts_once(
    tmp_path: Path, now: datetime, tagger: Tagger, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    config, settings = configured(tmp_path)
    seed_maildir(
        tmp_path / "mailbox",
        *(story_message(n, sender=f"P{n} <p{n}@example.org>") for n in range(5)),
    )
    assert run_once(settings, now, tagger=tagger).acknowledged == 3
    assert caplog.text.count("cap of 3 an hour reached") == 1
    tripped = status(config, capsys)
    assert tripped["state"] != "closed" and tripped["tripped_at"] == now.isoformat()
    assert (tripped["sent_when_tripped"], tripped["alert_sent"]) == (3, True)
    # An hour, a day later: still stopped (it used to reopen by itself every hour).
    for later in (timedelta(hours=1, seconds=1), timedelta(days=1)):
        assert run_once(settings, now + later, tagger=tagger).acknowledged == 0
    assert outbox(tmp_path) == (3, ["Story intake: " + BREAKER_SUBJECT + " (hourly cap reached)"])
    with Store(settings.store) as store:
        assert store.outbox.outbox_counts() == {"pending": 2, "sent": 3}
        view = preview_digest(store, now + timedelta(days=1), digest_context(settings))
    assert view.path is not None and 'id="sending-stopped"' in view.path.read_text()
    capsys.readouterr()
    assert main(["--config", str(config), "resume"]) == 0
    assert json.loads(capsys.readouterr().out) == {"resumed": True}
    assert status(config, capsys)["state"] == "closed"
    assert run_once(settings, now + timedelta(days=1, minutes=1), tagger=tagger).acknowledged == 2
    assert outbox(tmp_path)[0] == 5 and len(outbox(tmp_path)[1]) == 1  # no new alert
    assert status(config, capsys)["state"] == "closed"  # 2 since the resume: under the cap


def test_breaker_resumed_then_tripped_again_alerts_again(
    tmp_path: Path, now: datetime, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    config, settings = configured(tmp_path)
    seed_maildir(
        tmp_path / "mailbox",
        *(story_message(n, sender=f"P{n} <p{n}@example.org>") for n in range(7)),
    )
    assert run_once(settings, now, tagger=tagger).acknowledged == 3
    with Store(settings.store) as store:
        assert resume(store, now + timedelta(minutes=4))
    # Within the same hour: what went before the resume does not count again.
    assert run_once(settings, now + timedelta(minutes=5), tagger=tagger).acknowledged == 3
    assert run_once(settings, now + timedelta(hours=3), tagger=tagger).acknowledged == 0
    assert outbox(tmp_path)[0] == 6 and len(outbox(tmp_path)[1]) == 2
    assert status(config, capsys)["sent_when_tripped"] == 3
