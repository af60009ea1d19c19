"""Separate the sender's own words from quoted history, signatures and footers.

Pure and stdlib-only: `clean(body)` takes a plain-text body and returns a `Cleaned` record. It
works on lines, in passes: list footer (appended after everything), quoted history, then footer
and signature at the end of the sender's own part. Every look-ahead and look-behind is bounded,
so the cost stays linear even on hostile input. What a single line looks like is decided in
`intake.clean_patterns`; this module decides where each part begins.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from intake.clean import patterns as p
from intake.clean.tail import split_footer, split_list_footer, split_signature

_MAX_ATTRIBUTION = 400  # characters in a (wrapped) "On … wrote:" span
_ATTRIBUTION_LINES = 5  # lines one may span: Gmail wraps long names and addresses
_HEADER_WINDOW = 12  # lines an Outlook header block may span, wrapped Subject included
_MAX_FORWARD_DEPTH = 3  # forwards of forwards are unwrapped this deep
_MAX_COVERING_WORDS = 80  # a longer text above a forward is the forwarder's own story
_REWRAP_ABOVE = 40  # a quote line re-wrapped by a client was near the wrap width
_REWRAP_LINE = 40  # characters its overflow may have
_SENTENCE_END = frozenset(".!?:;…")
_DEVICE_LINE = 120  # characters a device line may have ("Envoyé à partir de mon …")
_NAMED_WORDS = 6  # "Jane Doe wrote:", "Jane van der Berg a écrit :"


@dataclass(frozen=True, slots=True)
class Cleaned:
    """A plain-text body split into the sender's words and everything around them."""

    text: str  # the sender's own words (stripped of trailing blank lines)
    quoted: str  # quoted earlier mail / forwarded-history ("" if none)
    signature: str  # sign-off / signature block ("" if none)
    footer: str  # legal / confidentiality / "sent from my iPhone" / list footers ("" if none)
    forwarded: bool  # True when the message is a forward and `text` holds the forwarded story


@dataclass(slots=True)
class _Split:
    own: list[str]
    quoted: list[str]  # every line that is not own, in body order
    kind: str = ""  # what opened the history: "forward", "header" (Outlook), "reply" or ""
    header: list[str] = field(default_factory=list)  # forward marker and header block
    body: list[str] | None = None  # the forwarded message's own body, when there is one
    before: list[str] = field(default_factory=list)  # quote blocks above the history


def clean(body: str, sender_name: str = "") -> Cleaned:
    """Split a plain-text email body into own words, quoted history, signature and footer.

    `sender_name` (a display name or an address) helps find a signature block that repeats it.
    When the message is a forward and the sender added nothing substantive ("FYI", or nothing),
    the forwarded message's body becomes `text` and `forwarded` is True.
    """
    text = body.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
    lines, list_footer = split_list_footer(text.split("\n"))
    result = _clean_lines(lines, sender_name.strip(), 0)
    if not list_footer:
        return result
    return replace(result, footer=p.join_parts(result.footer, p.join(list_footer)))


def _clean_lines(lines: list[str], sender_name: str, depth: int) -> Cleaned:
    split = _scan(lines)
    own, footer = split_footer(split.own)
    own, signature = split_signature(own, sender_name)
    if all(p.is_rule(line) or p.is_blank(line) for line in signature):
        footer, signature = signature + footer, []  # a bare "--" above "Sent from my phone"
    text = p.join(own)
    filler = _is_forward_note(text, signature, split.kind)
    # A short note above an explicit forward ("forwarding this from someone I support, she is
    # happy for you to use it") covers the story rather than telling one.
    covering = split.kind == "forward" and len(text.split()) <= _MAX_COVERING_WORDS
    if depth < _MAX_FORWARD_DEPTH and split.body is not None and (filler or covering):
        # The forwarded message is the story; a covering note stays in front of it because it
        # often says what the team may do with the story.
        inner = _clean_lines(split.body, "", depth + 1)
        return Cleaned(
            text=p.join_parts("" if filler else text, inner.text),
            quoted=p.join_parts(p.join(split.before), p.join(split.header), inner.quoted),
            signature=p.join_parts(p.join(signature), inner.signature),
            footer=p.join_parts(p.join(footer), inner.footer),
            forwarded=True,
        )
    return Cleaned(text, p.join(split.quoted), p.join(signature), p.join(footer), False)


