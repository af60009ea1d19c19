"""Clean stage, the end of the sender's own words: legal footers, list footers, signatures.

Pure and stdlib-only, called by `intake.clean`. Each finder walks up from the end with bounded
look-back; what a single line looks like is decided in `intake.clean_patterns`.
"""

from __future__ import annotations

from intake.clean import patterns as p

# --- footers -----------------------------------------------------------------------------------


def split_list_footer(lines: list[str]) -> tuple[list[str], list[str]]:
    """Mailing lists append their footer after everything, quoted history included."""
    for k in p.nonblank_above(lines, len(lines), 12):
        if len(lines[k]) <= p.MAX_LINE and p.is_list_footer(lines[k]):
            for r in range(k - 1, max(k - 5, -1), -1):
                if p.is_rule(lines[r]) or p.NEXT_PART.match(lines[r]):
                    return lines[:r], lines[r:]
    return lines, []


def split_footer(lines: list[str]) -> tuple[list[str], list[str]]:
    """Walk paragraphs up from the end while they are disclaimers, device or list lines."""
    cut = end = len(lines)
    while end > 0:
        while end > 0 and p.is_blank(lines[end - 1]):
            end -= 1
        start = end
        while start > 0 and not p.is_blank(lines[start - 1]):
            start -= 1
        offset = _footer_offset(lines[start:end])
        if offset is None:
            break
        cut, end = start + offset, start
        if offset:
            break  # the footer began inside this paragraph: above it is the sender's
    return lines[:cut], lines[cut:]


def _footer_offset(paragraph: list[str]) -> int | None:
    """Where the footer starts inside a paragraph (0 = all of it), or None if it has none."""
    if not paragraph:
        return None
    device = len(paragraph)
    while device > 0 and p.is_device(paragraph[device - 1]):
        device -= 1
    if device < len(paragraph):
        return device  # "… story.\nSent from my iPhone": only the device lines go
    if p.FIRST_PERSON.search(" ".join(paragraph[:40])):
        return None  # boilerplate says "we"/"you"; "keep my story confidential" is the story
    for k, line in enumerate(paragraph[:40]):
        if len(line) > p.MAX_LINE:
            continue
        # A list footer always carries its link or address; a mention of "mailing list" need not.
        if p.FOOTER_START.match(line) or (p.is_list_footer(line) and p.has_link(paragraph)):
            # Inside a paragraph, only a short signature-like block may precede the footer.
            return k if all(p.is_sig_like(above) for above in paragraph[:k]) else None
    return None


# --- signatures --------------------------------------------------------------------------------


def split_signature(lines: list[str], sender_name: str) -> tuple[list[str], list[str]]:
    """Move the sign-off / signature block at the end of the own text into the signature."""
    end = len(lines)
    while end > 0 and p.is_blank(lines[end - 1]):
        end -= 1
    start = end
    for _ in range(4):  # a sign-off may sit above a "-- " block, a name block above a sign-off
        # Every finder looks at the same non-blank lines above `start`: found once, not five times.
        above = p.nonblank_above(lines, start, _LOOK_BACK)
        found = [finder(lines, start, above, sender_name) for finder in _SIGNATURE_FINDERS]
        earliest = min((s for s in found if s is not None), default=start)
        if earliest >= start:
            break
        start = earliest
    while start > 0 and (p.is_blank(lines[start - 1]) or p.is_rule(lines[start - 1])):
        start -= 1  # decorative rules ("-----", "ᐧ") above a signature belong to it
    signature = lines[start:end]
    own_left = any(not p.is_blank(line) for line in lines[:start])
    if not own_left and not (signature and p.SIG_DASHES.match(signature[0])):
        return lines[:end], []  # a message that is only "Thank you." is the sender's words
    return lines[:start], signature


def _dash_delimiter(lines: list[str], start: int, above: list[int], name: str) -> int | None:
    """The "-- " delimiter, when what follows is short enough to be a signature."""
    for k in above[:13]:
        if p.SIG_DASHES.match(lines[k]):
            block = [line for line in lines[k + 1 : start] if not p.is_blank(line)]
            sig_like = sum(1 for line in block if p.is_sig_like(line))
            return k if 2 * sig_like >= len(block) else None  # "--\nUpdate: …" stays
    return None


def _rule_contact_block(lines: list[str], start: int, above: list[int], name: str) -> int | None:
    """A rule line ("------") over short lines with a phone number, address, URL or the name."""
    block: list[str] = []
    for k in above[:16]:
        if p.is_rule(lines[k]) and len(lines[k].strip()) >= 4:
            return k if any(p.is_contact(line, name) for line in block) else None
        if not p.is_sig_like(lines[k]):
            return None
        block.append(lines[k])
    return None


def _signoff(lines: list[str], start: int, above: list[int], name: str) -> int | None:
    """The earliest sign-off ("Kind regards,") followed only by short signature lines."""
    best: int | None = None
    for k in above[:8]:
        if p.is_signoff(lines[k]):
            best = k
        elif not p.is_sig_line(lines[k]):
            break  # "Thank you.\nNobody else listened." ends a story, not a signature
    return best


def _sender_block(lines: list[str], start: int, above: list[int], name: str) -> int | None:
    """A short block near the end that names the sender, from the start of its paragraph."""
    best: int | None = None
    for k in above[:10]:
        if not p.is_sig_like(lines[k]):
            break
        if p.names_sender(lines[k], name):
            best = k
    while best is not None and best > 0 and not p.is_blank(lines[best - 1]):
        if not p.is_sig_like(lines[best - 1]):
            break
        best -= 1
    return best


def _dash_name(lines: list[str], start: int, above: list[int], name: str) -> int | None:
    """A last line such as "—Ryan" or "- Jane" under a blank line, when it is not a list item."""
    above = above[:2]
    if not above or not p.SIGNATURE_DASH_NAME.match(lines[above[0]].strip()):
        return None
    k = above[0]
    if k == 0 or not p.is_blank(lines[k - 1]):
        return None
    is_list = len(above) > 1 and lines[above[1]].lstrip()[:1] in ("-", "—", "–", "*", "•")
    return None if is_list else k


_LOOK_BACK = 16  # the most non-blank lines above the end any finder reads
_SIGNATURE_FINDERS = (_dash_delimiter, _rule_contact_block, _signoff, _sender_block, _dash_name)
