"""Separate the sender's own words from quoted history, signatures and footers.

Pure and stdlib-only: `clean(body)` takes a plain-text body and returns a `Cleaned` record. It
works on lines, in passes: list footer (appended after everything), quoted history, then footer
and signature at the end of the sender's own part. Every look-ahead and look-behind is bounded,
so the cost stays linear even on hostile input. What a single line looks like is decided in
`intake.clean.patterns`, what opens earlier mail in `intake.clean.heads` and
`intake.clean.attribution`; this module decides where each part begins.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from intake.clean import attribution as a
from intake.clean import earlier as e
from intake.clean import heads
from intake.clean import patterns as p
from intake.clean.tail import split_footer, split_list_footer, split_signature

_MAX_FORWARD_DEPTH = 3  # forwards of forwards are unwrapped this deep
_MAX_COVERING_WORDS = 80  # a longer text above a forward is the forwarder's own story
_GREETING_WORDS = 3  # "Dear Sam Jones," may stand between a device line and the pasted text
# The earlier texts' shingles (intake.clean.earlier).
_Known = tuple[frozenset[tuple[str, ...]], ...]
heads.DEVICE_LINE = 120  # characters a device line may have ("Envoyé à partir de mon …")


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


def clean(body: str, sender_name: str = "", earlier: tuple[str, ...] = ()) -> Cleaned:
    """Split a plain-text email body into own words, quoted history, signature and footer.

    `sender_name` (a display name or an address) helps find a signature block that repeats it.
    When the message is a forward and the sender added nothing substantive ("FYI", or nothing),
    the forwarded message's body becomes `text` and `forwarded` is True. `earlier` holds the
    texts of messages this one answers (`In-Reply-To`/`References`): lines that repeat one
    without quote marks are quoted history, and a device line right above them ends the reply.
    """
    text = body.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
    lines, list_footer = split_list_footer(text.split("\n"))
    result = _clean_lines(lines, sender_name.strip(), 0, e.shingles(earlier))
    if not list_footer:
        return result
    return replace(result, footer=p.join_parts(result.footer, p.join(list_footer)))


def _clean_lines(lines: list[str], sender_name: str, depth: int, earlier: _Known) -> Cleaned:
    split = _scan(lines, earlier)
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
        inner = _clean_lines(split.body, "", depth + 1, earlier)
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


def _scan(lines: list[str], earlier: _Known) -> _Split:
    """Walk the body once: quote blocks and pasted earlier mail are set aside; the first
    history marker ends own text."""
    pasted = e.pasted_blocks(lines, earlier) if earlier else {}
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
            end = heads.quote_block_end(lines, i)
            first_block = first_block or (i, end)
            quoted.extend(lines[i:end])
            i = end
            continue
        if pasted and (i in pasted or _device_above(lines, i, pasted)):
            if i not in pasted:  # a phone's line right above the pasted mail ends the reply
                return _Split([*own, lines[i]], quoted + lines[i + 1 :], "reply", before=quoted)
            quoted.extend(lines[i : pasted[i]])
            i = pasted[i]
            continue
        if heads.opens_nothing(lines, i):
            own.append(lines[i])
            i += 1
            continue
        attribution = a.attribution_end(lines, i)
        if attribution is not None:
            k = p.skip_blank(lines, attribution)
            if k == n or not p.QUOTE_LINE.match(lines[k]):
                # No quote markers follow (Outlook mobile): everything below is history.
                return _Split(own, quoted + lines[i:], "reply", before=quoted)
            end = heads.quote_block_end(lines, k)  # own text may resume below: an inline reply
            quoted.extend(lines[i:end])
            i = end
            continue
        marker = heads.history_marker(lines, i)
        if marker is not None:
            return _history_split(own, quoted, lines, i, marker)
        if heads.device_above_history(lines, i):
            # A phone puts its line under what was typed: below it is the earlier message.
            return _Split([*own, lines[i]], quoted + lines[i + 1 :], "reply", before=quoted)
        own.append(lines[i])
        i += 1
    return _quoted_forward(_Split(own, quoted), lines, first_block)


def _device_above(lines: list[str], i: int, pasted: dict[int, int]) -> bool:
    """Line i is a device line ("Sent from my iPhone") above a pasted block, maybe with a
    greeting line between them that differs from the earlier text's ("Dear Sam," / "Hello,")."""
    if not p.may_be_device(lines[i]) or not p.is_device(lines[i]):
        return False
    k = p.skip_blank(lines, i + 1)
    if k < len(lines) and k not in pasted and len(lines[k].split()) <= _GREETING_WORDS:
        k = p.skip_blank(lines, k + 1)
    return k in pasted


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
    if start > 0 and heads.introduces_history(own[start - 1], adjacent=start == len(own)):
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
    marker = heads.history_marker(inner, first) if first < len(inner) else None
    if marker is not None:
        split.kind, split.body = marker[0], inner[marker[1] :]
        split.header = lines[start : start + marker[1]]
    return split
