"""Tag stage, the pure half: theme vocabulary, header rules and how scores combine. Stdlib only.

The vocabulary comes from ``config/themes.toml`` (data, not code); ``triage.tag`` turns it into
spaCy matchers. Everything here is a plain function of plain values, so it is tested without
spaCy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from intake.records import Story

STORY = "story"
AUTOMATED = "automated"
WITHDRAWAL = "request:withdrawal"

# Local parts that only machines send from (RFC 3834 section 2, and what Sieve vacation skips).
_SYSTEM_SENDER = re.compile(
    r"^(mailer-daemon|postmaster|listserv|majordomo|owner-.*|.*-request|no-?reply|"
    r"do-?not-?reply|bounces?(\+.*)?|notifications?)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ThemeSpec:
    """One theme: what it means, when it counts, and the words that are evidence for it.

    ``weak_terms`` and ``weak_patterns`` are evidence only together with more: words such as
    "again" or "twice" that also turn up in passing. A weak hit counts half.
    """

    name: str
    description: str
    threshold: float = 0.5
    terms: tuple[str, ...] = ()
    patterns: tuple[tuple[Mapping[str, Any], ...], ...] = ()
    weak_terms: tuple[str, ...] = ()
    weak_patterns: tuple[tuple[Mapping[str, Any], ...], ...] = ()


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A kind of request recognised by rule (``request:<name>``), besides the classifier."""

    name: str
    description: str
    terms: tuple[str, ...] = ()
    patterns: tuple[tuple[Mapping[str, Any], ...], ...] = ()


@dataclass(frozen=True, slots=True)
class TagSettings:
    """``config/themes.toml``: the vocabulary and the knobs of the tagger."""

    themes: tuple[ThemeSpec, ...]
    requests: tuple[RequestSpec, ...] = ()
    automated_terms: tuple[str, ...] = ()
    min_words: int = 15
    review_margin: float = 0.1
    model_weight: float = 0.75
    evidence_saturation: float = 3.0
    kind_confidence: float = 0.6
    seed: int = 0
    epochs: int = 20
    data_dir: str = "triage/data"
    model_dir: str = "var/model"

    @property
    def theme_names(self) -> tuple[str, ...]:
        """The themes, in the order the file lists them."""
        return tuple(t.name for t in self.themes)


def automated_reason(story: Story) -> str | None:
    """Why the headers say a machine sent this (RFC 3834, RFC 2369, DSNs), or None."""
    headers = [(name, value.strip().lower()) for name, value in story.headers]
    for name, value in headers:
        if name == "auto-submitted" and value.split(";")[0].strip() not in ("", "no"):
            return "auto_submitted"
        if name == "precedence" and value in ("bulk", "list", "junk"):
            return "bulk"
        if name.startswith("list-"):
            return "list_mail"
        if name in ("x-autoreply", "x-autorespond"):
            return "auto_submitted"
        if name == "content-type" and value.startswith("multipart/report"):
            return "bounce"
        if name == "return-path" and value in ("<>", ""):
            return "null_sender"
    local = story.sender.address.rpartition("@")[0]
    if local and _SYSTEM_SENDER.match(local):
        return "system_sender"
    return None


WEAK_HIT = 0.5  # what one weak evidence phrase counts for, against a full one


def combine(model_score: float | None, hits: float, weight: float, saturation: float) -> float:
    """A theme's final score from the classifier's probability and the count of evidence hits.

    Evidence saturates (``1 - exp(-hits / saturation)``), so one passing mention adds little and
    several distinct mentions add nearly their full share. A theme the classifier was never
    trained on (added in themes.toml without examples) is scored on evidence alone.
    """
    evidence = 1.0 - math.exp(-hits / saturation) if hits else 0.0
    if model_score is None:
        return round(evidence, 4)
    return round(weight * model_score + (1.0 - weight) * evidence, 4)


def review_reasons(
    kind: str,
    kind_confidence: float,
    scores: Mapping[str, float],
    thresholds: Mapping[str, float],
    words: int,
    settings: TagSettings,
    defects: Iterable[str] = (),
) -> tuple[str, ...]:
    """Why a person should look at this story before trusting the tags (empty: no need)."""
    reasons = []
    if kind != AUTOMATED and kind_confidence < settings.kind_confidence:
        reasons.append("uncertain_kind")
    if kind == STORY:
        if words < settings.min_words:
            reasons.append("short_text")
        if not any(scores[t] >= thresholds[t] for t in scores):
            reasons.append("no_theme")
        if any(abs(scores[t] - thresholds[t]) < settings.review_margin for t in scores):
            reasons.append("low_confidence")
    if "too_large" in defects:
        reasons.append("too_large")
    return tuple(reasons)
