"""The review page, what the stories add up to: which agencies appear together in
``duplication`` stories over the last 30 days (the digest's own pairing,
``triage.digest.agencies``), a story's reply history, and the OAuth2 token's expiry.

Plain functions of the store: ``pages`` renders them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from intake.records import DigestEntry
from intake.store.engine import Store
from story_intake.app_settings import Settings
from triage.digest.agencies import AgencyPair, agency_pairs
from triage.reply.policy import reference

WINDOW = timedelta(days=30)
MAX_PAIRS = 50  # the page lists more than the digest (20); export has every story's agencies


def recent_entries(store: Store, now: datetime) -> Iterator[DigestEntry]:
    """The stories received in the last 30 days as the digest sees them (stories on hold
    marked so, which the pairing leaves out as the digest does)."""
    since, held = now - WINDOW, set(store.privacy.on_hold())
    for story, triage in store.stories.triaged():
        if story.received_at >= since:
            yield DigestEntry(story, triage, None, False, story.story_id in held)


def recent_pairs(store: Store, now: datetime) -> tuple[AgencyPair, ...]:
    """Agencies named together in the last 30 days' duplication stories, most frequent first."""
    return agency_pairs(recent_entries(store, now), MAX_PAIRS)


def pair_stories(store: Store, now: datetime, first: str, second: str
                 ) -> list[tuple[str, str]]:  # fmt: skip
    """(reference, subject) of the last 30 days' duplication stories naming both agencies."""
    wanted = tuple(sorted((first, second)))
    refs: set[str] = set()
    for pair in recent_pairs(store, now):
        if (pair.first, pair.second) == wanted:
            refs = set(pair.references)
    return [(reference(e.story.story_id), e.story.subject) for e in recent_entries(store, now)
            if reference(e.story.story_id) in refs]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReplyEvent:
    """One thing that happened to a story's reply: when, what, and who ("" for the pipeline)."""

    at: datetime
    what: str
    who: str = ""


REPLY_ACTIONS = ("release_reply", "reject_request", "confirm_withdrawal")


def reply_history(store: Store, story_id: str) -> tuple[dict[str, Any] | None, list[ReplyEvent]]:
    """The outbox's record of the reply and its events, oldest first: the decision, the
    people's actions on it (from the audit log), and the latest state change. The outbox
    keeps only the current state, so the states in between are not shown."""
    record = store.review.reply_record(story_id)
    events = [ReplyEvent(e.at, e.action.replace("_", " "), e.user)
              for e in store.review.audit_entries(reference=reference(story_id))
              if e.action in REPLY_ACTIONS]  # fmt: skip
    if record is not None:
        events.append(ReplyEvent(record["created_at"], f"decided: {record['reason']} "
                                 f"({record['template']})"))  # fmt: skip
        events.append(ReplyEvent(record["updated_at"], f"now {record['state']}"))
    return record, sorted(events, key=lambda e: e.at)


def token_expiry(settings: Settings, store: Store) -> datetime | None:
    """When the mailbox's OAuth2 token expires, when the mailbox logs in by OAuth2 and has
    done so (the expiry only: tokens are never stored)."""
    if getattr(settings.mailbox, "auth", "") != "oauth2":
        return None
    found = store.worker.token_expiry()
    return datetime.fromisoformat(found) if found else None
