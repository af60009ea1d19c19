"""Digest stage, redaction of excerpts: identifiers become placeholders. May import re2.

The digest quotes short excerpts of stories so the team gets the gist without the identifiers.
``redact`` swaps phone, NHS and National Insurance numbers, postcodes, email addresses, cued
dates of birth and the sender's own names for placeholders such as ``[phone]``. The digest
leaves an excerpt out when ``redact`` raises ``RedactionError``: a failure hides text rather
than leaking it.

Stories are untrusted input, so the patterns run on RE2 (google-re2), whose matching time is
linear in the input: no message can stall the digest with catastrophic backtracking. RE2 has no
lookaround and no backreferences, so boundaries are ``\\b`` (ASCII word boundaries) and the
formats are spelled out as explicit alternatives.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import re2

NAME = "[name]"
PLACEHOLDERS: Mapping[str, str] = {
    "email": "[email]",
    "dob": "[date of birth]",
    "phone": "[phone]",
    "nhs": "[NHS number]",
    "ni": "[NI number]",
    "postcode": "[postcode]",
}

# Separators inside phone numbers: "07700 900123", "07700-900-123", "020.7946.0958".
_SEP = r"[ .\x{a0}-]?"


def _national_number(area_end: str) -> str:
    """A pattern for the 9 or 10 digits after the 0 or +44, the area code ending in ``area_end``.

    It lists the groupings the UK writes, instead of allowing a separator between any two digits,
    so that dotted dates and times ("03.04.2024 10.30") do not read as phone numbers.
    """
    return (
        r"[1-9](?:\d{3}" + area_end + r"(?:\d{5,6}|\d{3}" + _SEP + r"\d{3})"  # 07700 900 123
        r"|\d{2}" + area_end + r"(?:\d{6,7}|\d{3}" + _SEP + r"\d{4})"  # 0113 496 0000
        r"|\d{4}" + area_end + r"\d{4,5}"  # 016977 4321
        r"|\d" + area_end + r"(?:\d{8}|\d{4}" + _SEP + r"\d{4}))"  # 020 7946 0958
    )


# Short service numbers (999, 111, 116 123) have no leading 0 or +44, so they stay. A bracket
# before the 0 must close after the area code, so "(07700 900123)" keeps its own brackets.
_PHONE_PREFIX = r"(?:(?:\+ ?|\b00)44" + _SEP + r"(?:\(0\)" + _SEP + r")?|\b0)"  # +44 (0), 0044, 0
_PHONE = _PHONE_PREFIX + _national_number(_SEP) + r"\b|\(0" + _national_number(r"\) ?") + r"\b"
# Any 3-3-4 digit run: the checksum is not checked, as a mistyped NHS number still identifies.
_NHS = r"\b\d{3}[ -]?\d{3}[ -]?\d{4}\b"
# Any two letters (QQ is the documented example prefix), six digits, suffix A-D.
_NI = r"\b[a-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[a-d]\b"
# The full postcode grammar: which letters each position may hold rules out most ordinary words.
_POSTCODE = (
    r"\b(?:[a-pr-uwyz](?:\d{1,2}|\d[a-hjkpstuw]|[a-hk-y]\d{1,2}|[a-hk-y]\d[abehmnprv-y])"
    r"[ \x{a0}]?\d[abd-hjlnp-uw-z]{2}|gir ?0aa)\b"
)
# No quotes, brackets or separators, so "<jane@example.org>," loses only the address.
_EMAIL_LABEL = r"[^\s@<>()\[\]{},;:\".]+"
_EMAIL = r"[^\s@<>()\[\]{},;:\"]+@" + _EMAIL_LABEL + r"(?:\." + _EMAIL_LABEL + r")+"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
# A date is only a date of birth after a cue; dates of events must survive.
_DOB_CUE = (
    r"\b(?:dob|d\. ?o\. ?b\.?|date\s+of\s+birth|born(?:\s+(?:on|in))?(?:\s+the)?|b\.)"
    r"(?:\s{0,3}(?:is\s+|[:=-]))?\s{0,3}"
)
_DOB_DATE = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})"  # 03/04/1951, 3.4.51
    r"|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"  # 1951-04-03
    r"|" + _DAY + r"(?:\s+of)?\s+" + _MONTH + r"(?:,?\s+\d{4})?"  # 3rd of April 1951
    r"|" + _MONTH + r"\s+" + _DAY + r"(?:,?\s+\d{4})?"  # April 3rd, 1951
    r"|" + _MONTH + r"\s+\d{4}"  # April 1951
    r"|(?:19|20)\d{2})\b"  # 1951
)
# One pass, one alternative per kind. Where two could start at the same place the earlier wins:
# an email before the digits in it, a cue before the date, a phone before an NHS number.
_IDENTIFIERS = re2.compile(
    r"(?i)(?P<email>" + _EMAIL + r")"
    r"|(?P<dob_cue>" + _DOB_CUE + r")(?P<dob>" + _DOB_DATE + r")"
    r"|(?P<phone>" + _PHONE + r")|(?P<nhs>" + _NHS + r")"
    r"|(?P<ni>" + _NI + r")|(?P<postcode>" + _POSTCODE + r")"
)
# Letters only, in any script: RE2's \b knows only ASCII, and "Zoë" must match as a whole word.
# Apostrophes and hyphens split words, so "Jane's" yields "Jane".
_WORD = re2.compile(r"[\pL\pM]+")


class RedactionError(Exception):
    """The text could not be redacted; the caller must not show it."""


def redact(text: str, names: Sequence[str] = ()) -> str:
    """Replace personal identifiers in text with placeholders like [phone], [NHS number],
    [NI number], [postcode], [email], [date of birth], [name].

    ``names`` are the sender's own names; each word of two or more letters in them is redacted
    wherever it stands as a whole word, ignoring case. Raises ``RedactionError`` instead of
    returning text that might still hold an identifier.
    """
    try:
        parts = _name_parts(names)
        pieces: list[str] = []
        end = 0
        for match in _IDENTIFIERS.finditer(text):
            pieces.append(_redact_names(text[end : match.start()], parts))
            pieces.append(_placeholder(match))
            end = match.end()
        pieces.append(_redact_names(text[end:], parts))
    except (re2.error, UnicodeError) as err:
        # RE2 reports its failures (for instance memory limits) as re2.error; text that is not
        # valid Unicode (lone surrogates from a mis-decoded message) cannot be encoded for it.
        # The message names only the error type: the text itself must not reach logs.
        raise RedactionError(f"cannot redact text ({type(err).__name__})") from err
    return "".join(pieces)


def _name_parts(names: Sequence[str]) -> frozenset[str]:
    """The folded words of ``names``; a bare string is one name, not a sequence of letters."""
    if isinstance(names, str):
        names = (names,)
    return frozenset(
        _fold(word) for name in names for word in _WORD.findall(name) if len(word) >= 2
    )


def _redact_names(text: str, parts: frozenset[str]) -> str:
    """``text`` with every whole word in ``parts`` replaced by ``[name]``."""
    if not parts or not text:
        return text
    return str(_WORD.sub(lambda word: NAME if _fold(word.group()) in parts else word.group(), text))


def _placeholder(match: Any) -> str:
    """The placeholder for an ``_IDENTIFIERS`` match (an untyped ``re2`` match object)."""
    if match.group("dob") is not None:
        # Keep the cue, so the excerpt still reads "born on [date of birth]".
        return str(match.group("dob_cue")) + PLACEHOLDERS["dob"]
    for kind, placeholder in PLACEHOLDERS.items():
        if match.group(kind) is not None:
            return placeholder
    raise RedactionError(f"unrecognised match: group {match.lastgroup!r}")


def _fold(word: str) -> str:
    """Compare names ignoring case and Unicode normalisation form (a typed "é" or "e" + accent)."""
    return unicodedata.normalize("NFC", word).casefold()
