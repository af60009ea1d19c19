"""Tag stage: the words a withdrawal is asked in, read off themes.toml. Stdlib only.

Out-of-domain text (Latin filler, "Yes please, Thursday works") can still get a middling
withdrawal probability from the bag-of-words classifier, which has never seen its words. The
classifier alone may call a message a withdrawal only when the message uses at least one word
of the withdrawal vocabulary: the content words of ``[requests.withdrawal]``'s terms and token
patterns ("delete", "story", "consent", "publish", ...), collected here so the list stays data.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from triage.tag.rules import RequestSpec

_WORD = re.compile(r"[a-z][a-z'’-]*")
# Words of the patterns that any polite note uses ("thanks", "like", "happy", "pls"): no sign
# of a withdrawal by themselves.
_GENERIC = frozenset(("thanks", "thank", "thx", "like", "want", "need", "wish", "prefer",
                      "happy", "come", "run", "sent", "sending", "gets", "right", "lot",
                      "longer", "immediately", "asap", "kindly", "pls", "plz", "ahead", "away",
                      "count", "leave", "pass", "didn't", "wasn't", "wouldn't", "decide",
                      "public", "online", "thing", "things", "stuff", "note", "notes", "report",
                      "process", "system", "systems", "file", "files", "records", "page", "site",
                      "book", "air", "feature", "print", "holding", "keeping", "kept",
                      "comfortable", "request", "confirm", "grant", "article"))  # fmt: skip


def request_vocabulary(spec: RequestSpec, stop_words: Collection[str]) -> frozenset[str]:
    """The lower-case content words of ``spec``'s terms and of the word lists in its patterns."""
    words: set[str] = set()
    for term in spec.terms:
        words.update(_WORD.findall(term.lower()))
    for pattern in spec.patterns:
        for token in pattern:
            words.update(_pattern_words(token))
    return frozenset(w for w in words
                     if w not in stop_words and w not in _GENERIC and len(w) > 2)  # fmt: skip


def near_index(vocabulary: Iterable[str]) -> frozenset[tuple[str, int]]:
    """Every word of four letters or more (position -1), and each form of it with one letter
    left out, with that letter's position: what :func:`near_any` looks words up in."""
    index: set[tuple[str, int]] = set()
    for word in vocabulary:
        if len(word) >= 4:
            index.add((word, -1))
            index.update(_deletes(word))
    return frozenset(index)


def near_any(words: Iterable[str], index: frozenset[tuple[str, int]]) -> bool:
    """Whether any word of four letters or more is at most one edit (a letter added, left
    out or changed, or two neighbours swapped) from a vocabulary word: "withdrw", "stroy" and
    "store" are near "withdraw" and "story"; Latin filler is further off."""
    for word in words:
        if len(word) < 4:
            continue
        if (word, -1) in index or any((word, i) in index for i in range(len(word) + 1)):
            return True  # the word itself, or the vocabulary word with a letter left out
        # A letter too many (the rest is a word) or changed (the same letter left out of both).
        if any((variant, -1) in index or (variant, at) in index
               for variant, at in _deletes(word)):  # fmt: skip
            return True
        swaps = (word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1))
        if any((swapped, -1) in index for swapped in swaps):
            return True
    return False


def _deletes(word: str) -> set[tuple[str, int]]:
    return {(word[:i] + word[i + 1 :], i) for i in range(len(word))}


def _pattern_words(token: Mapping[str, Any]) -> Iterable[str]:
    for attribute in ("LEMMA", "LOWER", "ORTH", "TEXT"):
        value = token.get(attribute)
        if isinstance(value, str):
            yield value.lower()
        elif isinstance(value, Mapping):
            yield from (str(v).lower() for v in value.get("IN", ()))
