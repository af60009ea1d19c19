"""Issue 21, round 4: what the independently written train_i/train_j showed the tagger missing.
Hand-written here (synthetic), in none of the training files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from story_intake.themes import DEFAULT_THEMES, load_themes
from triage.tag.asking import addressed_to_us
from triage.tag.examples import load_examples, story_from_text, training_files
from triage.tag.model_cache import model_key
from triage.tag.tagger import Tagger, tag, train


def span(text: str, phrase: str) -> tuple[str, int, int]:
    start = text.index(phrase)
    return text, start, start + len(phrase)


@pytest.mark.parametrize(
    ("text", "phrase", "addressed"),
    [
        ("I've seen witnesses withdraw their statements when the trial kept moving.",
         "withdraw their statements", False),
        ("I was pushed to withdraw my statement against him.", "withdraw my statement", False),
        ("I withdraw my consent for the use of my story.", "withdraw my consent", True),
        ("We are withdrawing our story.", "withdrawing our story", True),
        ("Following advice, I hereby withdraw my submission.", "withdraw my submission", True),
        ("First, the main thing: I need to withdraw the email I sent in May.",
         "withdraw the email", True),
        ("We've decided to withdraw our story.", "withdraw our story", True),
        ("She decided to withdraw her complaint.", "withdraw her complaint", False),
        # on behalf of someone: the person the sender writes for wants it, now
        ("He wants it removed and not used for anything.", "it removed", True),
    ],
)  # fmt: skip
def test_tag_round4_withdraw_alone_does_not_speak_to_us(
    text: str, phrase: str, addressed: bool
) -> None:
    # The phrase's own verb made every "withdraw ..." sentence read as addressed to us.
    assert addressed_to_us(*span(text, phrase)) is addressed


TOLD = (
    "I'm a family liaison officer. In my experience victims withdraw their statements when the "
    "case drags on for a year and every new officer rings them to go over it all again. We lose "
    "good prosecutions that way, and the victims lose faith in the police. It is not the "
    "victims' fault, it is ours, and the courts' listing makes it worse every year."
)


def test_tag_round4_story_of_others_withdrawing_stays_a_story(tagger: Tagger) -> None:
    triage = tag(story_from_text("told", TOLD), tagger)
    assert triage.kind == "story", (triage.kind, triage.evidence)


@pytest.mark.parametrize(
    "text",
    [
        "Nobody passed the discharge letter on to the surgery, so I took a copy round myself.",
        "My referral got lost between the memory clinic and the community team.",
        "I ended up being the go-between for the council office and the ward.",
        "Every visit a new nurse turned up at the door.",
        # not "ring round": second readers found duplication in 7 of the 17 training stories
        # it fired in (bench/vocabulary_audit.py), below the theme's base rate
    ],
)
def test_tag_round4_duplication_forms_of_the_definition_are_evidence(
    tagger: Tagger, text: str
) -> None:
    # The definition's forms beyond "I had to repeat myself" find duplication evidence by rule.
    reading = tagger.read(next(iter(tagger.pipe([text]))), text)
    assert any(h.section == "themes" and h.name == "duplication" for h in reading.hits), text


def test_tag_round4_formal_request_named_at_a_distance_is_a_withdrawal(tagger: Tagger) -> None:
    text = (
        "Dear team,\n\nOn the advice of my union rep I must ask that the account I sent you "
        "last spring (custody suite, nights) is withdrawn in full and not used "
        "in any form, including anonymised quotes.\n\nRegards,\nSgt (name withheld)"
    )
    assert tag(story_from_text("formal", text), tagger).kind == "request:withdrawal"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Mum's 81 and someone cloned her bank card.", True),
        ("My father (86) was taken off his surgery's list.", True),
        ("My uncle is 78, he lives alone above the shop.", True),
        ("Both my parents are in their late 80s.", True),
        ("The bus to the clinic is 80 minutes late every day.", False),
        ("We waited 90 minutes on the phone.", False),
    ],
)
def test_tag_round4_an_old_age_said_plainly_is_elderly_care_evidence(
    tagger: Tagger, text: str, found: bool
) -> None:
    # Weak evidence (it counts half): "my mum, who is 82" also turns up in passing.
    reading = tagger.read(next(iter(tagger.pipe([text]))), text)
    hits = [h for h in reading.hits if h.section == "themes" and h.name == "elderly_care"]
    assert bool(hits) is found, hits


def test_tag_round4_pretend_i_never_wrote_is_a_withdrawal_by_rule(tagger: Tagger) -> None:
    # Read by a phrase, not guessed by the classifier (a guess is held for a person).
    triage = tag(story_from_text("p", "honestly, just pretend I never wrote to you."), tagger)
    assert triage.kind == "request:withdrawal"
    assert "withdrawal_by_classifier" not in triage.review_reasons, triage.review_reasons


def test_tag_round4_theme_classifier_stops_after_theme_epochs() -> None:
    # The theme classifier trains for theme_epochs passes, the kind classifier for epochs: a
    # theme model trained on stops changing, and the cached model's key tells the two apart.
    settings = load_themes(DEFAULT_THEMES)
    examples = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)[:120]
    texts = [e.text for e in examples[:20]]
    short = dataclasses.replace(settings, epochs=3, theme_epochs=1)
    longer = dataclasses.replace(settings, epochs=3, theme_epochs=3)
    themes = list(settings.theme_names)
    one = [[d.cats[t] for t in themes] for d in train(examples, short).pipe(texts)]
    three = [[d.cats[t] for t in themes] for d in train(examples, longer).pipe(texts)]
    assert one != three
    assert model_key(examples, short) != model_key(examples, longer)
    # Nothing is learnt about themes after theme_epochs, however long the kinds train.
    capped = dataclasses.replace(settings, epochs=5, theme_epochs=1)
    assert [[d.cats[t] for t in themes] for d in train(examples, capped).pipe(texts)] == one
