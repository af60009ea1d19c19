"""Replies end to end: each request kind its own reply, and an unsubscribe honoured for good.

``run_once`` with the real tagger on the embedded default (Maildir in, pickup folder out).
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import sqlite3
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from conftest import maildir_config, seed_maildir, story_message

from intake import report
from intake.store.engine import Store
from story_intake.app_settings import IntakeSettings, Settings
from story_intake.cli import main
from story_intake.jobs import var_folders
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from triage.erasure import erase
from triage.privacy import stories_of
from triage.reply.identity import mailbox_identity
from triage.reply.policy import reference
from triage.reply.render import SUBJECTS
from triage.tag.tagger import Tagger

TEXTS = {  # texts the shipped tagger reads as these kinds, sure of it
    "story": "",  # story_message's own story
    "request:press": "Hello, I'm a freelance journalist writing for a national about police "
                     "and mental health calls. Would any of your contributors be willing to "
                     "speak on the record? Happy to discuss anonymity.",
    "request:event": "Is the listening event still on at the Methodist hall on Thursday? And "
                     "is there parking?",
    "request:question": "Will my story be anonymous? My boss might read it.",
    "request:amend": "Small correction: I'm a paramedic, not a nurse as I wrote. Can you "
                     "update that? Thanks, Craig",
    "request:unsubscribe": "Stop emailing me.",
}  # fmt: skip
TEMPLATE = {"story": "acknowledgement", "request:press": "request_press",
            "request:event": "request_event", "request:question": "request_question",
            "request:amend": "request_amend",
            "request:unsubscribe": "unsubscribe_confirmation"}  # fmt: skip


def message(n: int, kind: str, sender: str, **headers: str) -> bytes:
    return story_message(n, message_id=f"<{kind.replace(':', '-')}-{n}@example.net>",
                         body=TEXTS[kind], sender=sender, **headers)  # fmt: skip


def replies(settings: Settings) -> dict[str, EmailMessage]:
    """The pickup folder's messages by the story they answer (In-Reply-To, brackets off)."""
    found = {}
    for path in Path(settings.smtp.pickup_dir).glob("*.eml"):
        reply = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[str(reply["In-Reply-To"]).strip("<>")] = reply
    return found  # type: ignore[return-value]


def text_of(reply: EmailMessage) -> str:
    return reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def acknowledgements(settings: Settings) -> dict[str, str | None]:
    with Store(settings.store) as store:
        return {row["story_id"]: row["acknowledgement"] for row in report.export_rows(store)}


def test_replies_each_request_kind_gets_its_own_template(
    maildir_settings: Settings, now: datetime, tagger: Tagger
) -> None:
    settings = maildir_settings
    seed_maildir(settings.mailbox.maildir, *(  # type: ignore[union-attr]
        message(n, kind, f"Person {n} <person{n}@example.net>")
        for n, kind in enumerate(TEXTS)))  # fmt: skip
    run_once(settings, now, tagger=tagger)
    amend = "request-amend-4@example.net"
    assert acknowledgements(settings)[amend] == "held"  # it changes data: a person confirms
    with Store(settings.store) as store:
        assert store.outbox.release_held([amend], "pending", now) == 1
    run_once(settings, now, tagger=tagger)
    sent = replies(settings)
    assert len(sent) == len(TEXTS)
    for n, kind in enumerate(TEXTS):
        story_id = f"{kind.replace(':', '-')}-{n}@example.net"
        reply, ref = sent[story_id], reference(story_id)
        assert reply["Subject"] == SUBJECTS[TEMPLATE[kind]].replace("{reference}", ref)
        body = text_of(reply)
        assert ref in body and (TEXTS[kind] or "the GP, the hospital")[:30] not in body
        html = reply.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert ref in html
        if kind == "story":
            assert "Thank you for sharing your story" in body
            continue
        # The complaint: a request thanked for "your story" and told how to withdraw it.
        assert "sharing your story" not in body and "withdraw your story" not in body
        assert "What happens next" in body and "What happens next" in html
    assert "Who will answer" in text_of(sent["request-press-1@example.net"])
    assert "last email" in text_of(sent["request-unsubscribe-5@example.net"])


