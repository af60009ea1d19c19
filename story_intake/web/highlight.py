"""The review page, highlighting: a story's text cut into plain and evidence segments.

Pure. The template prints every segment with autoescaping, so the marks are built from the
evidence spans without any markup ever being put together as a string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from intake.records import Evidence


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of the text; ``label`` is the theme it is evidence for ("" for plain text)."""

    text: str
    label: str = ""


def segments(text: str, evidence: Sequence[Evidence]) -> list[Segment]:
    """``text`` as segments, each evidence span (clipped to the text, the earlier of two
    overlapping spans winning) marked with its label."""
    spans = sorted((max(0, e.start), min(len(text), e.end), e.label) for e in evidence
                   if e.start < e.end and e.start < len(text))  # fmt: skip
    out: list[Segment] = []
    at = 0
    for start, end, label in spans:
        if end <= at:
            continue  # inside a span already marked
        start = max(start, at)
        if start > at:
            out.append(Segment(text[at:start]))
        out.append(Segment(text[start:end], label))
        at = end
    if at < len(text):
        out.append(Segment(text[at:]))
    return out
