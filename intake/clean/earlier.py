"""Earlier mail pasted without quote marks: blocks of lines that repeat a message the reply
answers (our acknowledgement, the sender's own earlier story), found by shared word shingles.

Pure and stdlib-only, called by `intake.clean.body`. The caller supplies the earlier messages'
texts (`References`/`In-Reply-To` name them; `intake` itself never looks them up). Words are
compared case-folded without punctuation, in runs that cross line ends, so a client that
re-wrapped or re-spaced the pasted text still matches.
"""

from __future__ import annotations

import re

from intake.clean import patterns as p

SHINGLE = 4  # words per shingle: fewer match common phrases ("if you have a"), more miss edits
# A line belongs to a pasted block when most of its words sit in a shingle the earlier text
# has; a greeting or reference number that differs leaves the rest of the line matching.
_LINE_SHARE = 0.6
# A block is pasted history only when it repeats this many shingles (about two sentences):
# a reply that quotes one sentence of ours back ("you said I can withdraw at any time") keeps it.
MIN_SHARED = 24
# ... or, for a short earlier text, most of it: a two-line story pasted whole is still pasted.
_SHORT_SHARE = 0.8
_MIN_SHORT = 6
_WORD = re.compile(r"[^\W_]+")


def shingles(texts: tuple[str, ...]) -> tuple[frozenset[tuple[str, ...]], ...]:
    """Each earlier text's set of word shingles (quote marks dropped: it may itself quote).
    Not cached: a stored story's words must not outlive the message that needed them."""
    found = []
    for text in texts:
        words = _WORD.findall(" ".join(p.dequote(line) for line in text.split("\n")).casefold())
        found.append(frozenset(_runs(words)))
    return tuple(found)


def _runs(words: list[str]) -> list[tuple[str, ...]]:
    return [tuple(words[k : k + SHINGLE]) for k in range(len(words) - SHINGLE + 1)]


def pasted_blocks(
    lines: list[str], earlier: tuple[frozenset[tuple[str, ...]], ...]
) -> dict[int, int]:
    """{start: end} of each run of unquoted lines that repeats one of the earlier texts."""
    words: list[str] = []
    owner: list[int] = []  # the line each word is on
    for index, line in enumerate(lines):
        if not p.is_quote(line):
            found = _WORD.findall(line.casefold())
            words += found
            owner += [index] * len(found)
    runs = _runs(words)
    blocks: dict[int, int] = {}
    for known in earlier:
        if len(known) < _MIN_SHORT:
            continue
        hits = [k for k, run in enumerate(runs) if run in known]
        if len(hits) < _MIN_SHORT:
            continue  # the usual case, a reply that shares nothing: no line is looked at
        for start, end, shared in _matching_runs(lines, owner, hits):
            if shared >= min(MIN_SHARED, max(_MIN_SHORT, int(_SHORT_SHARE * len(known)))):
                blocks[start] = max(end, blocks.get(start, end))
    return blocks


def _matching_runs(
    lines: list[str], owner: list[int], hits: list[int]
) -> list[tuple[int, int, int]]:
    """(start, end, shingles shared) of each run of matching lines; blank lines may sit inside.
    `hits`: the positions of the body's shingles that the earlier text has."""
    covered = [False] * len(owner)
    shared: dict[int, int] = {}  # shingles starting on each line that the earlier text has
    for k in hits:
        covered[k : k + SHINGLE] = [True] * SHINGLE
        shared[owner[k]] = shared.get(owner[k], 0) + 1
    total: dict[int, list[int]] = {}
    for k, index in enumerate(owner):
        total.setdefault(index, [0, 0])[0] += 1
        total[index][1] += covered[k]
    matching = {i for i, (n, hit) in total.items() if hit >= _LINE_SHARE * n}
    return _runs_of(lines, matching, shared)


def _runs_of(
    lines: list[str], matching: set[int], shared: dict[int, int]
) -> list[tuple[int, int, int]]:
    runs: list[tuple[int, int, int]] = []
    start: int | None = None
    last = count = 0
    for index, line in enumerate([*lines, "end"]):
        if index in matching:
            start = index if start is None else start
            last, count = index, count + shared.get(index, 0)
        elif not p.is_blank(line) or index == len(lines):
            if start is not None:
                runs.append((start, last + 1, count))
            start, count = None, 0
    return runs
