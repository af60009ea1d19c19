"""Redaction's normalised copies: every character of a copy maps back to where it came from."""

from __future__ import annotations

import itertools
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from triage.digest.textmap import TextMap, fold, unify_gaps, zeros_for_os

# Characters that normalisation changes, drops, expands or collapses, and plain ones.
ALPHABET = st.sampled_from(
    [*"07 9-./aAoO@\t\n", "\u200b", "\u00ad", "\u2013", "\u00a0", "\u202f", "\uff10", "\uff41",
     "\ufb01", "\u0660", "\u00bd", "\u034f", "e\u0301", "\u3000", "\U0001d7ce"]
)  # fmt: skip


def _views(text: str) -> list[TextMap]:
    folded = fold(text)
    return [folded, zeros_for_os(folded), unify_gaps(zeros_for_os(folded))]


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_textmap_every_character_maps_back_to_its_source(text: str) -> None:
    for view in _views(text):
        for at in range(len(view.text)):
            start, end = view.origin(at, at + 1)
            assert 0 <= start < end <= len(text)
            source = text[start:end]
            # The copy's character is what its source reads as: a separator run became one
            # space, a letter O a zero, anything else its NFKC form with digits made ASCII.
            plain = unicodedata.normalize("NFKC", source)
            plain = "".join(str(unicodedata.decimal(c, c)) for c in plain)
            assert view.text[at] in plain or view.text[at] in " 0"


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_textmap_spans_cover_the_source_in_order(text: str) -> None:
    for view in _views(text):
        if not view.text:
            continue
        whole = view.origin(0, len(view.text))
        assert whole[0] <= whole[1] <= len(text)
        ends = [view.origin(at, at + 1) for at in range(len(view.text))]
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(ends))


def test_textmap_ascii_text_is_its_own_copy() -> None:
    view = fold("call 07700 900123")
    assert view.text == "call 07700 900123"
    assert view.origin(5, 17) == (5, 17)


def test_textmap_collapsed_separators_map_to_the_whole_run() -> None:
    text = "07700 \u2013 900\u200b123"
    view = unify_gaps(fold(text))
    assert view.text == "07700 900123"
    assert view.origin(5, 6) == (5, 8)  # " – " became one space
    assert view.origin(0, len(view.text)) == (0, len(text))
