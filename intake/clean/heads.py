"""What opens quoted history besides an attribution: Outlook-style header blocks, separator
lines, a device line above pasted mail; and where a block of quote lines ends.

Pure and stdlib-only, called by `intake.clean.body`. Labels and phrases come from
`intake.clean.labels`; every look-ahead is bounded.
"""

from __future__ import annotations

import re

from intake.clean import attribution as a
from intake.clean import labels
from intake.clean import patterns as p

HEADER_WINDOW = 12  # lines an Outlook header block may span, wrapped Subject included
DEVICE_LINE = 120  # characters a device line may have ("Envoyé à partir de mon …")
_REWRAP_ABOVE = 40  # a quote line re-wrapped by a client was near the wrap width
_REWRAP_LINE = 40  # characters its overflow may have
_SENTENCE_END = frozenset(".!?:;…")

# Full-line separators that introduce earlier mail.
_FORWARD_PHRASES = labels.phrases("forward")
_ORIGINAL_PHRASES = labels.phrases("original")
# A separator is one of those phrases between decoration: "---------- Forwarded message ---------",
# "> Begin forwarded message:". Looked up, not matched: the scan asks it of every line.
_SEPARATORS = {phrase: "original" for phrase in _ORIGINAL_PHRASES} | {
    phrase: "forward" for phrase in _FORWARD_PHRASES
}
_SEPARATOR_LEAD = " \t\u00a0>*_=-"
_SEPARATOR_TAIL = " \t\u00a0:*_=-"
_MAX_SEPARATOR = 160
_SEPARATOR_SPACES = 8  # a phrase has at most four words; decoration may hold a few more
# Every attribution holds a date, time or address or ends in a colon, and every header field
# has its colon: a line without any of these that is too long for a separator opens nothing.
_MARK_CHARS = re.compile(r"[0-9<@‹:：]")


def opens_nothing(lines: list[str], i: int) -> bool:
    """Line i can open no history: neither an attribution, a header block, a separator nor a
    device line above pasted mail. The scan's early exit, asked of every line: most lines of
    a story are prose, and this answers for them at the cost of one search."""
    line = lines[i]
    if len(line) <= _MAX_SEPARATOR and line.count(" ") <= _SEPARATOR_SPACES:
        return False  # short enough to be a separator
    if _MARK_CHARS.search(line):
        return False
    if len(line) > DEVICE_LINE or (
        i + 1 < len(lines) and ":" not in lines[i + 1] and lines[i + 1].strip()
    ):
        return True  # `device_above_history`'s own first test, without the call
    return not device_above_history(lines, i)


def separator_kind(line: str) -> str | None:
    """ "forward" or "original" when the line is a separator of earlier mail, else None."""
    if len(line) > _MAX_SEPARATOR or line.count(" ") > _SEPARATOR_SPACES:
        return None  # prose: the cheap test first, the scan asks this of every line
    core = line.lstrip(_SEPARATOR_LEAD).rstrip(_SEPARATOR_TAIL)
    return _SEPARATORS.get(" ".join(core.casefold().split())) if core else None


# A separator in any wording: text between runs of rule characters, "----- Reply from X -----".
DECORATED_LINE = re.compile(
    r"[ \t>]{0,4}[-_=*~#]{3,40}[ \t]{0,4}[^\s\-_=*~#][^\n]{0,60}?[-_=*~#]{3,40}\s*$"
)
# A short line that dates what follows: "Message du 30/09/17 18:30", "Am 30.09.2017, 18:30".
DATED_INTRO = re.compile(
    r"[^\d\n]{0,40}\d{1,4}[./-]\d{1,2}(?:[./-]\d{2,4})?,?\s{1,3}\d{1,2}[:.h]\d{2}\D{0,20}$"
)


def introduces_history(line: str, adjacent: bool) -> bool:
    """A rule or a worded separator above a header block, or (only when `adjacent`, nothing
    between them) a short line that dates it."""
    if len(line) > 120:
        return False
    if p.is_rule(line) or DECORATED_LINE.match(line):
        return True
    return adjacent and len(line.split()) <= 8 and DATED_INTRO.match(line.strip()) is not None


def history_marker(lines: list[str], i: int) -> tuple[str, int] | None:
    """("forward" | "header", index of the earlier message's body) when line i opens one."""
    line = lines[i]
    if len(line) > p.MAX_LINE:
        return None
    separator = separator_kind(line)
    if separator is not None:
        forward = separator == "forward"
        j = p.skip_blank(lines, i + 1)
        end = header_block_end(lines, j) if j < len(lines) else None
        return "forward" if forward else "header", p.skip_blank(lines, j if end is None else end)
    end = header_block_end(lines, i)
    return None if end is None else ("header", p.skip_blank(lines, end))


