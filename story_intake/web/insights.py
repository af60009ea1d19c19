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
class HistoryLine:
    """One line of a story's reply history: when, the state it reached (empty for a person's
    action from the audit log), what explains it, and who ("" for the pipeline)."""

    at: datetime
    state: str
    detail: str = ""
    who: str = ""


REPLY_ACTIONS = ("release_reply", "reject_request", "confirm_withdrawal")

# What the reason codes of the reply history mean (a suppression reason is shown as it is).
DETAILS = {
    "released": "released by a person",
    "interrupted": "interrupted mid-send: check before releasing",
    "not_a_request": "not a request: the ordinary acknowledgement goes",
    "found_sent": "found among the sent messages",
    "render_error": "could not be rendered",
    "smtp_4xx": "attempt failed: the server said try later (4xx)",
    "smtp_5xx": "attempt failed: the server refused it (5xx)",
    "temporary": "attempt failed: no answer from the server",
    "refused": "attempt failed: it cannot be sent as it is",
}


def reply_history(store: Store, story_id: str) -> tuple[dict[str, Any] | None, list[HistoryLine]]:
    """The outbox's record of the reply and its history, oldest first: every state it went
    through (the first one with its decision), merged with the people's actions on it from
    the audit log."""
    record = store.review.reply_record(story_id)
    actions = [HistoryLine(e.at, "", e.action.replace("_", " "), e.user)
               for e in reversed(store.review.audit_entries(reference=reference(story_id)))
               if e.action in REPLY_ACTIONS]  # fmt: skip
    changes = store.reply_events.events(story_id)
    states = [HistoryLine(e.at, e.state, _explained(e.detail, first=n == 0), e.who)
              for n, e in enumerate(changes)]  # fmt: skip
    if record is not None and not changes:  # decided before the history was kept
        states = [HistoryLine(record["created_at"], "", f"decided: {record['reason']}"),
                  HistoryLine(record["updated_at"], record["state"])]  # fmt: skip
    # A stable sort: at the same instant a person's action comes before what it changed.
    return record, sorted([*actions, *states], key=lambda e: e.at)


def _explained(detail: str, first: bool) -> str:
    if first:  # the decision: send, or why not
        return f"decided: {detail}"
    return DETAILS.get(detail, detail)


def token_expiry(settings: Settings, store: Store) -> dict[str, datetime]:
    """When each channel's OAuth2 token expires (``mailbox``, ``smtp``), for the channels that
    log in by OAuth2 and have done so (the expiry only: tokens are never stored)."""
    found = {}
    if getattr(settings.mailbox, "auth", "") == "oauth2":
        found["mailbox"] = store.worker.token_expiry()
    if settings.smtp.auth == "oauth2":
        found["smtp"] = store.worker.token_expiry("smtp")
    return {channel: datetime.fromisoformat(at) for channel, at in found.items() if at}
