"""The sender's own words in every language: reply headers, attributions, device lines, separators.

Cases live in tests/data/own_words_*.txt (see the first file's header for the format): each is a
reply body and the text `clean` must keep as the sender's own words. Nothing may be lost: every
line of the body is in the text, quoted history, signature or footer.
"""

from __future__ import annotations

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
    kept = Counter(
        _lines("\n".join((result.text, result.quoted, result.signature, result.footer)))
    )
    assert not Counter(_lines(case.body)) - kept  # nothing lost


def test_clean_words_cases_cover_every_class_in_every_language() -> None:
    covered = {(case.language, case.kind) for case in CASES}
    missing = {(lang, kind) for lang in LANGUAGES for kind in HISTORY_CLASSES} - covered
    assert not missing
    assert len(CASES) >= 60
