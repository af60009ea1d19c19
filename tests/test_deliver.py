"""Acknowledge stage end to end: one warm reply per person, none to machines, none twice."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Mailbox, SmtpSink, maildir_config, seed_maildir, story_message

from intake import report
from intake.records import Acknowledgement
from intake.store.engine import Store, StoreSettings
from story_intake.app_settings import Settings
from story_intake.cli import main
from story_intake.pipeline import run_once
from triage.reply import deliver as deliver_module
from triage.reply import sender as sender_module
from triage.reply.deliver import acknowledge
from triage.reply.pickup import pickup_name
from triage.reply.policy import reference
from triage.reply.render import message_id_for
from triage.reply.sender import backoff
from triage.reply.settings import SmtpSettings
from triage.tag.tagger import Tagger


@pytest.fixture
def settings(maildir_settings: Settings) -> Settings:
    return maildir_settings  # its pickup folder is in the test's own temporary folder


def deliver(settings: Settings, *messages: bytes) -> None:
    seed_maildir(settings.mailbox.maildir, *messages)  # type: ignore[union-attr]


def sent_messages(settings: Settings) -> list[email.message.EmailMessage]:
    folder = Path(settings.smtp.pickup_dir)
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted(folder.glob("*.eml"))] if folder.exists() else []  # fmt: skip


def states(settings: Settings) -> dict[str, str | None]:
    with Store(settings.store) as store:
        return {row["story_id"]: row["acknowledgement"] for row in report.export_rows(store)}


def test_deliver_one_reply_per_person_none_to_machines(
    settings: Settings, now: datetime, tagger: Tagger
) -> None:
    deliver(
        settings,
        story_message(1, message_id="<a1@example.org>", sender="Sam Okafor <sam@example.org>"),
        story_message(2, message_id="<a2@example.org>", sender="Sam Okafor <SAM@example.org>"),
        story_message(3, message_id="<ooo@example.org>", Auto_Submitted="auto-replied"),
        story_message(4, message_id="<list@example.org>", List_Id="<news.example.net>"),
        story_message(5, message_id="<bcc@example.org>").replace(
            b"To: stories@example.org", b"To: someone@example.net"
        ),  # a Bcc copy
    )
    counts = run_once(settings, now, tagger=tagger)
    assert (counts.acknowledged, counts.suppressed) == (1, 4)
    assert states(settings) == {
        "a1@example.org": "sent", "a2@example.org": "suppressed:rate_limited",
        "ooo@example.org": "suppressed:auto_submitted", "list@example.org": "suppressed:list_mail",
        "bcc@example.org": "suppressed:not_addressed",
    }  # fmt: skip
    (reply,) = sent_messages(settings)
    assert reply["To"] == "sam@example.org" and reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<a1@example.org>"
    body = reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Sam" in body and "My story number 1" not in body and "GP, the hospital" not in body
    again = run_once(settings, now, tagger=tagger)
    assert (again.acknowledged, again.suppressed) == (0, 0)
    assert len(sent_messages(settings)) == 1


def test_deliver_withdrawal_is_confirmed_even_right_after_an_acknowledgement(
    settings: Settings, now: datetime, tagger: Tagger
) -> None:
    sam = "Sam Okafor <sam@example.org>"
    # The border vouches for the withdrawal: otherwise it waits for a person (test_forged).
    border = dataclasses.replace(settings.intake, trusted_authserv_ids=("mx.example.org",))
    settings = dataclasses.replace(settings, intake=border)
    deliver(settings, story_message(1, message_id="<s@example.org>", sender=sam))
    run_once(settings, now, tagger=tagger)
    withdrawal = "Please delete my story, I have changed my mind."
    deliver(settings, story_message(2, message_id="<w@example.org>", body=withdrawal, sender=sam,
                                    Authentication_Results="mx.example.org; dmarc=pass "
                                    "header.from=example.org"))  # fmt: skip
    run_once(settings, now, tagger=tagger)
    assert states(settings) == {"s@example.org": "sent", "w@example.org": "sent"}
    subjects = sorted(m["Subject"].lower() for m in sent_messages(settings))
    assert sum("request" in s for s in subjects) == 1


def test_deliver_old_mail_is_imported_without_a_reply(
    settings: Settings, now: datetime, tagger: Tagger
) -> None:
    deliver(settings, story_message(1, message_id="<old@example.org>"))
    later = now + timedelta(days=settings.acknowledgement.max_age_days + 400)
    # The Maildir's delivery time is now; read it years later, as a backlog import would.
    counts = run_once(settings, later, tagger=tagger)
    assert counts.stored == 1 and counts.acknowledged == 0
    assert states(settings)["old@example.org"] == "suppressed:too_old"
    assert sent_messages(settings) == []


def test_deliver_crash_mid_send_is_held_never_sent_twice(
    settings: Settings, now: datetime, tagger: Tagger
) -> None:
    paused = dataclasses.replace(settings.acknowledgement, max_per_hour=0)  # decide, send nothing
    run_settings = dataclasses.replace(settings, acknowledgement=paused)
    deliver(settings, story_message(1, message_id="<c@example.org>"))
    run_once(run_settings, now, tagger=tagger)
    assert states(settings)["c@example.org"] == "pending"
    with Store(settings.store) as store:
        (claimed,) = store.outbox.claim(1, now)  # "sending" committed; the process dies here
        assert isinstance(claimed, Acknowledgement)
        assert acknowledge(store, now, settings.acknowledgement, settings.smtp,
                           settings.intake.addresses) == (0, 0)  # fmt: skip
        assert store.outbox.outbox_counts() == {"held": 1}
    assert states(settings)["c@example.org"] == "held"
    assert sent_messages(settings) == []


def test_deliver_held_acknowledgements_are_released_by_hand(
    tmp_path: Path, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    paused = maildir_config(tmp_path, extra="[acknowledgement]\nmax_per_hour = 0\n")
    seed_maildir(
        tmp_path / "mailbox",
        story_message(1, message_id="<h1@example.org>"),
        story_message(2, message_id="<h2@example.org>", sender="B <b@example.org>"),
    )
    assert main(["--config", str(paused), "once"]) == 0
    store_settings = StoreSettings(f"sqlite:///{tmp_path}/s.db")
    with Store(store_settings) as store:
        assert len(store.outbox.claim(2, datetime.now(UTC))) == 2  # the process died mid-send
    assert main(["--config", str(paused), "once"]) == 0
    with Store(store_settings) as store:
        assert set(store.outbox.outbox_states().values()) == {"held"}
    first = reference(story_from("person1@example.org", store_settings))
    capsys.readouterr()
    assert main(["--config", str(paused), "release", "--story", first]) == 0
    assert json.loads(capsys.readouterr().out) == {"released": 1, "as": "pending"}
    assert main(["--config", str(paused), "release", "--all", "--as-sent"]) == 0
    # The cap of 0 tripped the breaker; release --all also resumes it (a person has looked).
    assert json.loads(capsys.readouterr().out) == {"released": 1, "as": "sent", "resumed": True}
    assert main(["--config", str(maildir_config(tmp_path)), "once"]) == 0
    with Store(store_settings) as store:
        assert sorted(store.outbox.outbox_states().values()) == ["sent", "sent"]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1  # only the released one went


def story_from(address: str, settings: StoreSettings) -> str:
    with Store(settings) as store:
        (found,) = [s.story_id for s, _ in store.stories.triaged() if s.sender.address == address]
    return found


def test_deliver_disabled_sends_nothing(settings: Settings, now: datetime, tagger: Tagger) -> None:
    off = dataclasses.replace(settings.acknowledgement, enabled=False)
    settings = dataclasses.replace(settings, acknowledgement=off)
    deliver(settings, story_message(1, message_id="<d@example.org>"))
    assert run_once(settings, now, tagger=tagger).suppressed == 1
    assert states(settings)["d@example.org"] == "suppressed:disabled"


def test_deliver_decides_a_backlog_in_pages(
    settings: Settings, now: datetime, tagger: Tagger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliver_module, "DECISION_PAGE", 2)
    senders = ["A <a@example.org>", "B <b@example.org>", "A <a@example.org>", "C <c@example.org>",
               "B <b@example.org>"]  # fmt: skip
    deliver(settings, *(story_message(n, message_id=f"<p{n}@example.org>", sender=s)
                        for n, s in enumerate(senders)))  # fmt: skip
    counts = run_once(settings, now, tagger=tagger)
    assert (counts.acknowledged, counts.suppressed) == (3, 2)  # one per person, across pages
    assert sorted(states(settings).values()) == ["sent"] * 3 + ["suppressed:rate_limited"] * 2


def test_deliver_pickup_pages_hand_over_a_backlog_once_each(
    settings: Settings, now: datetime, tagger: Tagger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_module, "SEND_PAGE", 4)  # 11 replies: pages of 4, 4 and 3
    deliver(settings, *(story_message(n, sender=f"P{n} <p{n}@example.org>") for n in range(11)))
    assert run_once(settings, now, tagger=tagger).acknowledged == 11
    assert sorted(states(settings).values()) == ["sent"] * 11
    replies = sent_messages(settings)
    assert sorted(str(m["To"]) for m in replies) == sorted(f"p{n}@example.org" for n in range(11))
    folder = Path(settings.smtp.pickup_dir)
    assert not list(folder.glob(".*.tmp"))  # no temporary file left behind
    assert run_once(settings, now, tagger=tagger).acknowledged == 0


def test_deliver_pickup_crash_after_the_link_is_confirmed_by_the_file(
    settings: Settings, now: datetime, tagger: Tagger
) -> None:
    paused = dataclasses.replace(settings.acknowledgement, max_per_hour=0)
    deliver(
        settings,
        story_message(1, message_id="<f1@example.org>"),
        story_message(2, message_id="<f2@example.org>", sender="B <b@example.org>"),
    )
    run_once(dataclasses.replace(settings, acknowledgement=paused), now, tagger=tagger)
    with Store(settings.store) as store:
        assert len(store.outbox.claim(2, now)) == 2  # the page claimed; the process dies ...
    # ... after linking the first reply into the pickup folder, before recording it.
    first = message_id_for("f1@example.org", settings.smtp.from_address)
    folder = Path(settings.smtp.pickup_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / pickup_name(first)).write_bytes(b"Message-ID: " + first.encode() + b"\r\n\r\n")
    run_once(settings, now, tagger=tagger)
    assert states(settings) == {"f1@example.org": "sent", "f2@example.org": "held"}
    assert len(list(folder.glob("*.eml"))) == 1  # neither written again


def test_deliver_pickup_folder_unwritable_stops_after_three_and_loses_nothing(
    settings: Settings, now: datetime, tagger: Tagger, tmp_path: Path
) -> None:
    (tmp_path / "not-a-folder").write_text("")
    broken = dataclasses.replace(settings.smtp, pickup_dir=str(tmp_path / "not-a-folder" / "out"))
    deliver(settings, *(story_message(n, sender=f"P{n} <p{n}@example.org>") for n in range(6)))
    counts = run_once(dataclasses.replace(settings, smtp=broken), now, tagger=tagger)
    assert counts.stored == 6 and counts.acknowledged == 0
    with Store(settings.store) as store:
        due = store.outbox.due(10, now + timedelta(days=1))
        tried = [item for item, _ in due if item.attempts]
        assert len(tried) == 3 and len(store.outbox.due(10, now)) == 3  # 3 tried, 3 untouched
    assert run_once(settings, now + timedelta(days=1), tagger=tagger).acknowledged == 6
    assert len(sent_messages(settings)) == 6


def smtp_settings(settings: Settings, sink: SmtpSink) -> Settings:
    smtp = SmtpSettings(host=sink.host, port=sink.port, security="none",
                        from_address="stories@example.org")  # fmt: skip
    return dataclasses.replace(settings, smtp=smtp)


def test_deliver_451_is_retried_later_under_the_same_message_id(
    settings: Settings, now: datetime, tagger: Tagger, smtp_sink: SmtpSink
) -> None:
    settings = smtp_settings(settings, smtp_sink)
    deliver(settings, story_message(1, message_id="<t@example.org>"))
    smtp_sink.fail_next(451)
    assert run_once(settings, now, tagger=tagger).acknowledged == 0
    assert states(settings)["t@example.org"] == "pending" and smtp_sink.messages == []
    assert run_once(settings, now + timedelta(minutes=1), tagger=tagger).acknowledged == 0
    assert run_once(settings, now + backoff(0), tagger=tagger).acknowledged == 1  # backoff over
    (message,) = smtp_sink.messages
    assert email.message_from_bytes(message[2])["Message-ID"] == message_id_for(
        "t@example.org", "stories@example.org")  # fmt: skip
    assert message[0] == "<>"  # the null envelope sender


def test_deliver_smtp_records_every_reply_it_sent_when_the_cap_stops_it(
    settings: Settings, now: datetime, tagger: Tagger, smtp_sink: SmtpSink
) -> None:
    # Over SMTP a reply is recorded in the transaction that claims the next one; the last
    # one before the cap must be recorded all the same, not left "sending" (held next run).
    capped = dataclasses.replace(settings.acknowledgement, max_per_hour=3)
    settings = dataclasses.replace(smtp_settings(settings, smtp_sink), acknowledgement=capped)
    deliver(settings, *(story_message(n, sender=f"P{n} <p{n}@example.org>") for n in range(5)))
    assert run_once(settings, now, tagger=tagger).acknowledged == 3
    assert sorted(states(settings).values()) == ["pending"] * 2 + ["sent"] * 3
    assert len(smtp_sink.messages) == 3


def test_deliver_550_fails_and_that_address_is_not_tried_again(
    settings: Settings, now: datetime, tagger: Tagger, smtp_sink: SmtpSink
) -> None:
    settings = smtp_settings(settings, smtp_sink)
    smtp_sink.reject("gone@example.org", 550)
    gone = "Gone <gone@example.org>"
    deliver(settings, story_message(1, message_id="<g1@example.org>", sender=gone),
            story_message(2, message_id="<ok@example.org>"))  # fmt: skip
    assert run_once(settings, now, tagger=tagger).acknowledged == 1  # one refusal stops nothing
    deliver(settings, story_message(3, message_id="<g2@example.org>", sender=gone))
    run_once(settings, now, tagger=tagger)  # a failed reply does not count as a recent one
    assert states(settings) == {"g1@example.org": "failed", "ok@example.org": "sent",
                                "g2@example.org": "suppressed:undeliverable"}  # fmt: skip


def test_deliver_three_stories_in_two_days_one_reply_then_a_second_after_a_week(
    settings: Settings, now: datetime, tagger: Tagger
) -> None:
    sam = "Sam <sam@example.org>"
    for day in range(3):
        deliver(settings, story_message(day, message_id=f"<d{day}@example.org>", sender=sam))
        run_once(settings, now + timedelta(hours=16 * day), tagger=tagger)
    assert len(sent_messages(settings)) == 1
    deliver(settings, story_message(9, message_id="<d9@example.org>", sender=sam))
    run_once(settings, now + timedelta(days=7, hours=1), tagger=tagger)
    assert len(sent_messages(settings)) == 2


def test_deliver_crisis_wording_gets_help_and_is_urgent_even_without_a_reply(
    settings: Settings, now: datetime, tagger: Tagger
) -> None:
    crisis = "Since the section I have felt suicidal most nights and the crisis team never rang."
    sam = "Sam <sam@example.org>"
    deliver(settings, story_message(1, message_id="<u1@example.org>", body=crisis, sender=sam),
            story_message(2, message_id="<u2@example.org>", body=crisis, sender=sam))  # fmt: skip
    run_once(settings, now, tagger=tagger)
    (reply,) = sent_messages(settings)
    body = reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "116 123" in body and "999" in body and "suicidal" not in body
    with Store(settings.store) as store:
        rows = {row["story_id"]: row for row in report.export_rows(store)}
    assert rows["u1@example.org"]["urgent"] and rows["u2@example.org"]["urgent"]
    assert rows["u2@example.org"]["acknowledgement"] == "suppressed:rate_limited"


@pytest.mark.slow
def test_deliver_killed_after_the_server_took_the_message_never_sends_it_twice(
    tmp_path: Path, tagger: Tagger, smtp_sink: SmtpSink
) -> None:
    root = Path(__file__).resolve().parents[1]
    relay = f'host = "127.0.0.1"\nport = {smtp_sink.port}\nsecurity = "none"\n'
    config = maildir_config(tmp_path, smtp=relay)
    seed_maildir(tmp_path / "mailbox", story_message(1, message_id="<k@example.org>"))
    command = [sys.executable, str(root / "run_pipeline.py"), "--config", str(config), "once"]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    # The server has the message; the sender dies before it can record that it was sent.
    smtp_sink.on_message = lambda: process.send_signal(signal.SIGKILL)
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL and len(smtp_sink.messages) == 1
    smtp_sink.on_message = None
    rerun = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert len(smtp_sink.messages) == 1  # not sent again
    with Store(StoreSettings(f"sqlite:///{tmp_path}/s.db")) as store:
        assert store.outbox.outbox_states() == {"k@example.org": "held"}


def test_deliver_interrupted_send_is_confirmed_from_the_sent_folder(
    mailbox: Mailbox, imap_settings: Callable[..., Settings], now: datetime, tagger: Tagger
) -> None:
    settings = imap_settings(mailbox)
    paused = dataclasses.replace(settings.acknowledgement, max_per_hour=0)
    smtp = dataclasses.replace(settings.smtp, sent_folder="Sent")
    settings = dataclasses.replace(settings, acknowledgement=paused, smtp=smtp)
    other = "B <b@example.org>"
    mailbox.append(story_message(1, message_id="<c1@example.org>"),
                   story_message(2, message_id="<c2@example.org>", sender=other))  # fmt: skip
    run_once(settings, now, tagger=tagger)
    with Store(settings.store) as store:
        assert len(store.outbox.claim(2, now)) == 2  # both "sending" when the process died
    # Only the first reached the server, which filed its copy in Sent.
    copy = story_message(9, message_id=message_id_for("c1@example.org", "stories@example.org"))
    mailbox.append(copy, folder="Sent")
    run_once(settings, now, tagger=tagger)
    assert states(settings) == {"c1@example.org": "sent", "c2@example.org": "held"}
    with Store(settings.store) as store:  # the reply history says how each was settled
        last = {i: store.reply_events.events(i)[-1] for i in ("c1@example.org", "c2@example.org")}
    assert (last["c1@example.org"].state, last["c1@example.org"].detail) == ("sent", "found_sent")
    assert (last["c2@example.org"].state, last["c2@example.org"].detail) == ("held", "interrupted")


def test_deliver_encoded_header_injection_adds_no_header(
    settings: Settings, now: datetime, tagger: Tagger
) -> None:
    hostile = "=?UTF-8?Q?a=0ABcc:_x@evil.example?="
    named = story_message(1, message_id="<name@example.org>", sender="P <name@example.org>")
    named = named.replace(b"From: P", f"From: {hostile}".encode())  # the parser drops it
    titled = story_message(2, message_id="<subj@example.org>", sender="Q <subj@example.org>")
    titled = titled.replace(b"Subject: My story number 2", f"Subject: {hostile}".encode())
    deliver(settings, named, titled)
    run_once(settings, now, tagger=tagger)
    assert states(settings) == {"name@example.org": "suppressed:bad_sender",
                                "subj@example.org": "sent"}  # fmt: skip
    (reply,) = sent_messages(settings)
    raw = next(Path(settings.smtp.pickup_dir).glob("*.eml")).read_bytes()
    assert b"evil.example" not in raw and b"Bcc" not in raw
    assert reply.get_all("To") == ["subj@example.org"] and reply["Cc"] is None
