"""Tag stage, long stories: the bounded prefix the tagger reads. Stdlib and records only.

spaCy refuses a text longer than its ``max_length`` (1,000,000 characters) outright, so such a
story failed the tag stage on every attempt: quarantined, and ``requeue`` could never release
it. The tagger reads the first ``MAX_TAGGED_CHARS`` instead; the story is stored whole, with
the defect ``truncated_for_tagging`` (a review reason: the tags speak for the prefix alone).
"""

from __future__ import annotations

from dataclasses import replace

from intake.records import Story

# spaCy's default Language.max_length: the tagger's memory and time were sized for texts up to it.
MAX_TAGGED_CHARS = 1_000_000
TRUNCATED = "truncated_for_tagging"
_CUT_WINDOW = 200  # how far back a cut looks for a space, so that no word is split


def fit_for_tagging(story: Story) -> Story:
    """The story, with the ``truncated_for_tagging`` defect when its text is over the limit."""
    if len(story.text) <= MAX_TAGGED_CHARS or TRUNCATED in story.defects:
        return story
    return replace(story, defects=(*story.defects, TRUNCATED))


def tagged_text(text: str) -> str:
    """The part of ``text`` the tagger reads: all of it, or a prefix ending at a space."""
    if len(text) <= MAX_TAGGED_CHARS:
        return text
    cut = text.rfind(" ", MAX_TAGGED_CHARS - _CUT_WINDOW, MAX_TAGGED_CHARS)
    return text[: cut if cut > 0 else MAX_TAGGED_CHARS]
