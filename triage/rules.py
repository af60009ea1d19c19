"""Tag stage, the pure half: theme vocabulary, header rules and how scores combine. Stdlib only.

The vocabulary comes from ``config/themes.toml`` (data, not code); ``triage.tag`` turns it into
spaCy matchers. Everything here is a plain function of plain values, so it is tested without
spaCy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from intake.records import Story

STORY = "story"
AUTOMATED = "automated"
WITHDRAWAL = "request:withdrawal"

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
class TagSettings:
    """``config/themes.toml``: the vocabulary and the knobs of the tagger."""

    themes: tuple[ThemeSpec, ...]
    requests: tuple[RequestSpec, ...] = ()
    automated_terms: tuple[str, ...] = ()
    min_words: int = 15
    review_margin: float = 0.08
    model_weight: float = 0.5
    evidence_saturation: float = 4.0
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


# Withdrawal phrases (themes.toml [requests.withdrawal]) also turn up in stories: "the GP had
# deleted my referral", "they made them take it down", "please don't delete my story", the
# disclaimer's "if you are not the intended recipient ... delete it". A phrase is a request to us
# only when the words around it say so; these are the closed-class words read for that.
NEGATION_WORDS = 6  # how far back in its clause a negator still governs a phrase
_NEGATORS = frozenset(("not", "never", "no", "nt", "without"))
# Just before a phrase, or inside one ("it was cancelled"), these make it a report.
_NARRATIVE = frozenset(("was", "were", "been", "being", "had", "has", "did", "got", "gets"))
_THIRD_PARTY = frozenset(("he", "she", "they", "them", "him", "who", "which", "someone",
                          "somebody", "nobody", "everyone", "everybody", "people"))  # fmt: skip
_SUBJECTS = _THIRD_PARTY | {"i", "we", "it"}
_SECOND_PERSON = frozenset(("you", "u", "ye", "ya"))
_DETERMINERS = frozenset(("my", "the", "this", "that", "his", "her", "our", "their", "your", "a"))
_AUXILIARIES = frozenset(("do", "does", "did", "would", "could", "should", "will", "wo", "ca",
                          "can", "must", "might", "may", "'d", "am", "is", "are", "'m",
                          "'re"))  # fmt: skip
_ADVERBS = frozenset(("just", "then", "also", "already", "finally", "eventually", "quickly",
                      "simply", "actually", "even", "all", "completely", "really"))  # fmt: skip
_CONJUNCTIONS = frozenset(("and", "or", "but", "so", "then", "because", "if", "when", "though",
                           "although", "while", "once"))  # fmt: skip
_IRREGULAR_PAST = frozenset(("withdrew", "took", "forgot", "struck", "drew", "threw", "wrote",
                             "got", "went", "tore", "undid", "wanted", "left", "kept", "made",
                             "did", "withdrawn", "taken", "forgotten", "written", "gone",
                             "done"))  # fmt: skip
# "asked them to delete it" asks someone else; "had to delete it" tells what happened.
_BEFORE_TO = _THIRD_PARTY | {"her", "had", "used", "tried", "managed", "able", "forced"}
# A sentence with one of these words speaks to us ("please", "could you", "I'd rather").
_ADDRESSED = frozenset(("please", "pls", "plz", "kindly", "you", "your", "u", "ye", "ya", "'d",
                        "would", "want", "wish", "ask", "asking", "request", "rather", "prefer",
                        "grateful", "withdraw", "withdrawing"))  # fmt: skip
# Words that may come before an imperative at the start of its sentence ("So, delete it").
_OPENERS = frozenset(("so", "and", "but", "anyway", "just", "now", "ok", "okay", "oh", "also",
                      "then", "actually", "sorry", "hi", "hello", "re"))  # fmt: skip
# A sentence matching this is a disclaimer ("If you are not the intended recipient ... delete it").
_DISCLAIMER = re.compile(r"intended recipient|named recipient|not the recipient|addressee|"
                         r"received this|(?:received|reached you)\W+(?:\w+\W+){0,3}in error")
_CONTRACTIONS = {"dont": "do not", "didnt": "did not", "doesnt": "does not", "cant": "ca not",
                 "wont": "wo not", "wouldnt": "would not", "couldnt": "could not",
                 "wasnt": "was not", "isnt": "is not", "havent": "have not", "hadnt": "had not",
                 "hasnt": "has not", "shouldnt": "should not", "im": "i 'm",
                 "id": "i 'd"}  # fmt: skip
# Mail is hard-wrapped: a line break alone ends nothing, a blank line ends a paragraph.
_SENTENCE_END = re.compile(r"[.!?]|\n\s*\n")
_CLAUSE_END = re.compile(r"[.!?;:,()\"“”–—]|\n\s*\n|\s-+\s")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|'[a-z]+")


def words_of(text: str) -> list[str]:
    """Lower-case words with contractions split: "didn't" -> did, not; "I'd" -> i, 'd."""
    text = text.lower().replace("’", "'").replace("n't", " not")
    text = re.sub(r"(?<=[a-z])'(d|m|re|ll|s|ve)\b", r" '\1", text)
    found = []
    for word in _WORD.findall(text):
        found += _CONTRACTIONS.get(word, word).split()
    return found


