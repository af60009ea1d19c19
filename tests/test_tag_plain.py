"""Plain-spoken stories: the theme is the substance of the story but said without the lexicon's
words, in one or two sentences, in non-native English, or under a signature that suggests another
theme. Hand-written here, in none of the training files (train_g/train_h added such stories)."""

from __future__ import annotations

import pytest

from triage.tag.examples import story_from_text
from triage.tag.tagger import Tagger, tag

PLAIN = [
    ("The detective was replaced and the new one asked for my whole account again.",
     {"policing", "duplication"}),
    ("The lady from social services asked Mum, who is 91, the same questions as the man "
     "last month.",
     {"elderly_care", "duplication"}),
    ("I said it all to the 999 lady, then to the crew, then at the hospital.",
     {"health", "duplication"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "themes"), PLAIN)
def test_tag_plain_spoken_story_gets_its_themes(
    tagger: Tagger, text: str, themes: set[str]
) -> None:
    triage = tag(story_from_text("plain", text), tagger)
    assert triage.kind == "story"
    assert set(triage.themes) == themes


def test_tag_plain_one_weak_word_is_tagged_or_held_for_review(tagger: Tagger) -> None:
    # One body chased (not duplication), health said only by "surgery", a weak word. Its score
    # sits at the threshold (0.2998 against 0.30 since train_p): never silently missed.
    text = "I rang the surgery every day for a week to get through."
    triage = tag(story_from_text("plain", text), tagger)
    assert triage.kind == "story" and set(triage.themes) <= {"health"}
    assert "health" in triage.themes or "low_confidence" in triage.review_reasons, triage.scores
