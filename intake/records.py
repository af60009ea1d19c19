"""The pipeline's vocabulary: the records that flow between stages.

Imports the standard library only. Every record is a frozen, slotted dataclass; timestamps are
aware UTC datetimes; sequences are tuples. No library object (a parsed message, a spaCy Doc, a
database row) ever goes inside a record, so any stage can be tested with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


def _pickled_by_fields(cls: type[T]) -> type[T]:
    """Pickle a frozen, slotted record as a call of its class with its field values.

    dataclasses' own ``__getstate__``/``__setstate__`` for such classes call ``fields()`` and
    set each field for every object; the worker processes send each story back with dozens
    of Evidence records, and unpickling them that way took 0.28 ms a story (0.08 now).
    """
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    if len(names) < 2 or not all(f.init for f in fields(cls)):  # type: ignore[arg-type]
        raise TypeError(f"{cls.__name__}: needs two or more fields, all __init__ arguments")

    values = attrgetter(*names)  # one C call, the values as a tuple

    def reduce(self: T) -> tuple[type[T], tuple[Any, ...]]:
        return cls, values(self)

    setattr(cls, "__reduce__", reduce)  # noqa: B010 (a method of the class being made)
    return cls


@dataclass(frozen=True, slots=True)
class MailboxState:
    """The mailbox a source has opened: its name and UIDVALIDITY.

    UIDVALIDITY 0 means the source has no stable UIDs (a Maildir): it hands out each message
    once because ``mark_stored`` moves it away, and no checkpoint is kept.
    """

    mailbox: str
    uidvalidity: int


@_pickled_by_fields
@dataclass(frozen=True, slots=True, weakref_slot=True)
class RawMessage:
    """One message exactly as the server holds it. Key: (mailbox, uidvalidity, uid).

    ``too_large`` means ``data`` holds only the header block: the message was bigger than
    ``max_message_bytes`` and was deliberately not downloaded whole (``size`` is the real size).
    """

    mailbox: str
    uidvalidity: int
    uid: int
    internal_at: datetime
    size: int
    data: bytes
    too_large: bool = False

    @property
    def key(self) -> tuple[str, int, int]:
        """The message's identity on the server."""
        return (self.mailbox, self.uidvalidity, self.uid)


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Staged:
    """A fetched message whose raw bytes wait in the store's staging folder, not in memory.

    What stands for a message between fetch and the batch commit when parse workers are used
    (``intake.store.staging``): a worker reads the bytes by ``key``, the commit reads them back
    as it stores them, so no process holds more than one batch of them. ``file`` names the
    batch's file in the staging folder, and ``offset`` and ``length`` the message's bytes in it.
    """

    mailbox: str
    uidvalidity: int
    uid: int
    internal_at: datetime
    size: int
    too_large: bool
    file: str
    offset: int
    length: int

    @property
    def key(self) -> tuple[str, int, int]:
        """The message's identity on the server."""
        return (self.mailbox, self.uidvalidity, self.uid)


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages fetched together; ``last_uid`` is the checkpoint once they are committed.

    ``last_uid`` may be above every message's UID: messages that vanished between SEARCH and
    FETCH are skipped, but the checkpoint still moves past them. ``remaining`` is how many
    messages the source still has to hand out after this batch (for progress; 0 if unknown).
    """

    messages: tuple[RawMessage, ...]
    last_uid: int
    remaining: int = 0
    # Stored stories the messages answer (In-Reply-To/References): (story_id, sender address,
    # its text), for the clean stage to recognise when pasted without quote marks (issue 22).
    earlier: tuple[tuple[str, str, str], ...] = ()


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Address:
    """A display name and an address, as decoded from a header ("" when absent)."""

    name: str
    address: str


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Attachment:
    """Attachment metadata only: the bytes are never written anywhere."""

    name: str
    content_type: str
    size: int


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Story:
    """One email, parsed: the sender's own words separated from everything around them.

    ``story_id`` is the normalised Message-ID, or ``sha256:<hex>`` of the raw bytes when the
    message has none. ``text`` is the sender's own words; ``quoted``, ``signature`` and
    ``footer`` keep what was separated from them. ``headers`` holds only the headers that
    decide whether to acknowledge (name lower-cased, every instance kept, in order).
    """

    story_id: str
    sender: Address
    recipients: tuple[Address, ...]
    subject: str
    sent_at: datetime | None
    received_at: datetime
    text: str
    quoted: str
    signature: str
    footer: str
    forwarded: bool
    html_only: bool
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    source: tuple[str, int, int]


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a label was given: a span of ``Story.text`` (``text == story.text[start:end]``)."""

    label: str
    rule: str
    start: int
    end: int
    text: str


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Triage:
    """The tagger's judgement on one story.

    ``kind`` is ``story``, ``request:<type>`` or ``automated`` (``Kind``). ``scores`` holds
    every theme's score in [0, 1]; ``themes`` those at or above their threshold; ``evidence``
    the spans behind every theme and behind a request kind, the first of each distinct phrase
    per label.
    ``review_reasons`` says why a person should look; ``agencies`` the agencies the story
    names (label: the agency, from themes.toml's [agencies]), whatever its kind.
    """

    story_id: str
    kind: str
    themes: tuple[str, ...]
    scores: tuple[tuple[str, float], ...]
    evidence: tuple[Evidence, ...]
    review_reasons: tuple[str, ...]
    agencies: tuple[Evidence, ...] = ()  # each agency named, first span of each phrase

    @property
    def needs_review(self) -> bool:
        """True when the tagger is unsure and a person should look."""
        return bool(self.review_reasons)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """The acknowledgement decided for one story, and how far sending it has got.

    ``reason`` is ``send``, ``send_withdrawal`` or a suppression reason code; ``state`` is a
    ``ReplyState``: ``pending``, ``sending``, ``sent``, ``failed``, ``held`` or ``suppressed``.
    ``urgent`` marks crisis wording, whatever the decision, for the digest to show first.
    ``sending`` survives only a crash mid-send: the next run turns it into ``held`` for a
    person to check, because the message may or may not have gone.
    """

    story_id: str
    reason: str
    template: str
    to: str
    state: str
    attempts: int = 0
    urgent: bool = False


