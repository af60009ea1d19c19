"""Digest stage, redaction: normalised copies of a text that know where each character came from.

Identifiers are typed in many ways: full-width digits, zero-width spaces inside a number, an
en-dash or a narrow no-break space between groups. Redaction matches its patterns on a
normalised copy and maps every match back to the original text, so the text the team reads
(and the digest's highlighting and excerpt cutting) is always the original with spans replaced.

A ``TextMap`` holds the copy and, piece by piece, how it lines up with its source: where a
piece was copied or replaced character for character, positions shift by a constant; where a
run of characters became a different number of characters (a separator run collapsed to one
space, "ﬁ" expanded to "fi"), every character of the piece maps to the whole run. Only those
edits are stored, so ASCII text costs almost nothing. Imports only the standard library.
"""

from __future__ import annotations

import bisect
import functools
import io
import re
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

Edit = tuple[int, int, str]  # replace source[start:end] with the string
_LINEAR = -1  # in ``_Pieces.ends``: the piece maps character for character


@dataclass(slots=True)
class _Pieces:
    """How a copy lines up with its source, as compact parallel arrays (a hostile megabyte of
    zero-width spaces makes half a million pieces): piece ``i`` starts at copy position
    ``starts[i]`` and was made from the source from ``sources[i]``, character for character
    (``ends[i] == _LINEAR``) or as a whole up to ``ends[i]``."""

    starts: array[int] = field(default_factory=lambda: array("q"))
    sources: array[int] = field(default_factory=lambda: array("q"))
    ends: array[int] = field(default_factory=lambda: array("q"))

    def add(self, start: int, source: int, end: int) -> None:
        """Append a piece; a linear one that continues the last linear one extends it."""
        last_linear = bool(self.ends) and self.ends[-1] == _LINEAR
        if end == _LINEAR and last_linear and self.sources[-1] - self.starts[-1] == source - start:
            return
        self.starts.append(start)
        self.sources.append(source)
        self.ends.append(end)