def test_replies_unsubscribe_is_confirmed_once_and_the_inbox_never_answered_again(
    maildir_settings: Settings, now: datetime, tagger: Tagger
) -> None:
    settings, box = maildir_settings, maildir_settings.mailbox.maildir  # type: ignore[union-attr]
    ann = "Ann Jones <ann@example.net>"
    seed_maildir(box, message(1, "story", ann))
    run_once(settings, now, tagger=tagger)
    # Within the rate-limit window of that acknowledgement: the confirmation still goes.
    seed_maildir(box, message(2, "request:unsubscribe", ann))
    later = now + timedelta(hours=1)
    counts = run_once(settings, later, tagger=tagger)
    assert counts.acknowledged == 1
    confirmation = replies(settings)["request-unsubscribe-2@example.net"]
    assert confirmation["To"] == "ann@example.net"
    # A week on: a story from the same inbox, written another way, and a second unsubscribe.
    week = now + timedelta(days=8)
    seed_maildir(
        box,
        message(
            3, "story", "Ann <Ann+stories@Example.NET>", date=email.utils.format_datetime(week)
        ),
        message(4, "request:unsubscribe", ann, date=email.utils.format_datetime(week)),
    )
    counts = run_once(settings, week, tagger=tagger)
    assert (counts.stored, counts.acknowledged) == (2, 0)  # stored for the team, not answered
    states = acknowledgements(settings)
    assert states["story-3@example.net"] == "suppressed:unsubscribed"
    assert states["request-unsubscribe-4@example.net"] == "suppressed:unsubscribed"
    assert len(replies(settings)) == 2  # the story's acknowledgement and one confirmation
    # The list holds the inbox's keyed hash, never the address.
    with Store(settings.store) as store:
        key = store.sender_key(mailbox_identity("ann@example.net"))
        database = settings.store.url.removeprefix("sqlite:///")
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT sender_key FROM unsubscribed").fetchall() == [(key,)]
        # Erasing the person keeps the request: erased, and still not mailed.
        erase(store, stories_of(store, "ann@example.net"), var_folders(settings),
              settings.smtp.from_address, None, week, address="ann@example.net")  # fmt: skip
    seed_maildir(box, message(5, "story", ann, date=email.utils.format_datetime(week)))
    run_once(settings, week + timedelta(days=8), tagger=tagger)
    after = acknowledgements(settings)
    assert "request-unsubscribe-2@example.net" not in after  # erased
    assert after["story-5@example.net"] == "suppressed:unsubscribed"


def test_replies_forged_unsubscribe_is_held_until_a_person_releases_it(
    maildir_settings: Settings, now: datetime, tagger: Tagger
) -> None:
    settings, box = maildir_settings, maildir_settings.mailbox.maildir  # type: ignore[union-attr]
    ann = "Ann Jones <ann@example.net>"
    seed_maildir(box, message(1, "request:unsubscribe", ann, Return_Path="<mallory@evil.example>"))
    run_once(settings, now, tagger=tagger)
    assert acknowledgements(settings) == {"request-unsubscribe-1@example.net": "held"}
    assert replies(settings) == {}
    with Store(settings.store) as store:
        assert not store.unsubscribe.unsubscribed_among([store.sender_key(mailbox_identity(ann))])
        store.outbox.release_held(["request-unsubscribe-1@example.net"], "pending", now)
    seed_maildir(box, message(2, "story", ann))
    run_once(settings, now + timedelta(days=8), tagger=tagger)
    sent = replies(settings)
    assert list(sent) == ["request-unsubscribe-1@example.net"]  # to From: the inbox silenced
    assert sent["request-unsubscribe-1@example.net"]["To"] == "ann@example.net"
    assert acknowledgements(settings)["story-2@example.net"] == "suppressed:unsubscribed"


def test_replies_urgent_request_keeps_its_template_and_gets_the_help_text(
    maildir_settings: Settings, now: datetime, tagger: Tagger
) -> None:
    settings = maildir_settings
    seed_maildir(
        settings.mailbox.maildir,
        story_message(  # type: ignore[union-attr]
            1,
            message_id="<q-1@example.net>",
            sender="Ann <ann@example.net>",
            body=(
                "Will my story be anonymous? My boss might read it. Some days I want to end it all."
            ),
        ),
    )
    run_once(settings, now, tagger=tagger)
    (reply,) = replies(settings).values()
    assert reply["Subject"].startswith("Auto: We have received your question")
    assert "Samaritans" in text_of(reply)  # the urgent flag came back out of the outbox


def test_replies_resubscribe_lifts_the_suppression(
    tmp_path: Path, now: datetime, tagger: Tagger
) -> None:
    config = maildir_config(tmp_path)
    settings = load_settings(config, {})
    settings = dataclasses.replace(settings, intake=IntakeSettings(workers=0))
    ann = "Ann Jones <ann@example.net>"
    seed_maildir(tmp_path / "mailbox", message(1, "request:unsubscribe", ann))
    run_once(settings, now, tagger=tagger)
    assert main(["--config", str(config), "resubscribe", "--sender", "ANN+x@example.net"]) == 0
    seed_maildir(tmp_path / "mailbox", message(2, "story", ann))
    run_once(settings, now + timedelta(days=8), tagger=tagger)
    assert acknowledgements(settings)["story-2@example.net"] == "sent"


def test_replies_unsubscribe_too_old_to_confirm_still_suppresses(
    maildir_settings: Settings, now: datetime, tagger: Tagger
) -> None:
    settings, box = maildir_settings, maildir_settings.mailbox.maildir  # type: ignore[union-attr]
    ann = "Ann Jones <ann@example.net>"
    seed_maildir(box, message(1, "request:unsubscribe", ann))  # received now, run a month on
    run_once(settings, now + timedelta(days=30), tagger=tagger)
    assert acknowledgements(settings) == {"request-unsubscribe-1@example.net": "suppressed:too_old"}
    seed_maildir(box, message(2, "story", ann))
    run_once(settings, now + timedelta(days=30), tagger=tagger)
    assert acknowledgements(settings)["story-2@example.net"] == "suppressed:unsubscribed"
    assert replies(settings) == {}
