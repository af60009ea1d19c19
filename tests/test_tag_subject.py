"""A withdrawal asked in the subject line alone (triage.tag.subject). Synthetic texts."""

from __future__ import annotations

import dataclasses

import pytest

from triage.tag.examples import story_from_text
from triage.tag.rules import MIXED_REQUEST, is_guessed
from triage.tag.subject import SUBJECT_RULE, own_subject
from triage.tag.tagger import Tagger, tag, tag_many

STORY = (
    "My dad is 84 and has dementia. When he fell at home the ambulance took him to A&E, and the "
    "hospital discharged him without telling his GP or the carers, so nobody came for two days. "
    "I had to ring the surgery, the council and the care agency one after another and explain "
    "the whole thing to each of them, because none of them had been told anything at all."
)


def story_with(subject: str, text: str) -> object:
    return dataclasses.replace(story_from_text("s1", text), subject=subject)


@pytest.mark.parametrize(
    "subject",
    ["Please delete my story", "pls remove my story", "Withdraw my submission please",
     "I don't want my story used any more"],
)  # fmt: skip
def test_tag_subject_withdrawal_above_a_short_body_is_a_withdrawal(
    tagger: Tagger, subject: str
) -> None:
    # The tagger read the body alone: "Thanks, Jo" was a story with no theme.
    triage = tag(story_with(subject, "Thanks,\nJo"), tagger)  # type: ignore[arg-type]
    assert triage.kind == "request:withdrawal", subject
    assert [e.rule for e in triage.evidence] == [SUBJECT_RULE]
    assert triage.themes == () and not is_guessed(triage.review_reasons)


def test_tag_subject_withdrawal_above_a_story_goes_to_a_person(tagger: Tagger) -> None:
    triage = tag(story_with("Please delete my story", STORY), tagger)  # type: ignore[arg-type]
    assert triage.kind == "request:withdrawal"
    assert MIXED_REQUEST in triage.review_reasons  # held: nothing removed on this alone


@pytest.mark.parametrize(
    "subject",
    ["Re: Please delete my story", "AW: delete my story", "Fwd: please remove my story",
     "The police withdrew the charges", "Can I withdraw my story later?",
     "Please don't delete my story"],
)  # fmt: skip
def test_tag_subject_that_tells_or_belongs_to_a_thread_is_not_read(
    tagger: Tagger, subject: str
) -> None:
    triages = tag_many([story_with(subject, STORY)], tagger)  # type: ignore[list-item]
    assert triages[0].kind == "story", subject


def test_tag_subject_own_subject_drops_thread_prefixes() -> None:
    assert own_subject("RE[2]: Your story") == ""
    assert own_subject("SV: Din berättelse") == ""
    assert own_subject("  Please delete my story ") == "Please delete my story"
    assert own_subject("Reunion of carers") == "Reunion of carers"


def test_tag_subject_withdrawal_above_another_request_goes_to_a_person(tagger: Tagger) -> None:
    # The body alone is an unsubscribe; before, the subject was not read for a request body.
    body = "Please unsubscribe me from your newsletter as well."
    assert tag(story_with("", body), tagger).kind == "request:unsubscribe"  # type: ignore[arg-type]
    triage = tag(story_with("Please delete my story", body), tagger)  # type: ignore[arg-type]
    assert triage.kind == "request:withdrawal"
    assert MIXED_REQUEST in triage.review_reasons and is_guessed(triage.review_reasons)