@dataclass(frozen=True, slots=True)
class TextMap:
    """``text``, a normalised copy of ``parent`` (or of the original text when it is None)."""

    text: str
    parent: TextMap | None = None
    pieces: _Pieces | None = field(default=None, repr=False)

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``text[start:end]`` (not empty) was made from."""
        start, end = self._source(start, False), self._source(end - 1, True)
        return self.parent.origin(start, end) if self.parent else (start, end)

    def _source(self, at: int, end: bool) -> int:
        """Where copy character ``at`` starts (or, with ``end``, ends) in the source."""
        if self.pieces is None:
            return at + end
        pieces = self.pieces
        i = bisect.bisect_right(pieces.starts, at) - 1
        if pieces.ends[i] == _LINEAR:
            return pieces.sources[i] + at - pieces.starts[i] + end
        return pieces.ends[i] if end else pieces.sources[i]


def identity(text: str) -> TextMap:
    """The original text itself: every position maps to itself."""
    return TextMap(text)


def rewrite(source: TextMap, edits: Iterable[Edit]) -> TextMap:
    """A copy of ``source.text`` with the edits (in order, not overlapping) applied."""
    text = source.text
    out = io.StringIO()  # not a list of a million small strings
    pieces = _Pieces()
    done = size = 0
    for start, end, replacement in edits:
        if start > done:  # the untouched stretch before this edit
            pieces.add(size, done, _LINEAR)
            out.write(text[done:start])
            size += start - done
        if replacement:
            pieces.add(size, start, _LINEAR if len(replacement) == end - start else end)
            out.write(replacement)
            size += len(replacement)
        done = end
    if done == 0:  # no edits: the copy is the source
        return TextMap(text, source)
    pieces.add(size, done, _LINEAR)
    out.write(text[done:])
    return TextMap(out.getvalue(), source, pieces)


# Characters that Unicode normalisation (NFKC) leaves alone but that a reader takes for ASCII.
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


# Invisible characters outside category Cf (Unicode's other default-ignorable code points):
# the combining grapheme joiner, variation selectors, Hangul fillers; and the keycap mark that
# makes "7\ufe0f\u20e3" an emoji seven.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0\u20e3"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


@functools.lru_cache(maxsize=4096)  # a text repeats few distinct non-ASCII characters
def _fold_character(char: str) -> str:
    """One character as matching should see it: format characters (zero-width spaces, direction
    marks, soft hyphens) and the other invisible ones vanish, compatibility forms (full-width,
    superscript, no-break space) become their plain form, and digits of any script become ASCII
    digits."""
    if unicodedata.category(char) == "Cf" or char in _INVISIBLE:
        return ""
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    return unicodedata.normalize("NFKC", char)


def fold(text: str) -> TextMap:
    """NFKC, format characters dropped and digits made ASCII, character by character, so every
    character of the copy maps back to exactly one character of ``text``."""
    original = identity(text)
    if text.isascii():  # NFKC leaves ASCII as it is, and ASCII has no format characters
        return original
    return rewrite(original, _folds(text))


def _folds(text: str) -> Iterator[Edit]:
    for match in _NON_ASCII.finditer(text):
        folded = _fold_character(match.group())
        if folded != match.group():
            yield match.start(), match.end(), folded


def substitute(source: TextMap, pattern: re.Pattern[str], replace: Callable[[str], str]) -> TextMap:
    """A copy of ``source`` with each match of ``pattern`` replaced by ``replace(match)``."""
    found = ((m.start(), m.end(), m.group()) for m in pattern.finditer(source.text))
    edits = ((start, end, text, replace(text)) for start, end, text in found)
    return rewrite(source, ((start, end, new) for start, end, old, new in edits if new != old))


# What people and mail clients put between the groups of a number: spaces of any width, tabs,
# line breaks, dashes of any length, slashes, dots, underscores. A run of up to four of them
# between two digits is one separator; between a digit and a letter (a postcode's or NI number's
# groups) spaces, dashes and slashes count, and a dot only alone ("QQ.12.34.56.C"), so
# "b. 3 April" keeps its abbreviation dot.
_DASHES = r"\-\u2010-\u2015\u2212\u2e3a\u2e3b"
_GAP_ANY = r"[\s" + _DASHES + r"/\\\u2044\u2215.\u00b7\u2022\u2027\u2219\u22c5\u30fb_]"
_GAP_WORD = r"[\s" + _DASHES + r"/]"
_GAPS = re.compile(
    rf"(?<=[0-9]){_GAP_ANY}{{1,4}}(?=[0-9])"
    rf"|(?<=[0-9])(?:{_GAP_WORD}{{1,4}}|\.)(?=[A-Za-z])"
    rf"|(?<=[A-Za-z])(?:{_GAP_WORD}{{1,4}}|\.)(?=[0-9])"
)


def unify_gaps(source: TextMap) -> TextMap:
    """``source`` with every separator run between digit groups made one space.

    Python's ``re`` does this one job: each alternative is a bounded run between fixed
    one-character lookarounds, so it cannot backtrack more than four characters anywhere.
    """
    return substitute(source, _GAPS, lambda _: " ")


# A number typed with the letter O for zero ("O77OO 9OO123"): a token of digits and O's only.
# The lookarounds make every token start after a non-alphanumeric, so each is scanned once.
_NUMBER_WITH_OS = re.compile(r"(?<![0-9A-Za-z])[0-9Oo]+(?![0-9A-Za-z])")


def zeros_for_os(source: TextMap) -> TextMap:
    """``source`` with the letter O read as zero in tokens of digits and O's with a digit."""

    def replace(token: str) -> str:
        return token.replace("O", "0").replace("o", "0") if token.strip("Oo") else token

    return substitute(source, _NUMBER_WITH_OS, replace)
