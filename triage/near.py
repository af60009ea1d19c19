"""Tag stage: a fast path for themes.toml's token patterns. May import numpy.

The patterns are written in spaCy Matcher syntax. The Matcher tries every pattern at every
token, and with optional tokens and ``{m,n}`` windows fifteen patterns cost more than the rest
of the pipeline together. Most patterns are plain sequences of one-attribute token tests, so
here the first token's test is a lookup in a per-document index of where each lemma or word
stands (the only places a match can start), and a short walk from each such place finds every
match the Matcher would. Patterns of any other shape stay with the Matcher.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

# Columns of the attribute table triage.tag hands over: lemma hash, lower-case hash, like_num.
LEMMA, LOWER, LIKE_NUM = 0, 1, 2
_WINDOW = re.compile(r"^\{(\d*),(\d+)\}$")
Table = npt.NDArray[Any]


@dataclass(frozen=True)
class Step:
    """``low``..``high`` tokens whose ``column`` value is in ``values`` (column -1: any token)."""

    column: int
    values: frozenset[int]
    low: int
    high: int

    def passes(self, columns: Columns, position: int) -> bool:
        """Whether the token at ``position`` passes."""
        return self.column < 0 or columns[self.column][position] in self.values


class Columns(list[list[int]]):
    """A document's attribute columns as Python lists, with a value -> positions index.

    ``wanted`` (column -> values) limits the index to the values patterns can start with:
    building it for every token of every column cost more than all the matching.
    """

    def __init__(self, table: Table, wanted: Mapping[int, frozenset[int]] | None = None) -> None:
        super().__init__(table.T.tolist())
        self._wanted = wanted
        self._index: dict[int, dict[int, list[int]]] = {}

    def positions(self, column: int, values: frozenset[int]) -> list[int]:
        """Every position whose ``column`` value is one of ``values``, ascending."""
        index = self._index.get(column)
        if index is None:
            index = self._index[column] = self._build(column)
        if len(values) == 1:
            return index.get(next(iter(values)), [])
        return sorted(p for v in values for p in index.get(v, ()))

    def _build(self, column: int) -> dict[int, list[int]]:
        values = self[column]
        wanted = self._wanted.get(column) if self._wanted is not None else None
        index: dict[int, list[int]] = {}
        for position, value in enumerate(values):
            if wanted is None or value in wanted:
                index.setdefault(value, []).append(position)
        return index


@dataclass(frozen=True)
class TokenSequence:
    """A compiled pattern: a first token, then steps."""

    steps: tuple[Step, ...]

    @property
    def first(self) -> tuple[int, frozenset[int]]:
        """The column and values a match must start with."""
        return self.steps[0].column, self.steps[0].values

    def find(self, columns: Columns) -> list[tuple[int, int]]:
        """(start, end) token offsets of every match, as the Matcher reports them."""
        first, rest, size = self.steps[0], self.steps[1:], len(columns[0])
        found: list[tuple[int, int]] = []
        for start in columns.positions(first.column, first.values):
            ends = {start + 1}
            for step in rest:  # the set of positions each step can end at, step by step
                ends = _advance(step, columns, ends, size)
                if not ends:
                    break
            found.extend((start, end) for end in sorted(ends))
        return found


def _advance(step: Step, columns: Columns, starts: set[int], size: int) -> set[int]:
    """Where ``step`` can end from each of ``starts``: after ``low`` to ``high`` passing tokens."""
    ends: set[int] = set()
    column = columns[step.column] if step.column >= 0 else None
    values = step.values
    for position in starts:
        for count in range(step.high + 1):
            if count >= step.low:
                ends.add(position + count)
            at = position + count
            if at >= size or (column is not None and column[at] not in values):
                break
    return ends


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
