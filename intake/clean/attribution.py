"""Attribution lines above quoted history: "On <date>, <name> wrote:" in any language.

Pure and stdlib-only, called by `intake.clean.heads` and `intake.clean.body`. The words come
from `intake.clean.labels`; here are the shapes: an opener or a date first, a verb (or, verbless,
an address and a colon) last, possibly wrapped over a few lines, with evidence that it heads mail.
"""

from __future__ import annotations

import re

from intake.clean import labels
from intake.clean import patterns as p

_MAX_ATTRIBUTION = 400  # characters in a (wrapped) "On … wrote:" span
_ATTRIBUTION_LINES = 5  # lines one may span: Gmail wraps long names and addresses
_NAMED_WORDS = 6  # "Jane Doe wrote:", "Jane van der Berg a écrit :"

# Words that open an attribution: "On …", "Am …", "Le …", "W dniu …", "--- On …".
ATTRIBUTION_OPENER = re.compile(
    r"[-*\s]{0,8}(?:" + p.alternation(labels.phrases("openers")) + r")(?:\s|$)", re.IGNORECASE
)
# The verb that ends an attribution, compared as the last word ("… a écrit :", "… napisał(a):").
ATTRIBUTION_VERBS = frozenset(labels.phrases("verbs"))
# German, Dutch and Nordic clients may put the verb first: "X <x@y> schrieb am Fr., 28. Apr. …:".
VERBS_FIRST = labels.phrases("verbs_first")
ATTRIBUTION_VERB_FIRST = re.compile(
    r"(?:^|\s)(?:" + "|".join(VERBS_FIRST) + r")\s.{0,250}[:：]\s*$", re.IGNORECASE
)
# Gmail's verbless forms: "2016-03-03 17:21 GMT+01:00 Name" and "2013/7/20 Name <a@example.org>".
GMAIL_GMT_LINE = re.compile(r"\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2} GMT[+-]\d{1,2}:\d{2}\b")
GMAIL_DATE_EMAIL_LINE = re.compile(
    r"\d{4}[/.-]\d{1,2}[/.-]\d{1,2}\s.{0,200}<[^<>\s@]{1,100}@[^<>\s]{1,200}>\s*:?\s*$"
)
# Typographic angle quotes around an address ("‹x@y›") read as the ASCII ones.
_ANGLES = str.maketrans("‹›", "<>")
# A head that starts with a date, maybe after a weekday: "30.09.2017, …", "сб, 30 сент. …".
DATED_HEAD = re.compile(r"[\W_]{0,3}(?:[^\W\d_]{1,12}\.?,?\s{1,2})?\d")
ENDS_WITH_ADDRESS = re.compile(r"[<(\[][^\s<>()@]{1,64}@[^\s<>()]{1,255}[>)\]]\s*$")
TIME = re.compile(r"\b\d{1,2}[:.]\d{2}\b")
# No verb at all: a dated head, a time, then a name and an address and a colon (Gmail in some
# languages): "30.09.2017, 18.30, "Name" <a@b>:" or "ср, 30 апр. 2025 г. в 15:19, Name <a@b>:".
VERBLESS_ATTRIBUTION = re.compile(
    r"[\W_]{0,3}(?:[^\W\d_]{1,12}\.?,?\s{1,2})?\d[^<>]{0,80}?"
    + TIME.pattern
    + r"[^<>@]{0,160}[<(][^\s<>()@]{1,64}@[^\s<>()]{1,255}[>)]\s*[:：]\s*$"
)
# A date in figures and a time: "18/01/2021 11:32", "2021-01-18 11:32", "18.01.2021, 11.32".
NUMERIC_DATE_TIME = re.compile(
    r"\b\d{1,4}[./-]\d{1,2}[./-]\d{2,4},?\s{1,3}(?:\D{1,8}\s)?\d{1,2}[:.]\d{2}\b"
)
ATTRIBUTION_CHAR = re.compile(r"[0-9<@‹]")  # a date, time or address: every attribution has one
PROSE_BREAK = re.compile(r"[a-z]{2}[.!?] +[A-Z]")  # "… might be it. Regretfully …"


