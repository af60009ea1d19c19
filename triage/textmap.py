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
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Edit = tuple[int, int, str]  # replace source[start:end] with the string


@dataclass(frozen=True, slots=True)
class _Piece:
    """A stretch of the copy: ``length`` characters from ``start``, made from ``source`` span."""

    start: int
    source_start: int
    source_end: int
    linear: bool  # one copy character per source character, in order


@dataclass(frozen=True, slots=True)
class TextMap:
    """``text``, a normalised copy of ``parent`` (or of the original text when it is None)."""

    text: str
    parent: TextMap | None = None
    pieces: tuple[_Piece, ...] = ()
    _starts: tuple[int, ...] = field(default=(), repr=False)

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``text[start:end]`` (not empty) was made from."""
        start, end = self._source_start(start), self._source_end(end)
        return self.parent.origin(start, end) if self.parent else (start, end)

    def _source_start(self, at: int) -> int:
        if not self.pieces:
            return at
        piece = self.pieces[bisect.bisect_right(self._starts, at) - 1]
        return piece.source_start + (at - piece.start if piece.linear else 0)

    def _source_end(self, end: int) -> int:
        if not self.pieces:
            return end
        last = end - 1
        piece = self.pieces[bisect.bisect_right(self._starts, last) - 1]
        return piece.source_start + last - piece.start + 1 if piece.linear else piece.source_end


def identity(text: str) -> TextMap:
    """The original text itself: no pieces, every position maps to itself."""
    return TextMap(text)


def rewrite(source: TextMap, edits: Iterable[Edit]) -> TextMap:
    """A copy of ``source.text`` with the edits (in order, not overlapping) applied."""
    text = source.text
    out: list[str] = []
    pieces: list[_Piece] = []
    done = size = 0
    for start, end, replacement in edits:
        if start > done:  # the untouched stretch before this edit
            pieces.append(_Piece(size, done, start, True))
            out.append(text[done:start])
            size += start - done
        if replacement:
            pieces.append(_Piece(size, start, end, len(replacement) == end - start))
            out.append(replacement)
            size += len(replacement)
        done = end
    if done == 0:  # no edits: the copy is the source
        return TextMap(text, source)
    pieces.append(_Piece(size, done, len(text), True))
    out.append(text[done:])
    return TextMap("".join(out), source, tuple(pieces), tuple(p.start for p in pieces))


# Characters that Unicode normalisation (NFKC) leaves alone but that a reader takes for ASCII.
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _fold_character(char: str) -> str:
    """One character as matching should see it: format characters (zero-width spaces, direction
    marks, soft hyphens) vanish, compatibility forms (full-width, superscript, no-break space)
    become their plain form, and digits of any script become ASCII digits."""
    if unicodedata.category(char) == "Cf":
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
    edits = []
    for match in _NON_ASCII.finditer(text):
        folded = _fold_character(match.group())
        if folded != match.group():
            edits.append((match.start(), match.end(), folded))
    return rewrite(original, edits)


def substitute(source: TextMap, pattern: re.Pattern[str], replace: Callable[[str], str]) -> TextMap:
    """A copy of ``source`` with each match of ``pattern`` replaced by ``replace(match)``."""
    edits = []
    for match in pattern.finditer(source.text):
        replacement = replace(match.group())
        if replacement != match.group():
            edits.append((match.start(), match.end(), replacement))
    return rewrite(source, edits)


# What people and mail clients put between the groups of a number: spaces of any width, tabs,
# line breaks, dashes of any length, slashes, dots, underscores. A run of up to four of them
# between two digits is one separator; between a digit and a letter (a postcode's or NI number's
# groups) only spaces, dashes and slashes count, so "b. 3 April" keeps its abbreviation dot.
_DASHES = r"\-\u2010-\u2015\u2212\u2e3a\u2e3b"
_GAP_ANY = r"[\s" + _DASHES + r"/\\\u2044\u2215.\u00b7\u2022\u2027\u2219\u22c5\u30fb_]"
_GAP_WORD = r"[\s" + _DASHES + r"/]"
_GAPS = re.compile(
    rf"(?<=[0-9]){_GAP_ANY}{{1,4}}(?=[0-9])"
    rf"|(?<=[0-9]){_GAP_WORD}{{1,3}}(?=[A-Za-z])|(?<=[A-Za-z]){_GAP_WORD}{{1,3}}(?=[0-9])"
)


def unify_gaps(source: TextMap) -> TextMap:
    """``source`` with every separator run between digit groups made one space.

    Python's ``re`` does this one job: each alternative is a bounded run between fixed
    one-character lookarounds, so it cannot backtrack more than four characters anywhere.
    """
    return substitute(source, _GAPS, lambda _: " ")