# The reason of a ``held`` acknowledgement that waits for a person to confirm a request that
# changes data (the message was not authenticated); ``release --story`` is the confirmation.
UNVERIFIED_REQUEST = "unverified_request"
# Where the first digest window starts: before any story.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


class StoryStatus(StrEnum):
    """Where a stored story has got to."""

    RECEIVED = "received"
    TAGGED = "tagged"
    ACKNOWLEDGED = "acknowledged"
    ON_HOLD = "on_hold"  # its sender asked to withdraw: kept out of the digest
    PURGED = "purged"  # retention took its body


class ReplyState(StrEnum):
    """How far an acknowledgement has got (the outbox's ``state``; see ``Acknowledgement``)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"
    SUPPRESSED = "suppressed"

    @staticmethod
    def shown(state: str, reason: str) -> str:
        """What the export, the digest and the counts call an acknowledgement in ``state``:
        ``suppressed:<reason>`` for a suppressed one, else its state."""
        return f"suppressed:{reason}" if state == ReplyState.SUPPRESSED else state


class DigestState(StrEnum):
    """How far a digest has got (see ``Digest``); ``skipped``: empty, and send_empty is off."""

    OPEN = "open"
    RENDERED = "rendered"
    SENDING = "sending"
    SENT = "sent"
    WRITTEN = "written"
    SKIPPED = "skipped"


class Kind(StrEnum):
    """What the tagger found a message to be (``Triage.kind``): a story, a request of one of
    these types, or automated mail. A ``request:<type>`` outside this list is a request too."""

    STORY = "story"
    AUTOMATED = "automated"
    WITHDRAWAL = "request:withdrawal"
    AMEND = "request:amend"
    UNSUBSCRIBE = "request:unsubscribe"
    QUESTION = "request:question"
    PRESS = "request:press"
    EVENT = "request:event"

    @staticmethod
    def is_request(kind: str) -> bool:
        """Whether ``kind`` is a request (``request:<type>``), listed here or not."""
        return kind.startswith("request:")


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Quarantined:
    """A message a stage could not handle, kept whole with the stage and the reason."""

    raw: RawMessage | Staged
    stage: str
    reason: str
    detail: str


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Processed:
    """A message that went through every stage: where it came from, its story, its triage."""

    raw: RawMessage | Staged
    story: Story
    triage: Triage


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One batch after parse and tag: its checkpoint and what became of each message (each
    tuple in the batch's order). What the store commits, and the pipeline marks and
    acknowledges."""

    last_uid: int
    remaining: int
    processed: tuple[Processed, ...]
    quarantined: tuple[Quarantined, ...]

    @property
    def raws(self) -> list[RawMessage | Staged]:
        """Every message of the batch, processed or quarantined."""
        return [p.raw for p in self.processed] + [q.raw for q in self.quarantined]


@dataclass(frozen=True, slots=True)
class RunCounts:
    """What one pass did; ``once --json`` prints these."""

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    too_large: int = 0
    tagged: int = 0
    acknowledged: int = 0
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One stored story as the digest sees it; ``triage.digest.sections`` turns it into an excerpt.

    ``acknowledgement`` is the outbox state (``sent``, ``held``, ``suppressed:<reason>``, …) or
    None before a decision; ``urgent`` marks crisis wording.
    """

    story: Story
    triage: Triage | None
    acknowledgement: str | None
    urgent: bool
    on_hold: bool = False  # its sender asked to withdraw: kept out of the digest


@dataclass(frozen=True, slots=True)
class IntakeHealth:
    """How intake went in one digest window: counts only, never a person's details.

    ``quarantine_reasons`` and ``acknowledgements`` are (name, count) pairs, e.g.
    ``("parse: ParseError", 2)`` and ``("suppressed:list_mail", 5)``; ``held`` counts
    acknowledgements waiting for a person now, whenever they were decided.
    """

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantine_reasons: tuple[tuple[str, int], ...] = ()
    acknowledgements: tuple[tuple[str, int], ...] = ()
    held: int = 0
    failed_polls: int = 0


@dataclass(frozen=True, slots=True)
class Digest:
    """One digest window and how far sending it has got.

    Its stories are those it claimed when it opened (``intake.store.digest_claims``); ``start`` and
    ``end`` label the window and decide nothing. ``state`` is ``open``
    (stories claimed, nothing rendered yet), ``rendered`` (the message is stored, ready to go),
    ``sending``, ``sent``, or ``written`` (no recipients: only the .html file). ``data`` is the
    rendered message, kept so a retry after a crash sends the very same bytes.
    """

    digest_id: int
    start: datetime
    end: datetime
    state: str
    message_id: str = ""
    data: bytes = b""
    stories: int = 0
