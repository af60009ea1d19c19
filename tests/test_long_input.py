"""Nothing silently dropped: deeply nested HTML and stories longer than spaCy reads, end to end."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from conftest import seed_maildir, story_message

from intake.records import MailboxState, Quarantined, RawMessage
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.pipeline import requeue, run_once

DATA = Path(__file__).resolve().parent / "data"
PARAGRAPH = ("My mother has dementia and the memory clinic, her GP and the council all asked me "
             "the same questions again because nobody shared her records. ")  # fmt: skip


def long_story(n: int) -> bytes:
    """A story of about 1.1 million characters: over spaCy's max_length of 1,000,000."""
    body = PARAGRAPH * (1_100_000 // len(PARAGRAPH))
    return story_message(n, body=body, message_id=f"<long-{n}@example.org>")


def test_run_once_deeply_nested_html_is_stored_with_its_words_and_a_review_reason(
    maildir_settings: Settings, now: datetime
) -> None:
    seed_maildir(maildir_settings.mailbox.maildir,  # type: ignore[union-attr]
                 (DATA / "deep_nested_html.eml").read_bytes())  # fmt: skip
    counts = run_once(maildir_settings, now)
    assert (counts.stored, counts.quarantined, counts.acknowledged) == (1, 0, 1)
    with Store(maildir_settings.store) as store:
        ((story, triage),) = list(store.stories.triaged())
    assert "nobody shared her records" in story.text and "html_flattened" in story.defects
    assert triage is not None and "html_flattened" in triage.review_reasons


def test_run_once_story_over_spacy_max_length_is_tagged_stored_and_acknowledged(
    maildir_settings: Settings, now: datetime
) -> None:
    seed_maildir(maildir_settings.mailbox.maildir, long_story(1))  # type: ignore[union-attr]
    counts = run_once(maildir_settings, now)
    assert (counts.stored, counts.quarantined, counts.acknowledged) == (1, 0, 1)
    with Store(maildir_settings.store) as store:
        ((story, triage),) = list(store.stories.triaged())
    assert len(story.text) > 1_000_000  # stored whole; only the tagger read a prefix
    assert "truncated_for_tagging" in story.defects
    assert triage is not None and "truncated_for_tagging" in triage.review_reasons
    assert {"elderly_care", "duplication"} <= set(triage.themes)


def test_run_once_requeue_releases_a_story_quarantined_for_its_length(
    maildir_settings: Settings, now: datetime
) -> None:
    data = long_story(2)
    raw = RawMessage("maildir:mailbox", 0, 1, now, len(data), data)
    with Store(maildir_settings.store) as store:  # what the old code left behind
        reason = "ValueError: [E088] Text of length 1100000 exceeds maximum of 1000000."
        store.stories.commit_batch(MailboxState("maildir:mailbox", 0), 1, [],
                           [Quarantined(raw, "tag", reason, "")], now)  # fmt: skip
    assert requeue(maildir_settings, now) == (1, 0)
    with Store(maildir_settings.store) as store:
        assert store.quarantine.quarantined() == []
        ((story, triage),) = list(store.stories.triaged())
    assert story.story_id == "long-2@example.org" and triage is not None
    assert "truncated_for_tagging" in story.defects
