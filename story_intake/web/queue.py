"""The review page, the queue: what needs a person first, then new stories by theme.

Sections in order: requests awaiting confirmation, urgent (crisis wording), needs review,
then new stories by their first theme. Filters: theme, kind, received since a date,
reviewed or not, and a reference search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from intake.records import Story, Triage
from intake.store.engine import Store
from triage.reply.policy import reference


@dataclass(frozen=True, slots=True)
class Filters:
    """What the queue is narrowed to ("" means any)."""

    theme: str = ""
    kind: str = ""
    since: str = ""  # YYYY-MM-DD
    reviewed: str = ""  # "yes", "no" or ""
    ref: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Filters:
        """The filters a query string asks for (unknown values are ignored)."""
        since = query.get("since", "")
        try:
            date.fromisoformat(since)
        except ValueError:
            since = ""
        reviewed = query.get("reviewed", "")
        return cls(
            query.get("theme", "")[:64],
            query.get("kind", "")[:64],
            since,
            reviewed if reviewed in ("yes", "no") else "",
            query.get("ref", "")[:32],
        )


@dataclass(frozen=True, slots=True)
class Item:
    """One story in the queue."""

    reference: str
    subject: str
    sender: str
    received_at: datetime
    kind: str
    themes: tuple[str, ...]
    reasons: tuple[str, ...]
    acknowledgement: str
    reviewed: bool


def build_queue(store: Store, reviewed: Mapping[str, str], filters: Filters
                ) -> list[tuple[str, list[Item]]]:  # fmt: skip
    """The queue's sections (title, items), only the non-empty ones, newest first within."""
    waiting, urgent = set(store.outbox.needs_confirmation()), store.outbox.urgent_ids()
    states = store.outbox.outbox_states()
    sections: dict[str, list[Item]] = {"Requests awaiting confirmation": [], "Urgent": [],
                                       "Needs review": []}  # fmt: skip
    for story, triage in store.stories.triaged():
        if not _wanted(story, triage, reviewed, filters):
            continue
        item = _item(story, triage, states.get(story.story_id, ""),
                     story.story_id in reviewed)  # fmt: skip
        if story.story_id in waiting:
            title = "Requests awaiting confirmation"
        elif story.story_id in urgent:
            title = "Urgent"
        elif item.reasons and not item.reviewed:
            title = "Needs review"
        else:
            title = f"New: {item.themes[0]}" if item.themes else "New: no theme"
        sections.setdefault(title, []).append(item)
    return [(title, sorted(items, key=lambda i: i.received_at, reverse=True))
            for title, items in sections.items() if items]  # fmt: skip


def _item(story: Story, triage: Triage | None, ack: str, reviewed: bool) -> Item:
    return Item(reference(story.story_id), story.subject, story.sender.name or
                story.sender.address, story.received_at, triage.kind if triage else "",
                triage.themes if triage else (), triage.review_reasons if triage else (),
                ack, reviewed)  # fmt: skip


def _wanted(story: Story, triage: Triage | None, reviewed: Mapping[str, str],
            filters: Filters) -> bool:  # fmt: skip
    if filters.ref and reference(story.story_id) != filters.ref.strip().upper():
        return False
    if filters.theme and (triage is None or filters.theme not in triage.themes):
        return False
    if filters.kind and (triage is None or triage.kind != filters.kind):
        return False
    if filters.since and story.received_at.date() < date.fromisoformat(filters.since):
        return False
    if filters.reviewed:
        return (story.story_id in reviewed) == (filters.reviewed == "yes")
    return True