def ends_attribution(span: str) -> bool:
    """ "… wrote:" / "… wrote ----" / a dated "On … wrote", a verb-first "… schrieb am <date> um
    11:53 Uhr:", or a verbless dated head ending in an address: "30.09.2017, 18:30, X <x@y>:"."""
    span = span.translate(_ANGLES)
    tail = span.rstrip(" \t\u00a0-")
    colon = tail.endswith((":", "："))
    marked = colon or len(span) - len(tail) >= 2  # "… wrote:" or "… wrote ----"
    words = tail.rstrip(" \t\u00a0:：").rsplit(None, 1)
    last = words[-1].casefold() if words else ""
    if last in ATTRIBUTION_VERBS or last.strip("\"'<>()") in ATTRIBUTION_VERBS:
        # Without the colon only a head that opens like one may end at the verb.
        return marked or is_dated_head(span)
    if last.endswith(("写道", "寫道")):
        return True
    if not colon and not (ENDS_WITH_ADDRESS.search(tail) and is_dated_head(span)):
        return False
    folded = span[-280:].casefold()
    verb_first = ATTRIBUTION_VERB_FIRST.search(span[-280:] + ("" if colon else ":"))
    if any(verb in folded for verb in VERBS_FIRST) and verb_first is not None:
        return True
    return colon and VERBLESS_ATTRIBUTION.match(span) is not None


def is_dated_head(span: str) -> bool:
    """Opens like an attribution: "On …", "Le …", a date ("30.09.2017, …"), or a weekday
    and a date ("Sat, 30 …")."""
    return bool(ATTRIBUTION_OPENER.match(span) or DATED_HEAD.match(span))


def attribution_end(lines: list[str], i: int) -> int | None:
    """End of an "On <date>, <name> wrote:" line, possibly wrapped, starting at line i."""
    first = lines[i].strip()
    if not first or len(first) > _MAX_ATTRIBUTION:
        return None
    if not ATTRIBUTION_CHAR.search(first):
        named = first[-1] in ":：" and _named_attribution(first, lines, i + 1)
        return i + 1 if named else None
    if PROSE_BREAK.search(first):
        return None
    if GMAIL_GMT_LINE.match(first) or GMAIL_DATE_EMAIL_LINE.match(first):
        return i + 1
    opener = ATTRIBUTION_OPENER.match(first) is not None
    # Without "On/Am/Le …" only a head that starts with a date or holds an address may wrap,
    # and only an opener may wrap across a blank line (Gmail: "On …\n\n<\nmailto:…\n> wrote:").
    may_wrap = opener or first[:1].isdigit() or "<" in first or "‹" in first or "@" in first
    parts: list[str] = []
    blanks = 0
    for j in range(i, min(i + _ATTRIBUTION_LINES, len(lines))):
        line = lines[j].strip()
        if not line:
            blanks += 1
            if blanks > 1 or not opener:
                return None
            continue
        if parts and (not may_wrap or p.ends_sentence(parts[-1])):
            return None  # a finished sentence is story text, not a wrapped attribution
        parts.append(line)
        span = " ".join(parts)
        if len(span) > _MAX_ATTRIBUTION:
            return None
        if ends_attribution(span):
            return j + 1 if _attribution_evidence(span, lines, j + 1) else None
    return None


def _named_attribution(line: str, lines: list[str], after: int) -> bool:
    """ "Jane Doe wrote:" with neither date nor address: only right above quote marks."""
    if not line.endswith((":", "：")) or len(line.split()) > _NAMED_WORDS:
        return False
    return ends_attribution(line) and after < len(lines) and p.is_quote(lines[after])


def _attribution_evidence(span: str, lines: list[str], after: int) -> bool:
    """An address, a numeric date and time ("18/01/2021 11:32"), or quote marks below:
    "On 3 May, at 10:30, the GP wrote:" may be a story."""
    if p.EMAIL.search(span) or NUMERIC_DATE_TIME.search(span):
        return True
    k = p.skip_blank(lines, after)
    return k < len(lines) and p.is_quote(lines[k])
