"""Tag stage, the judgement: classifier scores and rule hits -> Triage. Stdlib only.

``triage.tag.tagger`` reads a spaCy Doc into a ``Reading`` of plain values; everything from there to
the Triage record (kind, scores, themes, evidence, review reasons) happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from intake.records import Evidence, Kind, Story, Triage
from triage.tag.asking import addressed_to_us, negated, reads_as_request
from triage.tag.rules import (
    AUTOMATED,
    BY_CLASSIFIER,
    MIXED_REQUEST,
    STORY,
    WEAK_HIT,
    WITHDRAWAL,
    TagSettings,
    automated_reason,
    combine,
    review_reasons,
)

# Withdrawals must never be missed, and a story must never be read as one (it would vanish from
# the digest's themes). A withdrawal phrase that asks us (triage.asking.reads_as_request) makes
# the message a withdrawal when the message is this short, when the classifier reads a request
# or gives withdrawal this much, or when the phrase stands in the message's first or last
# WITHDRAWAL_EDGE_WORDS words in a sentence that speaks to us: the story told, then "so please
# don't use it". Chosen by 5-fold cross-validation on the training files and checked on the dev
# set, recall first: edges of 50 to 150 words and a minimum probability of 0.1 to 0.2 (or none)
# all give the same result there; 60 short words reads more requests as withdrawals. A request
# wrongly read as a withdrawal is still shown to a person first.
WITHDRAWAL_SHORT_WORDS = 40
WITHDRAWAL_MIN_PROBABILITY = 0.1
WITHDRAWAL_EDGE_WORDS = 100
# Without a withdrawal phrase, the classifier alone calls a short message a withdrawal ("pls
# withdrw my stroy") when it gives withdrawal at least WITHDRAWAL_ALONE and story less than
# WITHDRAWAL_ALONE_STORY (it reads most short notes as withdrawals, short stories included), and
# neither a withdrawal phrase (all of them negated or told: "please don't delete it") nor an
# [automated] one is there; the whole message is then the evidence. Longer ones need a phrase.
WITHDRAWAL_ALONE = 0.35
WITHDRAWAL_ALONE_STORY = 0.15  # cross-validated: short stories 0.23 and up, withdrawals <= 0.06
WITHDRAWAL_ALONE_LONG = 0.7  # a safety net: 5-fold CV 2 stories of ~600 read as withdrawals


class Hit(NamedTuple):
    """One rule match: which table of themes.toml, which entry, which rule, where.

    A named tuple, not a frozen dataclass: a long story has dozens, and building a frozen
    dataclass costs about ten times as much (0.1 ms a story in all)."""

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
    on_topic: bool = True  # it uses a word of the withdrawal vocabulary (triage.tag.vocabulary)


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
    if any(h.rule == "classifier" for h in kind_hits):  # no phrase asked: a person confirms
        reasons = (*reasons, BY_CLASSIFIER)
    elif (
        kind == WITHDRAWAL
        and reading.words > WITHDRAWAL_SHORT_WORDS
        and any(scores[t] >= thresholds[t] for t in scores)
    ):  # a story told and a withdrawal asked: a person reads it before anything is removed
        reasons = (*reasons, MIXED_REQUEST)
    return Triage(
        story_id=story.story_id,
        kind=kind,
        themes=themes,
        scores=tuple(scores.items()),
        evidence=tuple(
            Evidence(h.name, h.rule, h.start, h.end, h.text) for h in first_of_each(hits)
        ),
        review_reasons=reasons,
        agencies=tuple(
            Evidence(h.name, h.rule, h.start, h.end, h.text)
            for h in first_of_each([h for h in reading.hits if h.section == "agencies"])
        ),
    )


def first_of_each(hits: list[Hit]) -> list[Hit]:
    """The first span of each distinct ``phrase`` per label. A word said ten times is one
    piece of evidence, and the digest highlights all ten; keeping every span made a backlog of
    long stories carry about 60 Evidence records each through pickling, JSON and the store,
    where 25 say the same."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for hit in hits:
        key = (hit.name, phrase(hit.text))
        if key not in seen:
            seen.add(key)
            kept.append(hit)
    return kept


