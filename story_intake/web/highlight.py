"""The review page, highlighting: a story's text cut into plain and evidence segments.

Pure. The template prints every segment with autoescaping, so the marks are built from the
evidence spans without any markup ever being put together as a string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from intake.records import Evidence


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of the text; ``label`` is the theme it is evidence for ("" for plain text)."""

    text: str
    label: str = ""


def segments(text: str, evidence: Sequence[Evidence]) -> list[Segment]:
    """``text`` as segments, each piece covered by evidence spans (clipped to the text)
    marked with their labels ("health, agency: police"): spans that overlap, say an agency
    named inside a theme's evidence, both stay visible."""
    spans = [(max(0, e.start), min(len(text), e.end), e.label) for e in evidence
             if e.start < e.end and e.start < len(text)]  # fmt: skip
    cuts = sorted({0, len(text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out: list[Segment] = []
    for start, end in pairwise(cuts):
        labels = ", ".join(dict.fromkeys(label for s, e, label in spans
                                         if s <= start and end <= e))  # fmt: skip
        if out and out[-1].label == labels:  # spans that touch: one mark
            out[-1] = Segment(out[-1].text + text[start:end], labels)
        else:
            out.append(Segment(text[start:end], labels))
    return out
