"""Plain-spoken stories: the theme is the substance of the story but said without the lexicon's
words, in one or two sentences, in non-native English, or under a signature that suggests another
theme. Hand-written here, in none of the training files (train_g/train_h added such stories)."""

from __future__ import annotations

import pytest

from triage.tag.examples import story_from_text
from triage.tag.tagger import Tagger, tag

PLAIN = [
    ("Told the same thing to the desk, the nurse and then the doctor. Nobody wrote a word down.",
     {"health", "duplication"}),
    ("My gran is 90. The girls who come in to help her are in and out in ten minutes.",
     {"elderly_care"}),
    ("Two officers came round about my son, then two more the next day asking the exact same.",
     {"policing", "duplication"}),
    ("The council, the benefits people and the housing lot all wanted the same papers off me.",
     {"duplication"}),
    ("My father he is 86, he is alone, the carer come once in day only and he fall.",
     {"elderly_care"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "themes"), PLAIN)
def test_tag_plain_spoken_story_gets_its_themes(
    tagger: Tagger, text: str, themes: set[str]
) -> None:
    triage = tag(story_from_text("plain", text), tagger)
    assert triage.kind == "story"
    assert set(triage.themes) == themes
