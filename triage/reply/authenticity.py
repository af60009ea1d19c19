"""Acknowledge stage, authenticity: did the team's own border vouch for the From domain? Pure.

Imports the standard library and ``intake.records`` only. Reads ``Authentication-Results``
headers (RFC 8601) as ``Story.headers`` keeps them, topmost first. Anyone can write such a
header, so only one whose authserv-id is in ``[intake] trusted_authserv_ids`` counts, and of
those only the topmost: the border adds its own above everything the message arrived with,
so a header a sender forged with the border's id can only sit below it (RFC 8601 section 5
asks the border to delete those; this does not rely on it). Nothing trusted: nothing is
authenticated.

A message is authenticated for its From domain when that header shows ``dmarc=pass`` with
``header.from`` equal to the From domain, or ``dkim=pass`` with ``header.d`` (or the domain
of ``header.i``) equal to it, or ``spf=pass`` with the ``smtp.mailfrom`` domain equal to it.
The simplification: DKIM and SPF are aligned strictly (equal domains). Relaxed alignment
needs the public suffix list to find organisational domains; a border that checks DMARC has
already applied the domain owner's own alignment mode in its ``dmarc=pass``.

The parser is a single pass over a capped string: comments and quoted strings are read
character by character, never by a backtracking pattern, so hostile headers cost linear
time, and anything it cannot read is simply not a pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from intake.records import Story

HEADER = "authentication-results"
MAX_CHARS = 8000  # longer than any real header; the rest is not read
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")  # A-labels, at least two
_PASS_KEYS = {"dmarc": ("header.from",), "dkim": ("header.d", "header.i"),
              "spf": ("smtp.mailfrom",)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Result:
    """One ``method=result`` of a header with its properties (``ptype.property``, value)."""

    method: str
    result: str
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AuthResults:
    """One parsed ``Authentication-Results`` header; ``authserv_id`` is "" when it has none."""

    authserv_id: str
    results: tuple[Result, ...]


def parse_results(value: str) -> AuthResults:
    """Read one header value; what cannot be read is left out, never raised."""
    parts = _split(_uncomment(value[:MAX_CHARS]))
    if not parts:
        return AuthResults("", ())
    first = parts[0].split()
    # Some servers (Microsoft's, for one) write no authserv-id: the first part is a result.
    authserv_id = first[0].lower() if first and "=" not in first[0] else ""
    rest = parts[1:] if authserv_id or not first else parts
    results = [r for r in (_result(p) for p in rest) if r is not None]
    return AuthResults(authserv_id, tuple(results))


def border_results(
    headers: Iterable[tuple[str, str]], trusted: Sequence[str]
) -> AuthResults | None:
    """The topmost ``Authentication-Results`` header from a trusted authserv-id, or None."""
    wanted = {t.strip().lower() for t in trusted if t.strip()}
    if not wanted:
        return None
    for name, value in headers:
        if name.lower() == HEADER:
            parsed = parse_results(value)
            if parsed.authserv_id in wanted:
                return parsed
    return None


def is_authenticated(story: Story, trusted: Sequence[str]) -> bool:
    """True when the team's border says the message really comes from its From domain."""
    domain = domain_of(story.sender.address)
    if not domain or "multiple_from" in story.defects:  # which From would it be for?
        return False
    found = border_results(story.headers, trusted)
    if found is None:
        return False
    for result in found.results:
        keys = _PASS_KEYS.get(result.method, ())
        aligned = (value_domain(v) == domain for k, v in result.properties if k in keys)
        if result.result == "pass" and any(aligned):
            return True
    return False


def envelope_verdict(story: Story, envelope: str, trusted: Sequence[str]) -> str:
    """What the team's border says of the envelope sender ``envelope``: ``fail`` when SPF
    failed (or soft-failed) for its domain or DMARC failed for the From domain, ``pass`` when
    SPF passed for exactly its domain, else ``none`` (no trusted header, or silent on it)."""
    found = border_results(story.headers, trusted)
    if found is None:
        return "none"
    wanted, sender = domain_of(envelope), domain_of(story.sender.address)
    verdict = "none"
    for result in found.results:
        keys = {"spf": ("smtp.mailfrom",), "dmarc": ("header.from",)}.get(result.method, ())
        domains = {value_domain(v) for k, v in result.properties if k in keys}
        if result.method == "dmarc" and result.result == "fail" and sender in domains:
            return "fail"
        if result.method == "spf" and wanted in domains:
            if result.result in ("fail", "softfail"):
                return "fail"
            if result.result == "pass":
                verdict = "pass"
    return verdict


def domain_of(value: str) -> str:
    """The domain of an address or a bare domain: lower-case, no trailing dot, A-labels."""
    domain = value.strip().strip("<>").rpartition("@")[2].strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii") if domain else ""
    except UnicodeError:
        return domain


def value_domain(value: str) -> str:
    """The domain a property value names, or "" when it cannot be read with certainty.

    The value is one token (``_pairs`` never splits it), written by the border from what the
    sender chose: an envelope local part may hold ``=`` (SRS, BATV) or be quoted. Only the
    part after the last ``@`` is the domain, and a value with a quoted part names none: its
    boundaries are the sender's to play with.
    """
    if '"' in value or "\\" in value:
        return ""
    domain = domain_of(value)
    return domain if len(domain) <= 253 and _DOMAIN.fullmatch(domain) else ""


def _result(part: str) -> Result | None:
    # "method[/version] = result", then "ptype.property = value" pairs; spaces may surround
    # "=". Anything else makes the whole result unreadable (never a pass).
    pairs = _pairs(part)
    if not pairs or "." in pairs[0][0]:
        return None
    method = pairs[0][0].split("/")[0]
    props = tuple((k, v) for k, v in pairs[1:] if "." in k)
    return Result(method, pairs[0][1].lower(), props)


def _pairs(part: str) -> list[tuple[str, str]] | None:
    """``key=value`` items of one result, each value whole (split at the first ``=`` only:
    ``smtp.mailfrom=example.net=x@evil.example`` is one value); None when malformed."""
    items: list[str] = []
    for word in _words(part):
        joined = items and (items[-1].endswith("=") or (word.startswith("=")
                                                        and "=" not in items[-1]))  # fmt: skip
        if joined:
            items[-1] += word
        else:
            items.append(word)
    pairs: list[tuple[str, str]] = []
    for item in items:
        key, equals, value = item.partition("=")
        if not (key and equals and value):
            if "=" not in item and pairs:  # a bare word ("reason" text): ignored
                continue
            return None
        pairs.append((key.lower(), value))
    return pairs


def _words(part: str) -> list[str]:
    """Split at whitespace outside quoted strings; a quoted string (escapes honoured) stays
    inside its word with its quotes, so its content can never become a word of its own."""
    return _split_outside_quotes(part, str.isspace)


def _uncomment(value: str) -> str:
    """``value`` with (nested) comments replaced by a space; quoted strings kept whole."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
        elif char == "\\":
            escaped = True
            if depth == 0 and quoted:
                out.append(char)
        elif quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if not depth:
                out.append(" ")
        elif depth == 0:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _split(value: str) -> list[str]:
    """Split at semicolons outside quoted strings (escapes honoured); empty parts dropped."""
    return [p.strip() for p in _split_outside_quotes(value, ";".__eq__) if p.strip()]


def _split_outside_quotes(value: str, is_separator: Callable[[str], bool]) -> list[str]:
    """``value`` cut at the characters ``is_separator`` accepts outside quoted strings (a
    backslash inside one escapes the next character); empty pieces dropped."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and is_separator(char):
            if current:
                pieces.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        pieces.append("".join(current))
    return pieces
