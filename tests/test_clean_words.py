"""The sender's own words in every language: reply headers, attributions, device lines, separators.

Cases live in tests/data/own_words_*.txt (see the first file's header for the format): each is a
reply body and the text `clean` must keep as the sender's own words. Nothing may be lost: every
line of the body is in the text, quoted history, signature or footer.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from intake.clean.body import clean

DATA = Path(__file__).parent / "data"
LANGUAGES = frozenset(
    ("en", "fr", "de", "nl", "es", "it", "pt", "sv", "da", "no", "fi", "pl", "ru")
)
HISTORY_CLASSES = frozenset(("header", "attribution", "device", "separator", "rewrap"))


@dataclass(frozen=True)
class Case:
    language: str
    kind: str
    name: str
    body: str
    own: str

    @property
    def id(self) -> str:
        return f"{self.language}-{self.kind}-{self.name}"


def load_cases() -> list[Case]:
    """Every case of tests/data/own_words_*.txt, in file order."""
    cases: list[Case] = []
    for path in sorted(DATA.glob("own_words_*.txt")):
        head: list[str] | None = None
        parts: list[list[str]] = []
        for line in [*path.read_text(encoding="utf-8").split("\n"), "#### end"]:
            if line.startswith("#### ") and line != "#### own":
                if head is not None:
                    cases.append(Case(*head, *("\n".join(part).strip("\n") for part in parts)))
                head, parts = line.split()[1:4], [[]]
            elif line == "#### own":
                parts.append([])
            elif head is not None:
                parts[-1].append(line)
    return cases


CASES = load_cases()


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def agrees(case: Case) -> bool:
    """`clean` keeps exactly the expected own words."""
    return clean(case.body).text.strip("\n") == case.own


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_clean_words_keeps_only_own_words(case: Case) -> None:
    result = clean(case.body)
    assert result.text.strip("\n") == case.own
    kept = Counter(_lines("\n".join((result.text, result.quoted, result.signature, result.footer))))
    assert not Counter(_lines(case.body)) - kept  # nothing lost


def test_clean_words_cases_cover_every_class_in_every_language() -> None:
    covered = {(case.language, case.kind) for case in CASES}
    missing = {(lang, kind) for lang in LANGUAGES for kind in HISTORY_CLASSES} - covered
    assert not missing
    assert len(CASES) >= 60


# Hostile shapes for the rules above: each must stay linear (a quadratic scan takes minutes).
HOSTILE = {
    "rewrap_chain": ("> " + "a " * 30 + "\nb\n") * 20_000,
    "device_over_fields": "Sent from my iPhone\nFrom: a\n" * 20_000,
    "device_over_blank": "Sent from my iPhone\n\n" * 20_000,
    "decorated_lines": "----- x -----\n" * 20_000 + "From: a <a@example.org>\nTo: b\nSubject: c",
    "dated_heads": "30.09.2017, 18:30, " * 5_000 + "<a@example.org>:",
    "blank_between_fields": "From: a\n\nTo: b\n\n" * 20_000,
    "named_attribution": "Jane wrote:\n" * 20_000,
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_clean_words_hostile_shapes_stay_linear(body: str) -> None:
    started = time.process_time()
    result = clean(body)
    assert time.process_time() - started < 20  # linear: well under a second when idle
    assert sum(len(part) for part in (result.text, result.quoted, result.signature,
                                      result.footer)) <= len(body) + 1000  # fmt: skip
