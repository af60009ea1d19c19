"""Forged mail end to end (real Dovecot, real SMTP sink, the command line): a request that
changes data is acted on by itself only when the team's border authenticated its From domain;
replies go to the envelope sender, never to a From address the message could not prove."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import PASSWORD, Mailbox, SmtpSink, imap_config, story_message

from intake import report
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.cli import main
from story_intake.jobs import digest_context
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from triage.digest.deliver import send_digest
from triage.reply.policy import reference
from triage.tag.tagger import Tagger

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
JANE = "Jane Doe <jane@example.net>"
BORDER = "mx.stories.example.org"
STORY = ("The hospital discharged my mum without telling her GP, and the council asked me for "
         "the same forms three times because nobody shared the care plan.")  # fmt: skip
WITHDRAW = "Please withdraw my story. I do not want it used any more, delete it."


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORY_TEST_IMAP_PASSWORD", PASSWORD)


def configure(tmp_path: Path, box: Mailbox, sink: SmtpSink, trusted: str = BORDER) -> Path:
    extra = (f'[intake]\ntrusted_authserv_ids = ["{trusted}"]\n'
             f'[digest]\noutput_dir = "{tmp_path}/digests"\n')  # fmt: skip
    return imap_config(tmp_path, box, smtp_port=sink.port, extra=extra)


def settings_of(config: Path) -> Settings:
    return load_settings(config, {"STORY_TEST_IMAP_PASSWORD": PASSWORD})


def forged_withdrawal(n: int, results: str = "dmarc=fail header.from=example.net") -> bytes:
    return story_message(n, message_id=f"<forged-{n}@example.net>", sender=JANE, body=WITHDRAW,
                         Return_Path="<attacker@evil.example>",
                         Authentication_Results=f"{BORDER}; spf=pass "
                         f"smtp.mailfrom=evil.example; {results}")  # fmt: skip


def cli(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(["--config", str(config), *args]) == 0
    found: dict[str, object] = json.loads(capsys.readouterr().out)
    return found


def acknowledgements(settings: Settings) -> dict[str, str | None]:
    with Store(settings.store) as store:
        return {r["story_id"]: r["acknowledgement"] for r in report.export_rows(store)}


def recipients(sink: SmtpSink) -> list[str]:
    return [address for _, rcpts, _ in sink.messages for address in rcpts]


def test_forged_withdrawals_wait_for_a_person_and_release_confirms_one(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config = configure(tmp_path, mailbox, smtp_sink)
    settings = settings_of(config)
    mailbox.append(story_message(1, message_id="<real@example.net>", sender=JANE, body=STORY,
                                 Return_Path="<jane@example.net>"))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    assert recipients(smtp_sink) == ["jane@example.net"]  # her story's acknowledgement
    mailbox.append(*(forged_withdrawal(n) for n in range(2, 7)))
    counts = run_once(settings, T0 + timedelta(minutes=5), tagger=tagger)

    assert (counts.stored, counts.acknowledged) == (5, 0)
    assert recipients(smtp_sink) == ["jane@example.net"]  # nothing more, to anyone
    states = acknowledgements(settings)
    forged = [states[f"forged-{n}@example.net"] for n in range(2, 7)]
    assert forged == ["held"] + ["suppressed:rate_limited"] * 4
    status = cli(config, capsys, "status")
    assert status["needs_confirmation"] == [reference("forged-2@example.net")]
    assert status["awaiting_erasure"] == []  # Jane's story is not on hold
    with Store(settings.store) as store:
        digest = send_digest(store, T0 + timedelta(hours=1), digest_context(settings))
    assert digest.path is not None
    page = digest.path.read_text()
    assert reference("real@example.net") in page and "on hold" not in page
    assert page.count("needs confirmation") == 1 and "request:withdrawal" in page

    released = cli(config, capsys, "release", "--story", reference("forged-2@example.net"))
    # Her story and the four other requests from her address go on hold.
    assert released == {"released": 1, "as": "pending", "confirmed": 1, "on_hold": 5}
    run_once(settings, T0 + timedelta(hours=2), tagger=tagger)
    assert recipients(smtp_sink) == ["jane@example.net", "jane@example.net"]
    assert b"withdraw" in smtp_sink.messages[-1][2]
    assert reference("real@example.net") in cli(config, capsys, "status")["awaiting_erasure"]  # type: ignore[operator]


def test_forged_withdrawal_authenticated_by_the_border_acts_at_once(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    settings = settings_of(configure(tmp_path, mailbox, smtp_sink))
    passed = f"{BORDER}; dmarc=pass (p=reject) header.from=example.net"
    mailbox.append(story_message(1, message_id="<real@example.net>", sender=JANE, body=STORY),
                   *(story_message(n, message_id=f"<w{n}@example.net>", sender=JANE,
                                   body=WITHDRAW, Return_Path="<jane@example.net>",
                                   Authentication_Results=passed) for n in (2, 3)))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    states = acknowledgements(settings)
    # One confirmation a sender per window, however many withdrawals come.
    assert (states["w2@example.net"], states["w3@example.net"]) == (
        "sent", "suppressed:rate_limited")  # fmt: skip
    with Store(settings.store) as store:
        assert "real@example.net" in store.privacy.on_hold()
    assert recipients(smtp_sink) == ["jane@example.net", "jane@example.net"]


def test_forged_withdrawal_passing_at_an_untrusted_authserv_id_is_not_acted_on(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger,
) -> None:  # fmt: skip
    settings = settings_of(configure(tmp_path, mailbox, smtp_sink))
    mailbox.append(story_message(1, message_id="<real@example.net>", sender=JANE, body=STORY),
                   story_message(2, message_id="<w@example.net>", sender=JANE, body=WITHDRAW,
                                 Return_Path="<jane@example.net>",
                                 Authentication_Results="mx.evil.example; dmarc=pass "
                                 "header.from=example.net"))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    assert acknowledgements(settings)["w@example.net"] == "held"
    with Store(settings.store) as store:
        assert store.privacy.on_hold() == []
        assert store.outbox.needs_confirmation() == ["w@example.net"]
    assert recipients(smtp_sink) == ["jane@example.net"]  # the story's acknowledgement only


def test_forged_backscatter_is_suppressed_and_replies_go_to_the_envelope_sender(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger,
) -> None:  # fmt: skip
    settings = settings_of(configure(tmp_path, mailbox, smtp_sink))
    mailbox.append(
        story_message(1, message_id="<forged@example.org>", body=STORY,
                      sender="Victim <victim@example.org>", Return_Path="<attacker@evil.example>",
                      Authentication_Results=f"{BORDER}; dmarc=fail header.from=example.org"),
        story_message(2, message_id="<own@example.net>", body=STORY, sender=JANE,
                      Return_Path="<jane.doe+lists@example.net>"),
    )  # fmt: skip
    counts = run_once(settings, T0, tagger=tagger)
    assert (counts.acknowledged, counts.suppressed) == (1, 1)
    assert acknowledgements(settings)["forged@example.org"] == "suppressed:unverified_sender"
    assert recipients(smtp_sink) == ["jane.doe+lists@example.net"]


def test_forged_release_all_leaves_requests_that_need_confirmation(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config = configure(tmp_path, mailbox, smtp_sink)
    mailbox.append(forged_withdrawal(1))
    run_once(settings_of(config), T0, tagger=tagger)
    assert cli(config, capsys, "release", "--all")["released"] == 0
    assert cli(config, capsys, "status")["needs_confirmation"] == [
        reference("forged-1@example.net")]  # fmt: skip
