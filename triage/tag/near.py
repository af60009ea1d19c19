"""Tag stage: a fast path for themes.toml's token patterns. May import numpy and re2.

The patterns are written in spaCy Matcher syntax. The Matcher tries every pattern at every
token, and with optional tokens and ``{m,n}`` windows fifteen patterns cost more than the rest
of the pipeline together. Most patterns are plain sequences of one-attribute token tests, and
those become regular expressions over the document written as text: each token is three
characters, one for its lemma, one for its lower-case form and one for like_num, each column
with an alphabet of its own (every word no pattern names is that column's "other" character).
One RE2 set then scans a document once for every pattern and names the few that match; only
those are located, and every (start, end) the Matcher would report is read off them. Patterns
of any other shape stay with the Matcher.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy
import numpy.typing as npt
import re2

# Columns of the attribute table triage.tag hands over: lemma hash, lower-case hash, like_num.
LEMMA, LOWER, LIKE_NUM = 0, 1, 2
_WINDOW = re.compile(r"^\{(\d*),(\d+)\}$")
_FIRST_CHAR = 0x100  # above ASCII, so no character is special in a regular expression
_LAST_CHAR = 0xD7FF  # below the surrogates, so a document is a plain UTF-16 string
Table = npt.NDArray[Any]
Match = tuple[str, int, int]  # pattern key, start token, end token


@dataclass(frozen=True)
class Step:
    """``low``..``high`` tokens whose ``column`` value is in ``values`` (column -1: any token)."""

    column: int
    values: frozenset[int]
    low: int
    high: int


@dataclass(frozen=True)
class TokenSequence:
    """A compiled pattern: a first token, then steps."""

    steps: tuple[Step, ...]

    @property
    def lengths(self) -> range:
        """The numbers of tokens a match can span."""
        return range(sum(s.low for s in self.steps), sum(s.high for s in self.steps) + 1)


class Alphabet:
    """The characters a document is written in: per column, one per value patterns name."""

    def __init__(self, sequences: Sequence[TokenSequence]) -> None:
        named: dict[int, set[int]] = {LEMMA: set(), LOWER: set(), LIKE_NUM: {0, 1}}
        for sequence in sequences:
            for step in sequence.steps:
                if step.column >= 0:
                    named[step.column] |= step.values
        self._values = {c: numpy.array(sorted(v), dtype="uint64") for c, v in named.items()}
        # Column c's characters: base[c] ("other") then base[c] + 1 + index of the value.
        self._base, first = {}, _FIRST_CHAR
        for column in (LEMMA, LOWER, LIKE_NUM):
            self._base[column] = first
            first += len(self._values[column]) + 1
        if first > _LAST_CHAR:
            raise ValueError(f"token patterns name {first - _FIRST_CHAR} words, too many")

    def token(self, step: Step) -> str:
        """A regular expression for one token passing ``step`` (its three characters)."""
        if step.column < 0:
            return "..."
        values = self._values[step.column]
        indexes = sorted(int(numpy.searchsorted(values, numpy.uint64(v))) for v in step.values)
        chars = "".join(chr(self._base[step.column] + 1 + i) for i in indexes)
        tests = [".", ".", "."]
        tests[step.column] = f"[{chars}]"
        return "".join(tests)

    def encode(self, table: Table) -> str:
        """The document's token table (lemma, lower, like_num columns) as text."""
        codes = numpy.empty(table.shape, dtype="uint16")
        codes[:, LIKE_NUM] = table[:, LIKE_NUM] + (self._base[LIKE_NUM] + 1)  # 0/1: no lookup
        for column in (LEMMA, LOWER):
            values, found = self._values[column], table[:, column]
            if not len(values):
                codes[:, column] = self._base[column]
                continue
            index = numpy.searchsorted(values, found)
            index[index >= len(values)] = 0
            named = values[index] == found
            codes[:, column] = numpy.where(named, index + 1, 0) + self._base[column]
        return codes.tobytes().decode("utf-16-le")


class SequenceSet:
    """Compiled patterns, each with a key, found together in one scan of a document."""

    def __init__(self, named: Sequence[tuple[str, TokenSequence]]) -> None:
        self._alphabet = Alphabet([sequence for _, sequence in named])
        self._patterns: list[tuple[str, re.Pattern[str], range]] = []
        scan = re2.Set.SearchSet()
        for key, sequence in named:
            expression = "".join(self._step(step) for step in sequence.steps)
            self._patterns.append((key, re.compile(expression), sequence.lengths))
            scan.Add(expression)
        self._scan: Any = None
        if named:  # RE2 refuses to compile an empty set
            scan.Compile()
            self._scan = scan

    def _step(self, step: Step) -> str:
        token = self._alphabet.token(step)
        if (step.low, step.high) == (1, 1):
            return token
        return f"(?:{token}){{{step.low},{step.high}}}"

    def find(self, table: Table) -> list[Match]:
        """(key, start, end) of every match, pattern by pattern, as the Matcher reports them."""
        if self._scan is None or not len(table):
            return []
        text, size = self._alphabet.encode(table), len(table)
        found: list[Match] = []
        for index in sorted(self._scan.Match(text) or ()):
            key, pattern, lengths = self._patterns[index]
            position = 0
            while (hit := pattern.search(text, position)) is not None:
                start = hit.start() // 3
                found += [(key, start, start + n) for n in lengths if start + n <= size
                          and pattern.fullmatch(text, 3 * start, 3 * (start + n))]  # fmt: skip
                position = hit.start() + 3
        return found


def compile_sequence(
    pattern: Sequence[Mapping[str, Any]], hash_of: Callable[[str], int]
) -> TokenSequence | None:
    """The fast form of a Matcher pattern, or None when it has another shape."""
    steps = [_step(token, hash_of) for token in pattern]
    if not steps or any(s is None for s in steps):
        return None
    compiled = tuple(s for s in steps if s is not None)
    if (compiled[0].low, compiled[0].high) != (1, 1) or compiled[0].column < 0:
        return None  # the first token must be a real test: it is where matches start
    return TokenSequence(compiled)


def _step(token: Mapping[str, Any], hash_of: Callable[[str], int]) -> Step | None:
    op = token.get("OP")
    tests = {k: v for k, v in token.items() if k != "OP"}
    if not tests:  # {OP = "{m,n}"}: any tokens
        window = _WINDOW.match(str(op)) if op is not None else None
        if window is None:
            return None
        return Step(-1, frozenset(), int(window.group(1) or 0), int(window.group(2)))
    if op not in (None, "?") or len(tests) != 1:
        return None
    low = 0 if op == "?" else 1
    ((attr, value),) = tests.items()
    if attr == "LIKE_NUM" and value is True:
        return Step(LIKE_NUM, frozenset({1}), low, 1)
    column = {"LEMMA": LEMMA, "LOWER": LOWER}.get(attr)
    if column is None:
        return None
    if isinstance(value, Mapping) and set(value) == {"IN"}:
        words = [str(w) for w in value["IN"]]
    elif isinstance(value, str):
        words = [value]
    else:
        return None
    # Lemmas here are lower-case, and LOWER compares lower-case forms.
    return Step(column, frozenset(hash_of(w.lower()) for w in words), low, 1)
