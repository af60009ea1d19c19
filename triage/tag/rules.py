"""Tag stage, the pure half: theme vocabulary, header rules and how scores combine. Stdlib only.

The vocabulary comes from ``config/themes.toml`` (data, not code); ``triage.tag.tagger``
turns it into spaCy matchers. Everything here is a plain function of plain values, so it is tested
without
spaCy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from intake.records import Kind, Story

STORY = Kind.STORY
AUTOMATED = Kind.AUTOMATED
WITHDRAWAL = Kind.WITHDRAWAL
AMEND = Kind.AMEND
# Review reasons that mark a withdrawal as a guess: read by the classifier alone, or asked in a
# message that also tells a story. Such a withdrawal is never acted on by itself.
BY_CLASSIFIER = "withdrawal_by_classifier"
MIXED_REQUEST = "mixed_request"
GUESSED = (BY_CLASSIFIER, MIXED_REQUEST)

# Header names and sender local parts that only machines and list servers use (RFC 3834
# section 2, RFC 2369, and what Sieve vacation skips).
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-ms-exchange-generated-message-source")
_LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post", "list-help", "list-subscribe",
                 "list-owner", "list-archive")  # fmt: skip
_SYSTEM_NAMES = frozenset(("postmaster", "listserv", "majordomo", "bounce", "bounces"))
_SYSTEM_PREFIXES = ("mailerdaemon", "noreply", "donotreply")  # "no-reply-aws", "noreply-dmarc"
_SEPARATORS = str.maketrans("", "", "-_.")


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
class AgencySpec:
    """An agency recognised in a story ([agencies.NAME]): its phrases and token patterns."""

    name: str
    description: str = ""
    terms: tuple[str, ...] = ()
    patterns: tuple[tuple[Mapping[str, Any], ...], ...] = ()


@dataclass(frozen=True, slots=True)
class TagSettings:
    """``config/themes.toml``: the vocabulary and the knobs of the tagger."""

    themes: tuple[ThemeSpec, ...]
    requests: tuple[RequestSpec, ...] = ()
    agencies: tuple[AgencySpec, ...] = ()
    automated_terms: tuple[str, ...] = ()
    min_words: int = 15
    review_margin: float = 0.08
    model_weight: float = 0.5
    evidence_saturation: float = 4.0
    kind_confidence: float = 0.6
    seed: int = 0
    epochs: int = 20
    theme_epochs: int = 4
    data_dir: str = "triage/tag/data"
    model_dir: str = "var/model"

    @property
    def theme_names(self) -> tuple[str, ...]:
        """The themes, in the order the file lists them."""
        return tuple(t.name for t in self.themes)


def automated_reason(story: Story) -> str | None:
    """Why the headers or the sender say a machine sent this (RFC 3834, RFC 2369, DSNs).

    ``suppressed_by_sender`` is left out: "do not auto-reply to me" says nothing about whether
    a person wrote the message.
    """
    reason = header_reason(story.headers)
    if reason and reason != "suppressed_by_sender":
        return reason
    return "system_sender" if is_system_sender(story.sender.address) else None


def header_reason(headers: Iterable[tuple[str, str]]) -> str | None:
    """The first header rule that says a machine or a list sent this message, or None.

    ``headers`` are (lower-case name, value) pairs, every instance kept (``Story.headers``).
    """
    pairs = [(name.lower(), value.strip().lower()) for name, value in headers]
    for code, rule in _HEADER_RULES:
        if any(rule(name, value) for name, value in pairs):
            return code
    return None


def _is_auto_submitted(name: str, value: str) -> bool:
    # RFC 3834 5.1: anything but "no" (parameters after ';' ignored) marks an automatic message.
    if name == "auto-submitted":
        return value.split(";")[0].strip() != "no"
    if name == "x-apple-action":  # iCloud's vacation responder sends no Auto-Submitted
        return value == "vacation"
    return name in _AUTO_HEADERS


def _is_bulk(name: str, value: str) -> bool:
    return name == "precedence" and value.split(";")[0].strip() in ("bulk", "list", "junk")


def _is_suppressed(name: str, value: str) -> bool:
    # Microsoft's X-Auto-Response-Suppress: the sender asks for no out-of-office/auto-reply.
    if name != "x-auto-response-suppress":
        return False
    return bool({v.strip() for v in value.split(",")} & {"all", "oof", "autoreply"})


def _is_null_sender(name: str, value: str) -> bool:
    return name == "return-path" and "".join(value.split()) in ("<>", "")


def _is_report(name: str, value: str) -> bool:
    return name == "content-type" and value.split(";")[0].strip() == "multipart/report"


_HEADER_RULES: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    ("auto_submitted", _is_auto_submitted), ("bulk", _is_bulk),
    ("list_mail", lambda name, _: name in _LIST_HEADERS), ("suppressed_by_sender", _is_suppressed),
    ("null_sender", _is_null_sender), ("bounce", _is_report),
)  # fmt: skip


def is_system_sender(address: str) -> bool:
    """True when the local part is one only machines and list servers send from.

    A bare local part counts too: sendmail writes ``From: Mail Delivery Subsystem <MAILER-DAEMON>``.
    """
    local = (address.rpartition("@")[0] if "@" in address else address).lower()
    if not local:
        return False
    if local.startswith("owner-") or local.endswith("-request"):
        return True
    # "bounces+tag", "bounce-verp-string", "no_reply", "do-not-reply", "MAILER-DAEMON".
    base = re.split(r"[+=]", local, maxsplit=1)[0].translate(_SEPARATORS)
    if base in _SYSTEM_NAMES or base.startswith(_SYSTEM_PREFIXES):
        return True
    return re.match(r"bounces?[-_.+=]", local) is not None


def is_guessed(review_reasons: Iterable[str]) -> bool:
    """Whether a request's kind is a guess a person must confirm (see :data:`GUESSED`)."""
    return any(reason in GUESSED for reason in review_reasons)


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


# Defects that mean the text read is not the whole message as sent: a person reads the rest.
REVIEW_DEFECTS = ("too_large", "html_flattened", "html_without_text", "empty_after_cleaning",
                  "truncated_for_tagging")  # fmt: skip


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
    reasons += [d for d in REVIEW_DEFECTS if d in defects]
    return tuple(reasons)
