"""The earlier messages a reply names, through the real pipeline (issue 22): a reply that pastes
our acknowledgement, or the sender's own earlier story, without quote marks under a device line
is stored with only the new words; the pasted text goes to `quoted`."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from conftest import seed_maildir, story_message
from test_clean_earlier import EARLIER_STORY, NEW_WORDS, RECEIVED_ACK

from intake.records import Story
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.pipeline import run_once
from triage.reply.render import message_id_for
from triage.tag.tagger import Tagger

STORY_ID = "first-story-1@example.org"
JANE = "Jane Doe <jane@example.org>"


def _stored(settings: Settings) -> dict[str, Story]:
    with Store(settings.store) as store:
        return {story.story_id: story for story in store.stories.stories()}


def _pasted(device: str, earlier: str) -> str:
    return f"{NEW_WORDS}\n\n{device}\n\n{textwrap.fill(' '.join(earlier.split()), 58)}\n"


def test_earlier_reply_pasting_our_acknowledgement_keeps_only_new_words(
    maildir_settings: Settings, tagger: Tagger, now: datetime
) -> None:
    ours = message_id_for(STORY_ID, "stories@example.org")
    reply = story_message(1, sender=JANE, body=_pasted("Envoyé de mon iPhone", RECEIVED_ACK),
                          message_id="<reply-1@example.org>", In_Reply_To=ours,
                          References=f"<{STORY_ID}> {ours}")  # fmt: skip
    seed_maildir(maildir_settings.mailbox.maildir, reply)  # type: ignore[attr-defined]
    run_once(maildir_settings, now, tagger=tagger)
    story = _stored(maildir_settings)["reply-1@example.org"]
    assert story.text == NEW_WORDS
    assert "withdraw" in story.quoted and "withdraw" not in story.text


@pytest.mark.parametrize("workers", [0, 1])
def test_earlier_reply_pasting_own_stored_story_keeps_only_new_words(
    tmp_path: Path, maildir_settings: Settings, tagger: Tagger, now: datetime, workers: int
) -> None:
    settings = replace(maildir_settings, intake=replace(maildir_settings.intake, workers=workers))
    folder = Path(settings.mailbox.maildir)  # type: ignore[attr-defined]
    seed_maildir(folder, story_message(1, sender=JANE, body=EARLIER_STORY,
                                       message_id=f"<{STORY_ID}>"))  # fmt: skip
    run_once(settings, now, tagger=None if workers else tagger)
    body = _pasted("Von meinem iPhone gesendet", EARLIER_STORY)
    own = story_message(2, sender=JANE, body=body, message_id="<reply-2@example.org>",
                        In_Reply_To=f"<{STORY_ID}>", References=f"<{STORY_ID}>")  # fmt: skip
    # Someone else naming Jane's story does not get it recognised in their mail.
    other = story_message(3, sender="Sam <sam@example.net>", body=body,
                          message_id="<reply-3@example.net>",
                          In_Reply_To=f"<{STORY_ID}>")  # fmt: skip
    seed_maildir(folder, own, other)
    run_once(settings, now, tagger=None if workers else tagger)
    stored = _stored(settings)
    assert stored["reply-2@example.org"].text == NEW_WORDS
    assert "district nurses" in stored["reply-2@example.org"].quoted
    assert "district nurses" in stored["reply-3@example.net"].text