def header_block_end(lines: list[str], i: int) -> int | None:
    """End of an Outlook-style block ("From: … Sent: … To: … Subject: …") starting at line i.

    A blank line may sit between two fields (Outlook's HTML read as text puts one after each).
    """
    first = p.header_line(lines[i])
    if first is None:
        return None
    keys = {first.group(1).casefold()}
    end = i + 1
    for j in range(i + 1, min(i + HEADER_WINDOW, len(lines))):
        if p.is_blank(lines[j]):
            if j + 1 < len(lines) and j == end and p.header_line(lines[j + 1]) is not None:
                continue
            break
        match = p.header_line(lines[j])
        if match is not None:
            if match.group(1).casefold() in keys:
                break  # a block names each field once; a repeat starts something else
            keys.add(match.group(1).casefold())
        elif end < j:
            break  # after a blank line only a field goes on
        end = j + 1  # a non-header line here continues a wrapped Subject or To
    return end if _is_header_block(keys, lines[i:end]) else None


def _is_header_block(keys: set[str], block: list[str]) -> bool:
    """One "From:" line can open a story paragraph; three distinct fields make a header block,
    and so do two ("From: … Date: …") when they hold an address and a date and time."""
    if not keys & p.FROM_KEYS or len(keys) < 2:
        return False
    text = " ".join(block)
    return len(keys) >= 3 or bool(p.EMAIL.search(text) and a.TIME.search(text))


def device_above_history(lines: list[str], i: int) -> bool:
    """Line i is a device line ("Sent from my iPhone") with an earlier message pasted below."""
    # Asked of every line, so the cheap tests come first: a device line is short and ends its
    # paragraph or stands right above a header field.
    line, below = lines[i], lines[i + 1] if i + 1 < len(lines) else ""
    if len(line) > DEVICE_LINE or not (":" in below or not below.strip()):
        return False
    return p.may_be_device(line) and p.is_device(line) and _pasted_history(lines, i + 1)


def _pasted_history(lines: list[str], i: int) -> bool:
    """Whether the first line after a device line (past a rule) heads an earlier message.

    Below a device line one field ("From: …") or a dated "… wrote" without an address is
    enough: those would be too weak in the middle of a story. Quote lines are not asked about:
    the scan sets them aside (and finds an Apple forward in them) whatever stands above.
    """
    k = p.skip_blank(lines, i)
    if k < len(lines) and p.is_rule(lines[k]):
        k = p.skip_blank(lines, k + 1)
    if k == len(lines) or len(lines[k]) > p.MAX_LINE or p.is_quote(lines[k]):
        return False
    line = lines[k].strip()
    return bool(
        p.header_line(line)
        or separator_kind(line)
        or a.GMAIL_GMT_LINE.match(line)
        or a.GMAIL_DATE_EMAIL_LINE.match(line)
        or (a.ends_attribution(line) and a.ATTRIBUTION_CHAR.search(line))
    )


def quote_block_end(lines: list[str], i: int) -> int:
    """End of the run of quote lines at i; blank lines inside the run belong to it, and so does
    a line whose ">" a client lost when it re-wrapped the quote (see `_rewrapped`)."""
    last = i
    for j in range(i + 1, len(lines)):
        if p.is_quote(lines[j]) or (last == j - 1 and _rewrapped(lines, j)):
            last = j
        elif not p.is_blank(lines[j]):
            break
    return last + 1


def _rewrapped(lines: list[str], j: int) -> bool:
    """Line j, right below a quote line, is the overflow of that line re-wrapped without ">".

    The quote line above is long and stops mid-sentence; line j is short and either sits
    between two quote lines that carry one sentence on, or continues it in lower case. A short
    answer typed under a quoted question ("Greenfield Primary") starts a sentence of its own.
    """
    above, line = p.dequote(lines[j - 1]).strip(), lines[j].strip()
    if not line or len(line) > _REWRAP_LINE:
        return False
    if len(above) < _REWRAP_ABOVE or above[-1] in _SENTENCE_END:
        return False
    if line[0].islower():
        return True
    below = lines[j + 1] if j + 1 < len(lines) else ""
    return p.is_quote(below) and p.dequote(below).strip()[:1].islower()
