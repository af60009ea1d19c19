"""Fetch stage, erasure: which message on a mailbox is a copy of one the store recorded.

Pure functions of bytes; the sources (``intake.sources.imap`` over IMAP,
``intake.sources.maildir``) do the I/O. A copy is deleted only when it is confirmed exactly:
its Message-ID, normalised the way ``story_id`` is, equals the recorded one, or, for a message
without one (``sha256:`` ids) and for quarantined mail, its bytes hash to the recorded digest.
A search result alone (IMAP's ``HEADER`` search matches substrings) never is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser

from intake.parse import story_id

HEADER_ITEM = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"


@dataclass(frozen=True, slots=True)
class MailboxCopy:
    """A message the store recorded, to be deleted from the mailbox (an erasure entry).

    ``mailbox``/``uidvalidity``/``uid`` are where it was fetched; ``story_id`` is its
    normalised Message-ID ("" when it has none, or for quarantined mail); ``digest`` the
    sha256 of the bytes stored (the header block when ``too_large``), ``size`` its size on
    the server (0: unknown).
    """

    entry_id: int
    mailbox: str
    uidvalidity: int
    uid: int
    story_id: str
    digest: str
    size: int
    too_large: bool

    @property
    def by_message_id(self) -> bool:
        """Confirmed by its Message-ID (else by the digest of its bytes)."""
        return bool(self.story_id)


def copy_fields(story_id_or_digest: str, size: int, too_large: bool) -> dict[str, object]:
    """The identity columns of an erasure entry for a story (``story_id``) or, given a
    ``sha256:`` id, for the bytes that id is the digest of."""
    if story_id_or_digest.startswith("sha256:"):
        digest = story_id_or_digest.removeprefix("sha256:")
        return {"story_id": "", "digest": digest, "size": size, "too_large": too_large}
    return {"story_id": story_id_or_digest, "digest": "", "size": size, "too_large": too_large}


def message_story_id(header: bytes) -> str:
    """The story_id a message's header block gives (``sha256:`` of nothing when it has no
    Message-ID, which no recorded story_id equals)."""
    values = BytesHeaderParser().parsebytes(header).get_all("message-id") or ()
    return story_id(values, b"")


def is_copy(copy: MailboxCopy, data: bytes) -> bool:
    """Whether ``data`` (the header block, or the whole message when confirmed by digest)
    is exactly this copy."""
    if copy.by_message_id:
        return message_story_id(data) == copy.story_id
    return bool(copy.digest) and hashlib.sha256(data).hexdigest() == copy.digest


def matching(copies: Sequence[MailboxCopy], data: bytes) -> list[MailboxCopy]:
    """The copies that ``data`` (a whole message, as a Maildir holds it) is exactly."""
    head = header_block(data)
    found_id = message_story_id(head) if any(c.by_message_id for c in copies) else ""
    digests = {hashlib.sha256(data).hexdigest(), hashlib.sha256(head).hexdigest()}
    return [c for c in copies
            if (c.by_message_id and found_id == c.story_id)
            or (not c.by_message_id and c.digest in digests)]  # fmt: skip


def header_block(data: bytes) -> bytes:
    """The header block of a message, up to and including the empty line that ends it (what
    IMAP's ``BODY[HEADER]`` and a too-large message's stored bytes hold)."""
    lines = []
    for line in data.splitlines(keepends=True):
        lines.append(line)
        if line in (b"\n", b"\r\n"):
            break
    return b"".join(lines)


def fetch_item(copy: MailboxCopy) -> tuple[bytes, bytes]:
    """What to FETCH to confirm ``copy``, and the key the answer comes back under."""
    if copy.by_message_id:
        return b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", HEADER_ITEM
    if copy.too_large:  # only its header block was stored, so only that was hashed
        return b"BODY.PEEK[HEADER]", b"BODY[HEADER]"
    return b"BODY.PEEK[]", b"BODY[]"


def search_criteria(copy: MailboxCopy) -> list[object] | None:
    """An IMAP SEARCH that finds candidates for ``copy`` (a superset: each is confirmed with
    ``is_copy``), or None when there is nothing to search by."""
    if copy.by_message_id:
        # A search string outside ASCII needs a CHARSET not every server takes: such a copy
        # is found by its recorded UID alone.
        return ["HEADER", "Message-ID", copy.story_id] if copy.story_id.isascii() else None
    if copy.size > 0:  # RFC822.SIZE is exact: LARGER n-1 SMALLER n+1 is size n
        return ["LARGER", str(copy.size - 1), "SMALLER", str(copy.size + 1)]
    return None


def entry_ids(copies: Iterable[MailboxCopy]) -> list[int]:
    """The erasure entries these copies came from."""
    return [c.entry_id for c in copies]
