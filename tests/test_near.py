"""The fast path for token patterns finds exactly what spaCy's Matcher finds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spacy.attrs import LEMMA, LIKE_NUM, LOWER
from spacy.matcher import Matcher

from story_intake.themes import DEFAULT_THEMES, load_themes
from triage.tag.examples import load_examples, training_files
from triage.tag.near import SequenceSet, compile_sequence
from triage.tag.tagger import blank_nlp

SETTINGS = load_themes(DEFAULT_THEMES)
PATTERNS = [p for t in SETTINGS.themes for p in (*t.patterns, *t.weak_patterns)]
PATTERNS += [p for r in SETTINGS.requests for p in r.patterns]


@pytest.fixture(scope="module")
def docs() -> list[Any]:
    nlp = blank_nlp()
    examples = load_examples(training_files(Path(SETTINGS.data_dir)), SETTINGS.theme_names)
    extra = [
        "Aged 82, she fell. Section 2 of the Mental Health Act. PC 1234 rang 999.",
        "She was sectioned under the Mental Health Act in June.",
        "I told them again and again, I had to explain it twice to the same team.",
        "please don't use it, get rid of it, I'd like that withdrawn, take it down",
        "Please ensure it is not published; my statement must not be shared.",
        "I want my story took out of it please.",
        "They lost my referral, then the letter got lost too, and nobody passed it on.",
        "I ask that the statement I gave (in March, by email) is withdrawn.",
    ]
    texts = [e.text for e in examples[::3]]
    return list(nlp.pipe(texts + extra))


@pytest.mark.parametrize("index", range(len(PATTERNS)))
def test_near_matches_equal_the_matcher(index: int, docs: list[Any]) -> None:
    pattern = [dict(token) for token in PATTERNS[index]]
    nlp_vocab = docs[0].vocab
    sequence = compile_sequence(pattern, nlp_vocab.strings.add)
    assert sequence is not None, "every shipped pattern should take the fast path"
    fast = SequenceSet([("p", sequence)])
    matcher = Matcher(nlp_vocab)
    matcher.add("p", [pattern])
    total = 0
    for doc in docs:
        expected = sorted((s, e) for _, s, e in matcher(doc))
        found = sorted((s, e) for _, s, e in fast.find(doc.to_array([LEMMA, LOWER, LIKE_NUM])))
        assert found == expected, doc.text[:80]
        total += len(found)
    assert total > 0, "the pattern should match somewhere in the training texts"


@pytest.mark.parametrize(
    "pattern",
    [[{"LOWER": "a", "OP": "+"}], [{"OP": "{,2}"}, {"LOWER": "a"}], [{"POS": "NOUN"}],
     [{"LOWER": "a", "LEMMA": "a"}], [{"LOWER": {"NOT_IN": ["a"]}}]],
)  # fmt: skip
def test_near_other_shapes_stay_with_the_matcher(pattern: list[dict[str, Any]]) -> None:
    assert compile_sequence(pattern, blank_nlp().vocab.strings.add) is None


def test_near_no_patterns_find_nothing(docs: list[Any]) -> None:
    assert SequenceSet([]).find(docs[0].to_array([LEMMA, LOWER, LIKE_NUM])) == []
