"""Digest stage, redaction: the RE2 patterns for identifiers, by what they are. May import re2.

The patterns run on normalised copies of the text (``triage.digest.textmap``): NFKC, no invisible
characters, ASCII digits, and, for ``NUMBERS``, a letter O among digits read as zero and every
separator run between digit groups (or between a digit and a letter) made one space. So a
number's groups are written here as digits with an optional single space
between any two of them: "07700 900123", "07700-900-123", "077 009 001 23" and "07700 900 123"
typed with narrow no-break spaces all read "0 ?7 ?7 ...". A digit run is cut only where the
regex's ``\\b`` allows, and each kind fixes its digit count, so a longer run of groups is not
read as a shorter number.

RE2 (google-re2) matches in time linear in the input: no message can stall the digest with
catastrophic backtracking. RE2 has no lookaround and no backreferences, so boundaries are
``\\b`` (ASCII word boundaries) and formats are alternatives. Where two alternatives could
start at the same place the earlier wins: a cue before its date, a plain date or amount before
a phone or NHS number (so "03.04.2024 10.30" and "£1 500 000 000" stay), a phone before an NHS
number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

import re2


def _digits(count: int) -> str:
    """Exactly ``count`` digits, a space allowed between any two."""
    return r"\d(?: ?\d){" + str(count - 1) + "}"


def _digits_between(low: int, high: int) -> str:
    return r"\d(?: ?\d){" + f"{low - 1},{high - 1}" + "}"


# UK numbers have 9 or 10 digits after the trunk 0 or the country code 44. The first of them is
# never 0. Short service numbers (999, 111, 116 123) have neither, so they stay.
_NATIONAL = r"[1-9](?: ?\d){8,9}\b"
_PHONE_TRUNK = r"(?:\b0 ?|\(0\)[ -]?)" + _NATIONAL  # 07700 900123, 0 20 7946 0958, (0)20 …
# The area code in brackets: "(020) 7946 0958", "(01632) 960123", "(07700) 900123".
_PHONE_BRACKETED = "|".join(
    r"\(0\d{" + str(area) + r"}\)[ -]?" + _digits_between(9 - area, 10 - area) + r"\b"
    for area in (2, 3, 4, 5)
)
# +44, + 44, (+44), 0044, 00 44 or a bare 44; then (0), 0 or nothing: "+44 (0)20 7946 0958",
# "+44 07700 900123" (a common slip), "447700900123" (copied from a messaging app).
_COUNTRY = r"(?:\(\+ ?44\)|\+ ?44|\b00 ?44|\b44)[ .-]?(?:\(0\)[ .-]?|0 ?)?"
_PHONE = _PHONE_TRUNK + "|" + _PHONE_BRACKETED + "|" + _COUNTRY + _NATIONAL
# Ten digits in any grouping; the checksum is not checked, as a mistyped number still identifies.
_NHS = r"\b" + _digits(10) + r"\b|\(\d{3}\) ?" + _digits(7) + r"\b"  # (999) 123 4567
# Two letters (any: test numbers use prefixes never issued), six digits in any grouping, the
# suffix letter A-D. Without the suffix the digits must be grouped as NI numbers are (2-2-2,
# 3-3 or 6: not "IP 192.0.2.2") and the prefix capitals ("QQ 12 34 56"; "at 10 30 11" is a
# time), unless a cue comes first (``_NI_CUE``).
_NI_DIGITS = r"(?:\d{2} \d{2} \d{2}|\d{3} \d{3}|\d{6})"
_NI = (
    r"\b(?:[a-z]{2}|(?-i:[A-Z] [A-Z])) ?" + _digits(6) + r" ?[a-d]\b"
    r"|\b(?-i:[A-Z]{2}) ?" + _NI_DIGITS + r"\b"
)
# After a cue, an NI number in any case, with or without its suffix: "NI number: qq 12 34 56".
_NI_CUE = r"\b(?:ni|nino|national\s+insurance)(?:\s+(?:number|no\.?))?(?:\s{0,3}(?:is|:|-))?\s{0,3}"
_NI_CUED = r"[a-z]{2} ?" + _digits(6) + r"(?: ?[a-d])?\b"
# The full postcode grammar: which letters each position may hold rules out most ordinary words.
_POSTCODE = (
    r"\b(?:[a-pr-uwyz](?:\d{1,2}|\d[a-hjkpstuw]|[a-hk-y]\d{1,2}|[a-hk-y]\d[abehmnprv-y])"
    r" ?\d[abd-hjlnp-uw-z]{2}|gir ?0aa)\b"
)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:\d{4}|'\d{2})"
# A date is only a date of birth after a cue; dates of events must survive.
_WEEKDAY = r"(?:mon|tue|tues|wed|wednes|thu|thur|thurs|fri|sat|satur|sun)(?:day)?\.?,?\s+"
_DOB_CUE = (
    r"\b(?:dob|d\. ?o\. ?b\.?|d/o/b|date[\s-]+of[\s-]+birth|birth[\s-]?date|birthday"
    r"|born(?:\s+(?:on|in))?|b\.)(?:\s{0,3}(?:is|was|being|of)\b)?(?:\s{0,3}[:=(\[\-\x{2010}-\x{2015}])?"
    r"\s{0,3}(?:" + _WEEKDAY + r")?(?:the\s+)?"
)
_SEP = r" ?[ /.-]? ?"  # separators are optional: "DOB 03041951"
_DOB_DATE = (
    r"(?:\d{4}" + _SEP + r"\d{1,2}" + _SEP + r"\d{1,2}"  # 1951-04-03, first: "19" is no day
    r"|\d{1,2}" + _SEP + r"\d{1,2}" + _SEP + r"(?:\d{4}|'?\d{2})"  # 03/04/1951, 3.4.51
    r"|" + _DAY + r"(?:\s+of)?[\s/-]+" + _MONTH + r"(?:,?[\s/-]+" + _YEAR + r")?"  # 3rd of April
    r"|" + _MONTH + r"\s+(?:the\s+)?" + _DAY + r"(?:,?\s+" + _YEAR + r")?"  # April 3rd, 1951
    r"|" + _MONTH + r",?\s+" + _YEAR  # April 1951
    + r"|(?:19|20)\d{2}|'\d{2})\b"  # 1951, '51
)  # fmt: skip
# Dates and amounts that are not identifiers, matched first so that their digits cannot start
# a phone or NHS number: "03.04.2024 10.30", "06/23/2010 03:22", "2024-04-03 10.30",
# "case 2024/123456", "£1 500 000 000".
_KEEP = (
    r"\b(?:\d{1,2} \d{1,2} (?:19|20)\d{2}|(?:0[1-9]|[12]\d|3[01]) (?:0[1-9]|1[0-2]) \d{2}"
    r"|(?:19|20)\d{2} [01]?\d [0-3]?\d|(?:19|20)\d{2} \d{5,6})\b"  # or a serial: 2024/000123
    r"|[£$€] ?\d+(?:,\d{3})*"
)
NUMBERS = re2.compile(
    r"(?i)(?P<dob_cue>" + _DOB_CUE + r")(?P<dob>" + _DOB_DATE + r")"
    r"|(?P<ni_cue>" + _NI_CUE + r")(?P<ni_cued>" + _NI_CUED + r")|(?P<keep>" + _KEEP + r")"
    r"|(?P<phone>" + _PHONE + r")|(?P<nhs>" + _NHS + r")"
    r"|(?P<ni>" + _NI + r")|(?P<postcode>" + _POSTCODE + r")"
)

# Email addresses, matched on the copy without separator changes (dots and digits in a local
# part stay as typed). "@" may be full-width (NFKC makes it "@"), spaced, URL- or
# HTML-encoded, or spelled "(at)", "[at]", "{at}", "<at>"; dots may be spelled the same ways.
_LOCAL_PART = r"[^\s@<>()\[\]{},;:\"]+"
_LABEL = r"[^\s@<>()\[\]{},;:\".\x{3002}]+"
_BRACKETED = r"\s{0,2}[(\[{<_/#*-]\s?(?:WORD)\s?[)\]}>_/#*-]\s{0,2}"  # (at) -at- _at_
_AT = r"(?:\s{0,2}@\s{0,2}|" + _BRACKETED.replace("WORD", "at|@") + r"|%40|&#0*64;|&commat;)"
_DOT = r"(?:[.\x{3002}]|\s\.\s|" + _BRACKETED.replace("WORD", "dot") + r"|\s+dot\s+)"  # 。
_WORDS_DOT = r"(?:\s+dot\s+|" + _BRACKETED.replace("WORD", "dot") + r")"
_SPELT_LOCAL = _LOCAL_PART + r"(?:" + _WORDS_DOT + _LOCAL_PART + r")*"
# A bare " at " is ordinary English ("stayed at St.Thomas"), so it needs a mail domain's ending.
_TLD = r"(?:com|org|net|uk|gov|nhs|scot|wales|cymru|ie|eu|info|email|ac|edu)"
_EMAIL = (
    _SPELT_LOCAL + _AT + _LABEL + r"(?:" + _DOT + _LABEL + r")+"
    r"|(?P<bare_local>" + _SPELT_LOCAL + r")\s+at\s+(?P<bare_domain>" + _LABEL
    + r"(?:" + _DOT + _LABEL + r")*" + _DOT + _TLD + r")\b"
)  # fmt: skip
EMAILS = re2.compile(r"(?i)" + _EMAIL)
# Words that stand before " at <site>" in ordinary English ("have a look at nhs.uk"): with a
# bare " at ", such a word is not the local part of an address. Nor is a web address (www.).
NOT_LOCAL_PARTS = frozenset({
    "look", "looking", "looked", "me", "us", "them", "him", "her", "it", "online", "site",
    "website", "page", "pages", "found", "find", "available", "here", "there", "details", "info",
    "information", "advice", "help", "guidance", "more", "out", "go", "went", "visit", "visited",
    "stayed", "arrived", "registered", "booked", "search", "searched", "check", "checked",
    "apply", "applied", "read",
})  # fmt: skip
# Letters and combining marks only, in any script: "Zoë" (or "Zoe" + U+0308) is one word, and
# apostrophes and hyphens split words, so "Jane's" yields "Jane". Every word of a story is
# looked at, and RE2's Python wrapper costs microseconds a match, so words are found with
# Python's ``re`` as runs of one character class each (letters; combining marks, listed from the
# Unicode database as ``re`` has no \p{M}), which cannot backtrack; ``words`` joins adjacent runs.
MARKS = "".join(
    chr(code) for code in range(0x300, 0x10000) if unicodedata.category(chr(code)).startswith("M")
)
_RUN = re.compile(r"[^\W\d_]+|[" + re.escape(MARKS) + r"]+")


def words(text: str) -> Iterator[tuple[int, int]]:
    """The spans of the words of ``text``: runs of letters and combining marks."""
    start = end = -1
    for run in _RUN.finditer(text):
        if run.start() != end:
            if end > start:
                yield start, end
            start = run.start()
        end = run.end()
    if end > start:
        yield start, end