def _is_forward_note(text: str, signature: list[str], kind: str) -> bool:
    """Whether the words above a forward are only a note ("FYI", "see below") or nothing."""
    if kind not in ("forward", "header"):
        return False  # asked first: reading every word of a long story is the costly part
    words = p.trivial_words(text)
    if words is None:
        return False
    # "From: … Sent: …" heads plain replies too, so there it takes nothing at all or an explicit
    # "FYI"/"fwd": a bare "Thanks!" answers the quoted mail rather than forwarding it.
    return kind == "forward" or bool(words & p.FORWARD_CUES) or not (words or p.join(signature))


# --- quoted history ----------------------------------------------------------------------------


def _scan(lines: list[str]) -> _Split:
    """Walk the body once: quote blocks are set aside; the first history marker ends own text."""
    own: list[str] = []
    quoted: list[str] = []
    first_block: tuple[int, int] | None = None
    i, n = 0, len(lines)
    while i < n:
        if not lines[i].strip():  # a third of a body: nothing can start on a blank line
            own.append(lines[i])
            i += 1
            continue
        if p.is_quote(lines[i]):
            end = _quote_block_end(lines, i)
            first_block = first_block or (i, end)
            quoted.extend(lines[i:end])
            i = end
            continue
        attribution = _attribution_end(lines, i)
        if attribution is not None:
            k = p.skip_blank(lines, attribution)
            if k == n or not p.QUOTE_LINE.match(lines[k]):
                # No quote markers follow (Outlook mobile): everything below is history.
                return _Split(own, quoted + lines[i:], "reply", before=quoted)
            end = _quote_block_end(lines, k)  # own text may resume below: an inline reply
            quoted.extend(lines[i:end])
            i = end
            continue
        marker = _history_marker(lines, i)
        if marker is not None:
            return _history_split(own, quoted, lines, i, marker)
        below = lines[i + 1] if i + 1 < n else ""
        # A device line is short and ends its paragraph or stands right above a header field;
        # asked of every line, so these cheap tests come first.
        if len(lines[i]) <= _DEVICE_LINE and (":" in below or not below.strip()) and (
            _device_above_history(lines, i)
        ):
            # A phone puts its line under what was typed: below it is the earlier message.
            return _Split([*own, lines[i]], quoted + lines[i + 1 :], "reply", before=quoted)
        own.append(lines[i])
        i += 1
    return _quoted_forward(_Split(own, quoted), lines, first_block)


def _device_above_history(lines: list[str], i: int) -> bool:
    """Line i is a device line with an earlier message pasted below it."""
    return p.may_be_device(lines[i]) and p.is_device(lines[i]) and _pasted_history(lines, i + 1)


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
        or p.separator_kind(line)
        or p.GMAIL_GMT_LINE.match(line)
        or p.GMAIL_DATE_EMAIL_LINE.match(line)
        or (p.ends_attribution(line) and p.ATTRIBUTION_CHAR.search(line))
    )


def _history_split(
    own: list[str], quoted: list[str], lines: list[str], i: int, marker: tuple[str, int]
) -> _Split:
    """Everything from the marker on is history; so is the line that introduces it: a rule
    ("_____"), a separator in words we do not know ("----- Reply from X -----"), or, right
    above the block, a dated intro line ("Message du 30/09/17 18:30")."""
    kind, body_at = marker
    start = len(own)
    while start > 0 and p.is_blank(own[start - 1]):
        start -= 1
    if start > 0 and p.introduces_history(own[start - 1], adjacent=start == len(own)):
        start -= 1
    header = own[start:] + lines[i:body_at]
    history = own[start:] + lines[i:]
    return _Split(own[:start], quoted + history, kind, header, lines[body_at:], before=quoted)


