"""The Message-IDs a message names as the ones it answers (``In-Reply-To``, ``References``),
normalised as story ids are (``local@domain``, the domain lower-cased).

Stdlib only: the application reads them from a batch's header blocks in the process that
fetches, before the parser (mail-parser) sees the message; ``intake.parse`` reads them too.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

MSGID = re.compile(r"<([^<>\s]{1,900})>|([^<>\s@]{1,450}@[^<>\s@]{1,450})")
MAX_REFERENCES_CHARS = 8000  # a long thread's References; beyond this only older mail is named
_MAX_HEADER_BYTES = 1 << 18  # a header block is never this long; the body is not read


def normal_id(match: re.Match[str]) -> str | None:
    """``local@domain`` with the domain lower-cased, from a match of MSGID; None without a
    local part."""
    local, _, domain = (match.group(1) or match.group(2)).rpartition("@")
    return f"{local}@{domain.lower()}" if local else None


def referenced_ids(message: Message) -> list[str]:
    """The Message-IDs In-Reply-To and References name, in header order."""
    found: list[str] = []
    for name in ("in-reply-to", "references"):
        for value in message.get_all(name) or ():
            for match in MSGID.finditer(str(value)[:MAX_REFERENCES_CHARS]):
                message_id = normal_id(match)
                if message_id is not None:
                    found.append(message_id)
    return found


def header_block(data: bytes) -> Message:
    """The message's headers alone, parsed from the bytes before the first blank line."""
    head = data[:_MAX_HEADER_BYTES]
    ends = [at for at in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if at >= 0]
    return BytesHeaderParser(policy=compat32).parsebytes(head[: min(ends, default=len(head))])