def reads_as_request(text: str, start: int, end: int) -> bool:
    """Whether the withdrawal phrase ``text[start:end]`` asks for something rather than tells
    of it: not negated ("please don't delete my story"), not narrative ("the GP had deleted my
    referral", "it was cancelled", "made them take it down"), not in a disclaimer."""
    phrase = words_of(text[start:end])
    if _DISCLAIMER.search(" ".join(_sentence(text, start).lower().split())):
        return False
    if not phrase:  # punctuation alone: nothing to read it by
        return True
    whole = words_of(text[_last_match_end(_CLAUSE_END, text, start) : start])
    clause = whole[max((i + 1 for i, w in enumerate(whole) if w in _CONJUNCTIONS), default=0) :]
    if phrase[0] in _NEGATORS:  # "don't use it": who does not, and in which tense
        return _negated_request(clause, phrase)
    if _NEGATORS & set(clause[-NEGATION_WORDS:]):  # "please don't delete it", "not withdrawing"
        return False
    if phrase[0] == "rather":  # "I'd rather it didn't go in": a wish, whatever the tense
        return True
    if "address" in phrase[-2:] or words_of(text[end : end + 12])[:1] == ["address"]:
        return False  # "remove my email address", "take my email address off": mailing lists
    inside = phrase[1:-1]
    if _NARRATIVE & set(inside) or any(w in _CONJUNCTIONS and _is_past(n)
                                       for w, n in zip(inside, phrase[2:], strict=False)):
        return False  # "it was cancelled", "I tidied it up and taken out ..."
    if len(phrase) > 2 and phrase[-2] in _SUBJECTS and _is_past(phrase[-1]):
        return False  # "the photos I deleted"
    previous = [w for w in clause if w not in _ADVERBS]
    before, earlier = ([""] * 2 + previous)[-1], ([""] * 2 + previous)[-2]
    if _is_past(phrase[0]) and not _past_request(phrase, whole, before, earlier):
        return False  # "the police took it down", "they've withdrawn officers"
    if before in _NARRATIVE and earlier not in _SECOND_PERSON | {"have", "'ve"}:
        return False  # "had deleted", "did delete"; not "I've had second thoughts"
    return not (before in _THIRD_PARTY or (before == "to" and earlier in _BEFORE_TO))


def addressed_to_us(text: str, start: int, end: int) -> bool:
    """Whether the sentence holding the phrase ``text[start:end]`` speaks to us: it asks
    ("please", "could you", "I'd rather") or begins with the phrase, a verb (an imperative:
    "Delete it.", not "I wanted out of that marriage")."""
    if _ADDRESSED & set(words_of(_sentence(text, start))):
        return True
    lead = words_of(text[_last_match_end(_SENTENCE_END, text, start) : start])
    phrase = words_of(text[start:end])
    return (bool(phrase) and all(w in _OPENERS for w in lead)
            and phrase[0] not in _SUBJECTS | _DETERMINERS and not _is_past(phrase[0]))  # fmt: skip


def _past_request(phrase: list[str], clause: list[str], before: str, earlier: str) -> bool:
    # A past form asks only with "you" in its clause ("if you wouldn't use it and deleted it"),
    # after "be" ("that it be removed") or "I/we have" ("I've withdrawn my consent"), or when
    # it names us ("taken out of your campaign").
    perfect = before in ("have", "'ve") and earlier in _SECOND_PERSON | {"i", "we", ""}
    return before == "be" or perfect or bool(_SECOND_PERSON & set(clause + phrase)) or (
        "your" in phrase
    )


def _negated_request(clause: list[str], phrase: list[str]) -> bool:
    # "I'd rather you didn't use it", "he doesn't want it used": requests.
    # "they didn't use it", "I didn't consent", "my mum doesn't use email": reports.
    helpers = list(clause)
    while helpers and helpers[-1] in _AUXILIARIES | _ADVERBS:
        helpers.pop()
    subject = helpers[-1] if helpers else ""
    tense = next((w for w in reversed(clause) if w in _AUXILIARIES | _NARRATIVE), "")
    if tense in _NARRATIVE and subject not in _SECOND_PERSON:
        return False
    wish = bool({"want", "wish", "like"} & set(phrase))
    return wish or (tense != "does" and subject not in _THIRD_PARTY)


def _sentence(text: str, at: int) -> str:
    found = _SENTENCE_END.search(text, at)
    return text[_last_match_end(_SENTENCE_END, text, at) : found.end() if found else len(text)]


def _is_past(word: str) -> bool:
    """A past tense or participle ("deleted", "took", "withdrawn"), not "need" or "bed"."""
    return word in _IRREGULAR_PAST or (word.endswith("ed") and len(word) > 4)


def _last_match_end(pattern: re.Pattern[str], text: str, before: int) -> int:
    end = 0
    for match in pattern.finditer(text, 0, before):
        end = match.end()
    return end
