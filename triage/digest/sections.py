"""Digest stage, the content: a window's stories -> the sections the team reads. Pure.

Each story is shown once, in the first section that applies, in the order the team acts on
them: requests (withdrawals first), urgent stories, stories that need review, its strongest
theme, no theme; then intake health and its change since the last digest. A story's card
shows its reference, when the person sent it, first name, every theme as a chip with its
score, the subject and an excerpt of about 300 characters, both redacted before anything
else happens to them. Redaction fails closed: if it raises, subject and excerpt are left out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from intake.records import BEGINNING, DigestEntry, IntakeHealth, Story, Triage
from triage.digest.agencies import AgencyPair, PairTally
from triage.digest.redact import redact
from triage.reply.policy import reference
from triage.reply.render import first_name
from triage.tag.judge import phrase
from triage.tag.rules import AUTOMATED, STORY, WITHDRAWAL

log = logging.getLogger(__name__)
EXCERPT_CHARACTERS = 300
MAX_PER_SECTION = 50
_CONTEXT_BEFORE = 80  # characters shown before the first evidence, so it reads in context
_NAME_PART = re.compile(r"[^\W\d_]{2,}")
# A Date header older than this before the message reached the server is not believed (a
# wrong clock, or a forged date to sort a story out of sight): arrival is shown instead.
PLAUSIBLE_DELAY = timedelta(days=30)
SUBJECT_CHARACTERS = 120

Segment = tuple[str, bool]  # a piece of excerpt text, and whether it is evidence to highlight


@dataclass(frozen=True, slots=True)
class StoryView:
    """One story as the digest shows it. ``excerpt`` is None when redaction failed."""

    reference: str
    sent: str  # when the person sent it (see ``sent_time``)
    first_name: str
    kind: str
    tags: tuple[tuple[str, float], ...]  # every theme, strongest first: the card's chips
    subject: str | None
    excerpt: tuple[Segment, ...] | None
    review_reasons: tuple[str, ...]
    acknowledgement: str
    urgent: bool


@dataclass(frozen=True, slots=True)
class Section:
    """A heading and its stories, in the order shown."""

    key: str
    title: str
    stories: tuple[StoryView, ...]
    count: int  # all the window's stories for this section; ``stories`` may stop short

    @property
    def more(self) -> int:
        """How many the section leaves out (``export`` lists them)."""
        return self.count - len(self.stories)


@dataclass(frozen=True, slots=True)
class Change:
    """One intake figure now and in the previous window (None: no previous digest)."""

    label: str
    now: int
    before: int | None

    @property
    def delta(self) -> str:
        """ "+3", "-2", "no change", or "" when there is nothing to compare with."""
        if self.before is None:
            return ""
        difference = self.now - self.before
        return f"{difference:+d}" if difference else "no change"


@dataclass(frozen=True, slots=True)
class DigestView:
    """Everything the digest templates show."""

    start: str
    end: str
    total: int
    automated: int
    sections: tuple[Section, ...]
    health: IntakeHealth
    changes: tuple[Change, ...]
    on_hold: int = 0  # stories left out because their senders asked to withdraw
    urgent: int = 0  # stories with crisis wording, whichever section shows them
    sending_stopped_at: str | None = None  # when the acknowledgement breaker tripped
    agency_pairs: tuple[AgencyPair, ...] = ()  # agencies named together in duplication stories


def build_digest(
    entries: Iterable[DigestEntry], health: IntakeHealth, previous: IntakeHealth | None,
    window: tuple[datetime, datetime], themes: Sequence[str], timezone: str,
) -> DigestView:  # fmt: skip
    """Group a window's stories into the digest's sections, in order.

    ``entries`` may be a stream: each is reduced to its small view as it comes.
    """
    zone = ZoneInfo(timezone)
    held = automated = 0
    shown = []
    tally = PairTally()
    for item in entries:
        tally.add(item)
        if item.on_hold:  # withdrawn: not even an excerpt until someone erases it
            held += 1
        elif _kind(item) == AUTOMATED:  # counted, never shown: no excerpt to redact
            automated += 1
        else:
            shown.append(view(item, zone))
    placed: dict[str, list[StoryView]] = {}
    for card in shown:
        placed.setdefault(section_of(card, themes), []).append(card)
    placed["requests"] = sorted(
        placed.get("requests", []), key=lambda v: v.kind != WITHDRAWAL
    )  # stable: then as received
    titles = [("requests", "Requests (withdrawals first)"), ("urgent", "Urgent: crisis wording"),
              ("review", "Needs review"),
              *((f"theme-{name}", name.replace("_", " ").capitalize()) for name in themes),
              ("none", "No theme")]  # fmt: skip
    sections = tuple(_section(key, title, placed.get(key, [])) for key, title in titles)
    start = "the beginning" if window[0] == BEGINNING else _when(window[0], zone)
    return DigestView(start, _when(window[1], zone), len(shown), automated, sections,
                      health, _changes(health, previous), held,
                      sum(1 for v in shown if v.urgent), agency_pairs=tally.pairs())  # fmt: skip


def section_of(story: StoryView, themes: Sequence[str]) -> str:
    """The key of the one section that shows ``story``: the most urgent that applies."""
    if story.kind != STORY:
        return "requests"
    if story.urgent:
        return "urgent"
    if story.review_reasons:
        return "review"
    known = [(score, -themes.index(name), name) for name, score in story.tags if name in themes]
    return f"theme-{max(known)[2]}" if known else "none"


def _section(key: str, title: str, views: list[StoryView]) -> Section:
    # A first import can bring thousands: the digest shows the first ones, export has all.
    return Section(key, title, tuple(views[:MAX_PER_SECTION]), len(views))


def view(entry: DigestEntry, zone: ZoneInfo) -> StoryView:
    """One story's line in the digest: never the full text, never the address."""
    story, triage = entry.story, entry.triage
    scores = dict(triage.scores) if triage else {}
    tags = tuple((t, round(scores.get(t, 0.0), 2)) for t in (triage.themes if triage else ()))
    redacted = redact_story(story, triage)
    return StoryView(
        reference=reference(story.story_id), sent=_when(sent_time(story), zone),
        first_name=first_name(story.sender.name), kind=_kind(entry),
        tags=tuple(sorted(tags, key=lambda tag: -tag[1])),  # stable: ties as tagged
        subject=redacted[0] if redacted else None, excerpt=redacted[1] if redacted else None,
        review_reasons=triage.review_reasons if triage else ("untagged",),
        acknowledgement=entry.acknowledgement or "undecided", urgent=entry.urgent,
    )  # fmt: skip