def _quoted_forward(split: _Split, lines: list[str], block: tuple[int, int] | None) -> _Split:
    """Apple Mail quotes forwards: "> Begin forwarded message:" opens the first quote block."""
    if block is None:
        return split
    start, end = block
    inner = [p.dequote(line) for line in lines[start:end]]
    first = p.skip_blank(inner, 0)
    marker = _history_marker(inner, first) if first < len(inner) else None
    if marker is not None:
        split.kind, split.body = marker[0], inner[marker[1] :]
        split.header = lines[start : start + marker[1]]
    return split


def _history_marker(lines: list[str], i: int) -> tuple[str, int] | None:
    """("forward" | "header", index of the earlier message's body) when line i opens one."""
    line = lines[i]
    if len(line) > p.MAX_LINE:
        return None
    separator = p.separator_kind(line)
    if separator is not None:
        forward = separator == "forward"
        j = p.skip_blank(lines, i + 1)
        end = _header_block_end(lines, j) if j < len(lines) else None
        return "forward" if forward else "header", p.skip_blank(lines, j if end is None else end)
    end = _header_block_end(lines, i)
    return None if end is None else ("header", p.skip_blank(lines, end))


def _header_block_end(lines: list[str], i: int) -> int | None:
    """End of an Outlook-style block ("From: … Sent: … To: … Subject: …") starting at line i."""
    first = p.header_line(lines[i])
    if first is None:
        return None
    keys = {first.group(1).casefold()}
    end = i + 1
    for j in range(i + 1, min(i + _HEADER_WINDOW, len(lines))):
        if p.is_blank(lines[j]):
            break
        match = p.header_line(lines[j])
        if match is not None:
            if match.group(1).casefold() in keys:
                break  # a block names each field once; a repeat starts something else
            keys.add(match.group(1).casefold())
        end = j + 1  # a non-header line here continues a wrapped Subject or To
    # One "From:" line can open a story paragraph; three distinct fields make a header block.
    return end if len(keys) >= 3 and keys & p.FROM_KEYS else None


def _attribution_end(lines: list[str], i: int) -> int | None:
    """End of an "On <date>, <name> wrote:" line, possibly wrapped, starting at line i."""
    first = lines[i].strip()
    if not first or len(first) > _MAX_ATTRIBUTION:
        return None
    if not p.ATTRIBUTION_CHAR.search(first):
        named = first[-1] in ":：" and _named_attribution(first, lines, i + 1)
        return i + 1 if named else None
    if p.PROSE_BREAK.search(first):
        return None
    if p.GMAIL_GMT_LINE.match(first) or p.GMAIL_DATE_EMAIL_LINE.match(first):
        return i + 1
    opener = p.ATTRIBUTION_OPENER.match(first) is not None
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
        if p.ends_attribution(span):
            return j + 1 if _attribution_evidence(span, lines, j + 1) else None
    return None


def _named_attribution(line: str, lines: list[str], after: int) -> bool:
    """ "Jane Doe wrote:" with neither date nor address: only right above quote marks."""
    if not line.endswith((":", "：")) or len(line.split()) > _NAMED_WORDS:
        return False
    return p.ends_attribution(line) and after < len(lines) and p.is_quote(lines[after])


def _attribution_evidence(span: str, lines: list[str], after: int) -> bool:
    """An address, a numeric date and time ("18/01/2021 11:32"), or quote marks below:
    "On 3 May, at 10:30, the GP wrote:" may be a story."""
    if p.EMAIL.search(span) or p.NUMERIC_DATE_TIME.search(span):
        return True
    k = p.skip_blank(lines, after)
    return k < len(lines) and p.is_quote(lines[k])


def _quote_block_end(lines: list[str], i: int) -> int:
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