def phrase(text: str) -> str:
    """An evidence span as a phrase: case and spacing aside ("Memory\n clinic" is "memory
    clinic"). Evidence keeps one span per phrase, and the digest highlights phrases."""
    return " ".join(text.split()).lower()


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
    """The message's kind, the confidence in it, and the rule hits behind a withdrawal."""
    if automated_reason(story):
        return AUTOMATED, 1.0, ()
    if reading.words == 0:  # nothing to read (an attachment alone, say): a person should look
        return STORY, 0.0, ()
    kinds = {k: float(v) for k, v in reading.cats.items() if _is_kind(k)}
    kind, confidence = max(kinds.items(), key=lambda kv: kv[1]) if kinds else (STORY, 1.0)
    probability = kinds.get(WITHDRAWAL, 0.0)
    text = story.text
    phrases = [h for h in reading.hits
               if h.section == "requests" and f"request:{h.name}" == WITHDRAWAL]  # fmt: skip
    asked = tuple(h for h in phrases if reads_as_request(text, h.start, h.end))
    short = reading.words <= WITHDRAWAL_SHORT_WORDS
    if asked and kind != AUTOMATED and (
        short or Kind.is_request(kind) or probability >= WITHDRAWAL_MIN_PROBABILITY
        or any(_at_edge(text, h) and addressed_to_us(text, h.start, h.end) for h in asked)
    ):  # fmt: skip
        return WITHDRAWAL, probability, asked
    if kind != WITHDRAWAL:
        return kind, confidence, ()
    # The classifier alone only where no phrase matched: "please don't delete it" has spoken.
    machine = any(h.section == "automated" for h in reading.hits)  # "Automatic reply: ..."
    # "Use my story however you like", "keep me anonymous": consent said, not negated.
    consent = any(h.section == "requests" and h.name == "consent" and not negated(text, h.start)
                  for h in reading.hits)  # fmt: skip
    unopposed = not phrases and not machine and not consent and reading.on_topic
    storyless = kinds.get(STORY, 0.0) < WITHDRAWAL_ALONE_STORY
    if unopposed and ((short and confidence >= WITHDRAWAL_ALONE and storyless)
                      or (not short and confidence >= WITHDRAWAL_ALONE_LONG)):  # fmt: skip
        # A longer message the classifier reads as a withdrawal above all else is one too:
        # missing a withdrawal costs more than a person checking (it goes to review). The
        # evidence is the closing paragraph (or the whole of a short note), where people ask.
        return WITHDRAWAL, confidence, (_closing(text),)
    others = {k: v for k, v in kinds.items() if k != WITHDRAWAL}
    return (*max(others.items(), key=lambda kv: kv[1]), ()) if others else (STORY, 0.0, ())


def _closing(text: str) -> Hit:
    """The message's last paragraph as a classifier-only withdrawal's evidence span."""
    body = text.rstrip()
    start = body.rfind("\n\n") + 2 if "\n\n" in body else 0
    start += len(body[start:]) - len(body[start:].lstrip())
    return Hit("requests", "withdrawal", "classifier", start, len(body), body[start:])


def _at_edge(text: str, hit: Hit) -> bool:
    """Whether ``hit`` stands in the first or last WITHDRAWAL_EDGE_WORDS words of ``text``."""
    return (len(text[: hit.start].split()) < WITHDRAWAL_EDGE_WORDS
            or len(text[hit.end :].split()) < WITHDRAWAL_EDGE_WORDS)  # fmt: skip


def _is_kind(label: str) -> bool:
    return label in (STORY, AUTOMATED) or Kind.is_request(label)
