"""Digest stage: which agencies appear together in a window's ``duplication`` stories. Pure.

The campaign's question is which agencies fail to talk to each other. A ``duplication`` story
(the person repeated themselves, agencies did not share) that names two agencies is a vote for
that pair; the digest lists the pairs, most frequent first, with the stories' references.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

from intake.records import DigestEntry
from triage.reply.policy import reference
from triage.tag.rules import STORY

DUPLICATION = "duplication"
MAX_PAIRS = 20  # the digest is read, not searched: export has every story's agencies


@dataclass(frozen=True, slots=True)
class AgencyPair:
    """Two agencies named together in ``count`` duplication stories (``references``)."""

    first: str
    second: str
    count: int
    references: tuple[str, ...]

    @property
    def title(self) -> str:
        """The pair as the digest shows it: "gp practice + hospital"."""
        return f"{_label(self.first)} + {_label(self.second)}"


class PairTally:
    """Counts agency pairs entry by entry (the digest's entries are a stream)."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], list[str]] = {}

    def add(self, entry: DigestEntry) -> None:
        """Count ``entry``'s pairs when it is a duplication story not on hold."""
        triage = entry.triage
        if entry.on_hold or triage is None or triage.kind != STORY:
            return
        if DUPLICATION not in triage.themes:
            return
        for pair in combinations(sorted({e.label for e in triage.agencies}), 2):
            self._found.setdefault(pair, []).append(reference(entry.story.story_id))

    def pairs(self, limit: int = MAX_PAIRS) -> tuple[AgencyPair, ...]:
        """The pairs, most frequent first (then by name), at most ``limit``."""
        ranked = sorted(self._found.items(), key=lambda item: (-len(item[1]), item[0]))
        return tuple(AgencyPair(a, b, len(refs), tuple(refs)) for (a, b), refs in ranked[:limit])


def agency_pairs(entries: Iterable[DigestEntry], limit: int = MAX_PAIRS) -> tuple[AgencyPair, ...]:
    """Pairs of agencies named together in the entries' duplication stories, most frequent
    first; stories on hold are left out, as everywhere in the digest."""
    tally = PairTally()
    for entry in entries:
        tally.add(entry)
    return tally.pairs(limit)


def _label(name: str) -> str:
    return name.replace("_", " ")