def safe_excerpt(story: Story, triage: Triage | None) -> tuple[Segment, ...] | None:
    """The redacted excerpt with evidence highlighted, or None if redaction failed."""
    redacted = redact_story(story, triage)
    return redacted[1] if redacted else None


def redact_story(story: Story, triage: Triage | None) -> tuple[str, tuple[Segment, ...]] | None:
    """The redacted subject (one line, at most SUBJECT_CHARACTERS) and excerpt (evidence
    highlighted), or None if redaction failed: then neither is shown.

    The whole text is redacted before the excerpt is cut, so an identifier can never be
    shown in part because the cut went through it.
    """
    anchor = min((e.start for e in triage.evidence), default=0) if triage else 0
    names = sender_names(story)
    try:
        subject = " ".join(redact(story.subject, names).split())
        text = redact(story.text, names)
        anchor = len(redact(story.text[:anchor], names))  # where the evidence moved to
    except Exception:  # fail closed: whatever went wrong, the raw text is never shown
        log.warning("redaction failed for %s: excerpt left out", reference(story.story_id))
        return None
    if len(subject) > SUBJECT_CHARACTERS:
        subject = subject[: SUBJECT_CHARACTERS - 1] + "…"
    terms = {phrase(e.text) for e in (triage.evidence if triage else ())}
    return subject, highlight(window_text(text, anchor), terms)


def sent_time(story: Story) -> datetime:
    """When the person sent the story: the Date header, unless it is missing, after the
    server's arrival time, or more than PLAUSIBLE_DELAY before it; then the arrival time."""
    sent, arrived = story.sent_at, story.received_at
    if sent is None or sent > arrived or sent < arrived - PLAUSIBLE_DELAY:
        return arrived
    return sent


def window_text(text: str, anchor: int, limit: int = EXCERPT_CHARACTERS) -> str:
    """About ``limit`` characters of ``text`` around ``anchor``, cut at spaces, whitespace
    collapsed, with an ellipsis where text was left out."""
    start = max(0, min(anchor, len(text)) - _CONTEXT_BEFORE)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    end = min(len(text), start + limit)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + limit // 2 else end
    piece = " ".join(text[start:end].split())
    return ("… " if start else "") + piece + (" …" if end < len(text) else "")


def highlight(text: str, terms: Iterable[str]) -> tuple[Segment, ...]:
    """``text`` split into segments, evidence terms (whole words, any case) marked."""
    wanted = sorted((t for t in terms if t.strip()), key=len, reverse=True)
    if not wanted:
        return ((text, False),) if text else ()
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in wanted) + r")\b", re.I)
    segments: list[Segment] = []
    done = 0
    for match in pattern.finditer(text):
        if match.start() > done:
            segments.append((text[done : match.start()], False))
        segments.append((match.group(), True))
        done = match.end()
    if done < len(text):
        segments.append((text[done:], False))
    return tuple(segments)


def sender_names(story: Story) -> tuple[str, ...]:
    """The sender's own names, from the display name and the address's local part."""
    local = story.sender.address.rpartition("@")[0]
    parts = _NAME_PART.findall(story.sender.name) + _NAME_PART.findall(local)
    return tuple(dict.fromkeys(p for p in parts if p.lower() not in {"mr", "mrs", "ms", "dr"}))


def _kind(entry: DigestEntry) -> str:
    return entry.triage.kind if entry.triage else STORY


def _when(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%a %d %b %Y %H:%M")


def _changes(health: IntakeHealth, before: IntakeHealth | None) -> tuple[Change, ...]:
    return (
        Change("messages fetched", health.fetched, before.fetched if before else None),
        Change("stories stored", health.stored, before.stored if before else None),
        Change("duplicates", health.duplicates, before.duplicates if before else None),
        Change("quarantined", health.quarantined, before.quarantined if before else None),
        Change("failed polls", health.failed_polls, before.failed_polls if before else None),
    )
