"""Tag stage, the judgement: classifier scores and rule hits -> Triage. Stdlib only.

``triage.tag`` reads a spaCy Doc into a ``Reading`` of plain values; everything from there to
the Triage record (kind, scores, themes, evidence, review reasons) happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from intake.records import Evidence, Story, Triage
from triage.rules import (
    AUTOMATED,
    STORY,
    WEAK_HIT,
    WITHDRAWAL,
    TagSettings,
    automated_reason,
    combine,
    review_reasons,
)

# A withdrawal rule hit in a message the classifier reads as a story still makes it a
# withdrawal when the story is this short, or the classifier gives withdrawal this much.
# Chosen by cross-validation on the training files, recall first: a withdrawal must never be
# missed, and a request wrongly read as one is still shown to a person first.
WITHDRAWAL_SHORT_WORDS = 40
WITHDRAWAL_MIN_PROBABILITY = 0.1
# Without any rule hit, the classifier alone must be this sure to call a message a withdrawal.
WITHDRAWAL_ALONE = 0.4


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule match: which table of themes.toml, which entry, which rule, where."""

    section: str
    name: str
    rule: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Reading:
    """What the spaCy pipeline found in one story's text."""

    cats: Mapping[str, float]
    hits: tuple[Hit, ...]
    words: int


def judge(
    story: Story,
    reading: Reading,
    settings: TagSettings,
    trained: frozenset[str],
    explain: Callable[[str], Hit | None],
) -> Triage:
    """The Triage for one story; ``explain(theme)`` finds evidence when no rule matched."""
    kind, confidence, kind_hits = decide_kind(story, reading)
    by_theme: dict[str, list[Hit]] = {name: [] for name in settings.theme_names}
    for hit in reading.hits:
        if hit.section == "themes" and hit.name in by_theme:
            by_theme[hit.name].append(hit)
    scores = {name: theme_score(name, found, reading, trained, settings)
              for name, found in by_theme.items()}  # fmt: skip
    thresholds = {t.name: t.threshold for t in settings.themes}
    themes = tuple(n for n in settings.theme_names if scores[n] >= thresholds[n])
    if kind != STORY:
        themes = ()  # requests and automated mail refer to themes; they do not tell a story
    hits = list(kind_hits)
    for theme in themes:
        fallback = explain(theme) if not by_theme[theme] else None
        hits += by_theme[theme] or ([fallback] if fallback else [])
    reasons = review_reasons(kind, confidence, scores, thresholds, reading.words, settings,
                             story.defects)  # fmt: skip
    return Triage(
        story_id=story.story_id,
        kind=kind,
        themes=themes,
        scores=tuple(scores.items()),
        evidence=tuple(Evidence(h.name, h.rule, h.start, h.end, h.text) for h in hits),
        review_reasons=reasons,
    )


def theme_score(
    theme: str, mine: list[Hit], reading: Reading, trained: frozenset[str], s: TagSettings
) -> float:
    """Classifier probability and the distinct phrases among ``mine`` (the theme's rule hits),
    combined (see rules.combine)."""
    strong = {h.text.lower() for h in mine if not h.rule.startswith("weak-")}
    weak = {h.text.lower() for h in mine if h.rule.startswith("weak-")} - strong
    model = float(reading.cats[theme]) if theme in trained and theme in reading.cats else None
    return combine(model, len(strong) + WEAK_HIT * len(weak), s.model_weight,
                   s.evidence_saturation)  # fmt: skip


def decide_kind(story: Story, reading: Reading) -> tuple[str, float, tuple[Hit, ...]]:
    """The message's kind, the confidence in it, and the rule hits behind a request."""
    if automated_reason(story):
        return AUTOMATED, 1.0, ()
    if reading.words == 0:  # nothing to read (an attachment alone, say): a person should look
        return STORY, 0.0, ()
    kinds = {k: float(v) for k, v in reading.cats.items() if _is_kind(k)}
    kind, confidence = max(kinds.items(), key=lambda kv: kv[1]) if kinds else (STORY, 1.0)
    withdrawal = tuple(
        h for h in reading.hits if h.section == "requests" and f"request:{h.name}" == WITHDRAWAL
    )
    # Withdrawals must never be missed: a rule hit overrides the classifier unless the message
    # is a long story that the classifier is sure is not a withdrawal.
    if withdrawal and kind != WITHDRAWAL and kind != AUTOMATED and (
        reading.words <= WITHDRAWAL_SHORT_WORDS
        or kinds.get(WITHDRAWAL, 0.0) >= WITHDRAWAL_MIN_PROBABILITY
        or kind.startswith("request:")
    ):
        return WITHDRAWAL, kinds.get(WITHDRAWAL, 0.0), withdrawal
    if kind == WITHDRAWAL and not withdrawal and confidence < WITHDRAWAL_ALONE:
        others = {k: v for k, v in kinds.items() if k != WITHDRAWAL}
        return (*max(others.items(), key=lambda kv: kv[1]), ()) if others else (STORY, 0.0, ())
    return kind, confidence, withdrawal if kind == WITHDRAWAL else ()


def _is_kind(label: str) -> bool:
    return label in (STORY, AUTOMATED) or label.startswith("request:")
