"""Parse stage: RawMessage -> Story. The mail-parser adapter; may import mailparser and inscriptis.

Malformed mail is data, not an error: whatever the parser complains about goes into
``Story.defects``. ParseError is raised only when nothing worth keeping can be read.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesFeedParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Any

import mailparser
from mailparser.exceptions import MailParserError

from intake.clean.body import clean
from intake.errors import ParseError
from intake.html_text import html_text
from intake.records import Address, Attachment, RawMessage, Story
from intake.references import referenced_ids
from intake.timing import StageTimer

# mail-parser logs header names and attachment file names at DEBUG and body parts it does not
# handle at WARNING: personal data. Only its errors may reach the pipeline's logs.
logging.getLogger("mailparser").setLevel(logging.ERROR)

# The headers the acknowledgement decision reads (RFC 3834, RFC 2369, Microsoft's extensions).
DECIDING_HEADERS = (
    "auto-submitted", "precedence", "list-id", "list-unsubscribe", "list-post", "list-help",
    "list-subscribe", "list-owner", "list-archive", "return-path", "x-auto-response-suppress",
    "x-autoreply", "x-autorespond", "x-loop", "in-reply-to", "references", "reply-to", "sender",
    "content-type", "x-ms-exchange-generated-message-source", "feedback-id", "x-apple-action",
    "authentication-results",  # whether the border vouched for the From domain (RFC 8601)
)  # fmt: skip
MAX_HEADER_CHARS = 998  # RFC 5322's line limit: anything longer is cut, not trusted
# Authentication-Results is folded over many lines by design; unfolded it can pass 998.
MAX_AUTH_RESULTS_CHARS = 8000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACE = re.compile(r"\s+")
_MSGID = re.compile(r"<([^<>\s]{1,900})>|([^<>\s@]{1,450}@[^<>\s@]{1,450})")
FEED_BYTES = 1 << 16  # how much of a message the stdlib parser is handed at a time
_NAME_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


# Given the sender's address and the Message-IDs a reply names (In-Reply-To, References), the
# texts of those earlier messages that the caller knows.
EarlierTexts = Callable[[str, Sequence[str]], tuple[str, ...]]


def parse(
    raw: RawMessage, timer: StageTimer | None = None, earlier: EarlierTexts | None = None
) -> Story:
    """Read one raw message into a Story; defects are recorded, never raised.

    ``timer``, when given, counts the cleaning apart from the rest (the benchmark's figures).
    ``earlier`` looks up the messages this one answers, so that cleaning can set aside their
    text when it is pasted without quote marks (the caller knows them; ``intake`` does not).
    """
    try:
        mail = mailparser.MailParser(_message(raw.data))
    except (MailParserError, RecursionError) as err:
        # The stdlib parser recurses once per multipart level (mail-parser's own guard
        # wraps only its parse_from_bytes, which reads the message in one piece).
        raise ParseError(f"unreadable MIME structure: {type(err).__name__}") from err
    except AttributeError as err:
        # mail-parser 4.x trips over some broken epilogues (find_between on None); the
        # message is kept in quarantine so `requeue` can retry it after an upgrade.
        raise ParseError(f"mail-parser failed on this structure: {err}") from err
    defects = _defects(mail, raw)
    sender = _sender(mail, defects)
    body, html_only = _body(mail, defects)
    texts = earlier(sender.address, referenced_ids(mail.message)) if earlier else ()
    if timer is None:
        cleaned = clean(body, sender.name, texts)
    else:
        with timer.stage("clean", 1):
            cleaned = clean(body, sender.name, texts)
    if body.strip() and not cleaned.text.strip():
        # Never an empty story without saying why: a person reads what cleaning set aside.
        defects.append("empty_after_cleaning")
    return Story(
        story_id=story_id(mail.message.get_all("message-id") or (), raw.data),
        sender=sender,
        recipients=tuple(_addresses(mail.to) + _addresses(mail.cc)),
        subject=one_line(str(mail.subject or "")),
        sent_at=_sent_at(mail.message.get("date"), defects),
        received_at=raw.internal_at,
        text=cleaned.text,
        quoted=cleaned.quoted,
        signature=cleaned.signature,
        footer=cleaned.footer,
        forwarded=cleaned.forwarded,
        html_only=html_only,
        attachments=tuple(_attachment(a) for a in mail.attachments),
        defects=tuple(dict.fromkeys(defects)),
        headers=_deciding_headers(mail.message),
        source=raw.key,
    )


def _message(data: bytes) -> Message:
    """The message structure, read in pieces. Handed the whole message at once, the stdlib
    parser queues every line of it before parsing any: 110 MiB at the peak for a 15 MB
    attachment, 39 MiB fed 64 KiB at a time (same result: its lines survive any cut)."""
    parser = BytesFeedParser(policy=compat32)
    view = memoryview(data)
    for at in range(0, len(data), FEED_BYTES):
        parser.feed(bytes(view[at : at + FEED_BYTES]))
    return parser.close()


def story_id(message_ids: Iterable[Any], data: bytes) -> str:
    """The normalised first Message-ID, or ``sha256:<hex>`` of the raw bytes without one."""
    for value in message_ids:
        match = _MSGID.search(str(value))
        if match:
            local, _, domain = (match.group(1) or match.group(2)).rpartition("@")
            if local:
                return f"{local}@{domain.lower()}"
    return "sha256:" + hashlib.sha256(data).hexdigest()


def one_line(value: str, limit: int = MAX_HEADER_CHARS) -> str:
    """A header value unfolded, control characters dropped, whitespace collapsed, capped."""
    return _SPACE.sub(" ", _CONTROL.sub(" ", value)).strip()[:limit]


def html_to_text(html: str) -> str:
    """Readable text from an HTML body (layout-aware: tables and lists keep their shape)."""
    return html_text(html).text


def _body(mail: Any, defects: list[str]) -> tuple[str, bool]:
    plain = [p for p in mail.text_plain if p.strip()]
    if plain:
        return "\n\n".join(plain), False
    html = [html_text(h) for h in mail.text_html if h.strip()]
    if any(h.flattened for h in html):
        defects.append("html_flattened")  # every word kept, the layout (and quoting) lost
    if html and not any(h.text.strip() for h in html):
        defects.append("html_without_text")  # images alone, say: a person looks at it
    if html:
        return "\n\n".join(h.text for h in html), True
    return "", False


def _sender(mail: Any, defects: list[str]) -> Address:
    senders = _addresses(mail.from_)
    if len(mail.message.get_all("from") or ()) > 1:
        defects.append("multiple_from")
    if not senders:
        defects.append("no_sender")
        return Address("", "")
    return senders[0]


def _addresses(pairs: Any) -> list[Address]:
    found = []
    for name, address in pairs or ():
        address = one_line(str(address)).lower() if "@" in str(address) else one_line(str(address))
        found.append(Address(one_line(str(name)), address))
    return [a for a in found if a.address]


def _sent_at(value: Any, defects: list[str]) -> datetime | None:
    if value is None:
        defects.append("no_date")
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append("bad_date")
        return None
    if moment.tzinfo is None:
        # "-0000" means "zone unknown" (RFC 5322 3.3); UTC is the least wrong reading.
        defects.append("date_without_zone")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _defects(mail: Any, raw: RawMessage) -> list[str]:
    found = sorted(str(c) for c in mail.defects_categories)
    if raw.too_large:
        found.append("too_large")
    if not mail.message.get_all("message-id"):
        found.append("no_message_id")
    return found


def _attachment(part: dict[str, Any]) -> Attachment:
    payload = part.get("payload") or ""
    if part.get("binary"):
        size = base64_size(str(payload))
    else:
        size = len(str(payload).encode("utf-8", "replace"))
    content_type = one_line(str(part.get("mail_content_type") or "application/octet-stream"))
    return Attachment(safe_name(str(part.get("filename") or "")), content_type.lower(), size)


def base64_size(payload: str) -> int:
    """The decoded size of a base64 payload, counted without decoding it: an attachment is
    metadata here, and decoding a 20 MB one only to measure it held 15 MB more per message."""
    letters = len(payload) - sum(payload.count(c) for c in " \t\r\n")
    padding = payload[-8:].rstrip().count("=")
    return max(0, letters * 3 // 4 - min(padding, 2))


def safe_name(name: str) -> str:
    """An attachment name reduced to a harmless base name (no path, no control characters)."""
    base = re.split(r"[/\\]", one_line(name))[-1]
    cleaned = _NAME_UNSAFE.sub("_", base).strip(" .")
    return cleaned[:200] or "attachment"


def _deciding_headers(message: Any) -> tuple[tuple[str, str], ...]:
    pairs = []
    for name, value in message.items():
        if name.lower() in DECIDING_HEADERS:
            limit = MAX_AUTH_RESULTS_CHARS if name.lower() == "authentication-results" else (
                MAX_HEADER_CHARS)  # fmt: skip
            pairs.append((name.lower(), one_line(str(value), limit)))
    return tuple(pairs)
