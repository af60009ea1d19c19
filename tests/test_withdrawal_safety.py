"""Withdrawal safety: a story is never read as a withdrawal, and a guessed withdrawal is never
acted on by itself (no removal confirmation, no hold), even from an authenticated sender."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from intake.records import Address, Triage
from triage.reply.policy import decide
from triage.reply.settings import AcknowledgementSettings
from triage.tag.asking import reads_as_request
from triage.tag.examples import story_from_text
from triage.tag.rules import WITHDRAWAL
from triage.tag.tagger import Tagger, tag, tag_many

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
STORY = replace(
    story_from_text("w-1@example.net", "Please delete my story."),
    sender=Address("Ann Jones", "ann@example.net"),
    recipients=(Address("Stories team", "stories@example.org"),),
    received_at=NOW - timedelta(hours=1),
)


@pytest.mark.parametrize(
    "text",
    [
        "You can use my story but please don't use my name.",
        "Please use my story, but I don't want to be named.",
        "Happy for this to go in the report. I'd rather my name wasn't used though.",
        "Thanks for the acknowledgement. Can I withdraw my story later if I change my mind?",
        "If I want to take my story out later, how do I do that?",
        "Use my story however you like. The hospital never sent my discharge letter to the GP.",
        "The police withdrew the charges two weeks before the trial and nobody told me why.",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",
        "Ok thanks, see you next week.",
        "I know some people ask you to remove their stories, but I'd like mine to stay up. "
        "The GP and the school still don't share anything about my son.",
        "Dad's care plan, all of it the GP removed from the shared record when he moved, and "
        "the carers had no idea he was diabetic.",
    ],
)
def test_withdrawal_safety_stories_and_replies_are_not_withdrawals(
    text: str, tagger: Tagger
) -> None:
    triage = tag(story_from_text("s", text), tagger)
    assert triage.kind != WITHDRAWAL, (triage.kind, triage.evidence)


def test_withdrawal_safety_explicit_withdrawals_keep_full_recall(tagger: Tagger) -> None:
    texts = ["Please delete my story.", "withdraw pls", "pls remove my storry, i not want it used",
             "Remove it.", "Please not use my email anymore, I am afraid now.",
             "I no longer want my story to be part of your campaign.",
             "Can I change my mind and withdraw my story please?",
             "Hi, I've had second thoughts, please take my story out."]  # fmt: skip
    kinds = [t.kind for t in tag_many([story_from_text(str(i), x) for i, x in enumerate(texts)],
                                      tagger)]  # fmt: skip
    assert kinds == [WITHDRAWAL] * len(texts)


def test_withdrawal_safety_story_with_request_is_held_for_a_person(tagger: Tagger) -> None:
    text = (
        "My dad is 88 and has dementia. The care home, the GP and the hospital each asked "
        "me for his whole history, and none of them had the notes from the others, so I "
        "told the same story three times in one week. The social worker then did another "
        "assessment from scratch.\n\nActually, on reflection please delete my story."
    )
    triage = tag(replace(STORY, text=text), tagger)
    assert triage.kind == WITHDRAWAL
    assert "mixed_request" in triage.review_reasons
    decision = decide(
        replace(STORY, text=text),
        triage,
        ("stories@example.org",),
        AcknowledgementSettings(),
        NOW,
        lambda _: False,
        authenticated=True,
    )
    assert (decision.send, decision.held, decision.reason) == (False, True, "unverified_request")


@pytest.mark.parametrize(
    ("reasons", "held"),
    [((), False), (("withdrawal_by_classifier",), True), (("mixed_request",), True)],
)
def test_withdrawal_safety_guessed_withdrawal_waits_even_when_authenticated(
    reasons: tuple[str, ...], held: bool
) -> None:
    triage = Triage(STORY.story_id, WITHDRAWAL, (), (), (), reasons)
    decision = decide(STORY, triage, ("stories@example.org",), AcknowledgementSettings(), NOW,
                      lambda _: False, authenticated=True)  # fmt: skip
    assert decision.held is held
    assert decision.send is not held
    assert decision.reason == ("unverified_request" if held else "send_withdrawal")


def test_withdrawal_safety_classifier_alone_needs_a_withdrawal_word(tagger: Tagger) -> None:
    from triage.tag.judge import Reading, decide_kind

    cats = {"story": 0.01, WITHDRAWAL: 0.9, "request:question": 0.09}
    filler = story_from_text("f", "Nam liber tempor cum soluta nobis eleifend option congue.")
    # Out-of-domain words only: the classifier's guess does not make it a withdrawal.
    assert decide_kind(filler, Reading(cats, (), 9, on_topic=False))[0] != WITHDRAWAL
    assert decide_kind(filler, Reading(cats, (), 9, on_topic=True))[0] == WITHDRAWAL
    # on_topic is read off themes.toml's withdrawal vocabulary by the real tagger.
    on_topic = [tagger.read(d).on_topic for d in tagger.pipe(
        ["Nam liber tempor cum soluta nobis.", "Yes, Thursday is fine for me, thanks.",
         "pls no use my storie", "I changed my mind.", "Delete.",
         "hi i woud like to withdrw my stroy from you're campain"])]  # fmt: skip
    assert on_topic == [False, False, True, True, True, True]  # misspelt words still count


def test_withdrawal_safety_nonstandard_participle_is_read_by_rule(tagger: Tagger) -> None:
    """A story that "took out" (for "taken out") is asked for by rule, not by the classifier."""
    text = "my mum asked me to email u. she wants her story took out. her name is on it thanks"
    triage = tag(story_from_text("took-out", text), tagger)
    assert triage.kind == WITHDRAWAL
    assert "withdrawal_by_classifier" not in triage.review_reasons


@pytest.mark.parametrize(
    "text",
    [
        # the name kept out of the report, the story still used: anonymity (an amend at most)
        "Use it by all means. Just keep my name out of it, my ex still lives nearby.",
        "Please leave his name out of this, he is still in the job.",
        # what an agency cannot do is told, not asked of us
        "The housing office has my OT report. Can't share it, they told me.",
        "Needed the OT letter for the housing form. Couldn't use it, wrong department.",
        "Hospital has the discharge summary but can't share it with the pharmacy.",
        "School asked for the diagnosis. The clinic can't share it, apparently.",
    ],
)
def test_withdrawal_safety_anonymity_and_inability_stay_stories(tagger: Tagger, text: str) -> None:
    assert tag(story_from_text("s", text), tagger).kind != WITHDRAWAL, text


@pytest.mark.parametrize(
    "text",
    ["Please keep me out of it now, and my story.", "Take my story out of it, please.",
     "You can't use it any more, I have changed my mind."],
)  # fmt: skip
def test_withdrawal_safety_story_kept_out_is_still_a_withdrawal(tagger: Tagger, text: str) -> None:
    assert tag(story_from_text("s", text), tagger).kind == WITHDRAWAL, text


@pytest.mark.parametrize(
    ("text", "phrase", "asks"),
    [
        # nobody did it: told, not asked
        ("The stitches stayed in for a fortnight; nobody came to take them out.",
         "take them out", False),
        # a part of what was sent: an amendment, the rest still used
        ("Could you delete the third paragraph of my email? The rest is fine.",
         "delete the third paragraph", False),
        # what identifies the sender is to go, not the story
        ("Happy to help, but please remove any details that might identify me.",
         "remove any details", False),
        # a use against someone is refused, not the story's
        ("Share it if it helps, but I don't want it used against the nurse, she was kind.",
         "n't want it used", False),
        # the person written for no longer wishes it: asked, on their behalf
        ("My father no longer wishes his story to be used.", "no longer wishes his story", True),
        ("She no longer wants it used.", "no longer wants it used", True),
        ("She has asked me to let you know she no longer wishes her story to be used.",
         "no longer wishes her story", True),
        ("They were not using it, the ward said.", "not using it", False),
        # the environment footer under a story asks nothing of us
        ("Sister, Ward 4\nPlease do not print this email unless necessary.",
         "not print this email", False),
        # a refusal told ("wouldn't share"), not asked; "I would not want it used" still asks
        ("The drug service wouldn't share anything with probation.", "n't share anything", False),
        ("The school won't share it with us, they say.", "n't share it", False),
        ("My mother would not want it used now.", "not want it used", True),
        ("Please would you not use it.", "not use it", True),
        ("Would you mind not including it?", "not including it", True),
        # a phrase the matcher found across two sentences asks nothing
        ("They said I'd 'refused to remove jewellery'. That note stayed on file.",
         "remove jewellery'. That note", False),
        ("Delete it.", "Delete it.", True),
        # what was to happen, told: "would be removed"; not "that it be removed"
        ("We were told it would be removed from his record after a few years.",
         "it would be removed", False),
        ("I was told I would be removed from all the lists.", "removed from all", False),
        ("I ask that it be removed.", "it be removed", True),
        # the telling held back, not the story
        ("I don't want to go into all of it, but the home never told us.",
         "n't want to go into all of it", False),
    ],
)  # fmt: skip
def test_withdrawal_safety_phrase_reads_as_request(text: str, phrase: str, asks: bool) -> None:
    start = text.index(phrase)
    assert reads_as_request(text, start, start + len(phrase)) is asks, text
