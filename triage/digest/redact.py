"""Digest stage, redaction of excerpts: identifiers become placeholders. May import re2.

The digest quotes short excerpts of stories so the team gets the gist without the identifiers.
``redact`` swaps phone, NHS and National Insurance numbers, postcodes, email addresses, cued
dates of birth and the sender's own names for placeholders such as ``[phone]``. The digest
leaves an excerpt out when ``redact`` raises ``RedactionError``: a failure hides text rather
than leaking it.

People and mail clients write identifiers in many ways ("07700 900 123" with an en-dash,
full-width digits, a zero-width space inside a number, "jane(at)example.org"), so matching runs
on normalised copies of the text (``triage.digest.textmap``) with the RE2 patterns of
``triage.digest.identifiers``, and every match is mapped back to the text as typed. ``redactions``
gives those spans of the original; ``redact`` replaces them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import re2

from triage.digest.identifiers import EMAILS, MARKS, NOT_LOCAL_PARTS, NUMBERS, words
from triage.digest.textmap import TextMap, fold, unify_gaps, zeros_for_os

NAME = "[name]"
PLACEHOLDERS: Mapping[str, str] = {
    "email": "[email]",
    "dob": "[date of birth]",
    "phone": "[phone]",
    "nhs": "[NHS number]",
    "ni": "[NI number]",
    "postcode": "[postcode]",
}
_CUED = {"ni_cued": "ni"}  # a cued kind's group, and the kind it is
_NO_MARKS = dict.fromkeys(map(ord, MARKS))  # str.translate deletes what maps to None


class RedactionError(Exception):
    """The text could not be redacted; the caller must not show it."""


@dataclass(frozen=True, slots=True)
class Redaction:
    """``text[start:end]`` of the original text is to be shown as ``placeholder``."""

    start: int
    end: int
    placeholder: str


def redact(text: str, names: Sequence[str] = ()) -> str:
    """Replace personal identifiers in text with placeholders like [phone], [NHS number],
    [NI number], [postcode], [email], [date of birth], [name].

    ``names`` are the sender's own names; each word of two or more letters in them is redacted
    wherever it stands as a whole word, ignoring case, accents, full-width forms and zero-width
    characters. Raises ``RedactionError`` instead of returning text that might still hold an
    identifier.
    """
    pieces: list[str] = []
    done = 0
    for span in redactions(text, names):
        pieces += (text[done : span.start], span.placeholder)
        done = span.end
    pieces.append(text[done:])
    return "".join(pieces)


def redactions(text: str, names: Sequence[str] = ()) -> tuple[Redaction, ...]:
    """Where ``text`` holds identifiers, as spans of ``text`` itself: sorted, not overlapping.

    Matching runs on normalised copies of the text and each match is mapped back, so the
    spans cover the characters exactly as typed (zero-width spaces and all).
    Raises ``RedactionError`` like ``redact``.
    """
    try:
        folded = fold(text)  # emails and names: the dots and digits in an address stay as typed
        numbers = unify_gaps(zeros_for_os(folded))
        found = [*_numbers(numbers), *_emails(folded), *_names(folded, names)]
    except (re2.error, UnicodeError) as err:
        # RE2 reports its failures (for instance memory limits) as re2.error; text that is not
        # valid Unicode (lone surrogates from a mis-decoded message) cannot be encoded for it.
        # The message names only the error type: the text itself must not reach logs.
        raise RedactionError(f"cannot redact text ({type(err).__name__})") from err
    return _merge(found)


def _numbers(view: TextMap) -> Iterator[Redaction]:
    """Phone, NHS and NI numbers, postcodes and cued dates of birth in ``view``."""
    for match in NUMBERS.finditer(view.text):
        kind = str(match.lastgroup)
        if kind == "keep":
            continue
        # After a cue only what follows it goes: the excerpt still reads "born on [date...]".
        start, end = match.span(NUMBERS.groupindex[kind])
        yield Redaction(*view.origin(start, end), PLACEHOLDERS[_CUED.get(kind, kind)])


def _emails(view: TextMap) -> Iterator[Redaction]:
    """Email addresses in ``view``, however "@" and the dots are written."""
    local = EMAILS.groupindex["bare_local"]
    domain = EMAILS.groupindex["bare_domain"]
    for match in EMAILS.finditer(view.text):
        if match.group(local) is not None and (
            match.group(local).casefold() in NOT_LOCAL_PARTS
            or match.group(domain).casefold().startswith("www.")
        ):
            continue  # "a look at nhs.uk", "me at www.example.org"
        yield Redaction(*view.origin(*match.span()), PLACEHOLDERS["email"])


def _names(view: TextMap, names: Sequence[str]) -> Iterator[Redaction]:
    """Every whole word of ``view`` that is one of the sender's names."""
    parts = _name_parts(names)
    if not parts:
        return
    for start, end in words(view.text):
        if _fold(view.text[start:end]) in parts:
            yield Redaction(*view.origin(start, end), NAME)


def _merge(found: list[Redaction]) -> tuple[Redaction, ...]:
    """Overlapping spans joined: a name inside an address is part of the [email]."""
    merged: list[Redaction] = []
    for span in sorted(found, key=lambda s: (s.start, s.placeholder == NAME, -s.end)):
        last = merged[-1] if merged else None
        if last is None or span.start >= last.end:
            merged.append(span)
        elif span.end > last.end:
            keep = last.placeholder if last.placeholder != NAME else span.placeholder
            merged[-1] = Redaction(last.start, span.end, keep)
    return tuple(merged)


def _name_parts(names: Sequence[str]) -> frozenset[str]:
    """The folded words of ``names``; a bare string is one name, not a sequence of letters."""
    if isinstance(names, str):
        names = (names,)
    for name in names:
        name.encode("utf-8")  # a lone surrogate raises here, as it would reaching RE2
    folded = [fold(name).text for name in names]
    spans = ((name, start, end) for name in folded for start, end in words(name))
    return frozenset(_fold(name[start:end]) for name, start, end in spans if end - start >= 2)


def _fold(word: str) -> str:
    """Compare names ignoring case, accents and normalisation form ("Zoë", "ZOE", "Zoe" + ¨)."""
    return unicodedata.normalize("NFKD", word.casefold()).translate(_NO_MARKS)
