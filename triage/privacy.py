"""Privacy: retention housekeeping, withdrawal holds and subject access (erasure is in
``triage.erasure``).

The store does the rows (``intake.store.privacy``); this module adds what lies outside it: the
digest files and acknowledgement files in the var folder, and the messages in the mailbox. It
finds a person's stories by their normalised address, the same way acknowledgements do.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from intake.records import Story, Triage
from intake.store.engine import Store
from intake.store.privacy import Cutoffs, Held
from intake.store.reply_events import ReplyEvent
from triage.erasure import Folders, Mailbox, finish_erasures, subject_access_paths
from triage.private_files import open_private_folder, write_private
from triage.reply.authenticity import is_authenticated
from triage.reply.identity import person_address, written_address
from triage.reply.policy import reference
from triage.tag.rules import STORY, WITHDRAWAL, is_guessed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """``[retention]``: how long each kind of stored data is kept, in days."""

    raw_days: int = 180
    body_days: int = 180
    quarantine_days: int = 180
    outbox_days: int = 30
    digest_days: int = 180
    audit_days: int = 365
    purge_mailbox: bool = False


def cutoffs(retention: RetentionSettings, now: datetime) -> Cutoffs:
    """The instants before which each kind of data has expired."""
    days = timedelta(days=1)
    return Cutoffs(raw=now - retention.raw_days * days, body=now - retention.body_days * days,
                   quarantine=now - retention.quarantine_days * days,
                   outbox=now - retention.outbox_days * days,
                   digest=now - retention.digest_days * days)  # fmt: skip


def housekeeping(
    store: Store, now: datetime, retention: RetentionSettings, folders: Folders,
    mailbox: Mailbox | None,
) -> dict[str, int]:  # fmt: skip
    """Purge everything past its retention period; returns what went, as counts."""
    finish_erasures(store, mailbox)  # an erasure a crash interrupted, first
    cut = cutoffs(retention, now)
    purge_mailbox = retention.purge_mailbox and mailbox is not None
    # The mailbox copies of what expires are recorded with it and deleted by that record.
    counts = store.privacy.purge_expired(cut, now if purge_mailbox else None)
    counts["digest_files"] = _remove_older(folders.digests.glob("digest-*.html"), cut.digest)
    audit_cut = now - timedelta(days=retention.audit_days)
    counts["audit_log"] = store.review.purge_audit(audit_cut)
    counts["outbox_events"] = store.reply_events.purge_events(audit_cut)  # shown beside it
    if folders.pickup is not None:
        counts["pickup_files"] = _remove_older(folders.pickup.glob("*.eml"), cut.outbox)
    if purge_mailbox:
        counts["mailbox_messages"] = finish_erasures(store, mailbox)["mailbox_messages"]
    store.erasure.checkpoint()
    log.info("housekeeping purged %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def stories_of(store: Store, address: str, same: Callable[[str], str] = person_address
               ) -> list[str]:  # fmt: skip
    """story_ids of every story (body still kept) from ``address``, both compared as
    ``same`` gives them (by default as a person: ``identity.person_address``)."""
    wanted = same(address)
    return [story_id for story_id, sender in store.privacy.senders()
            if sender and same(sender) == wanted]  # fmt: skip


def story_by_reference(store: Store, ref: str) -> list[str]:
    """The story a reference (``ST-…``) or a story_id names (empty when none)."""
    wanted = ref.strip().upper()
    return [story_id for story_id, _ in store.privacy.senders()
            if story_id == ref.strip() or reference(story_id) == wanted]  # fmt: skip


def hold_withdrawn(
    store: Store, tagged: Iterable[tuple[Story, Triage]], trusted: Sequence[str] = ()
) -> int:
    """Put a withdrawing sender's stories on hold, out of digests until someone erases them,
    when the team's border authenticated the withdrawal (``trusted`` authserv-ids) and it is
    no guess (``rules.is_guessed``); any other withdrawal waits for a person
    (``confirm_requests``).

    Returns how many were held. The request itself stays in the digest's requests section.
    """
    return sum(_hold_others(store, story) for story, triage in tagged
               if triage.kind == WITHDRAWAL and is_authenticated(story, trusted)
               and not is_guessed(triage.review_reasons))  # fmt: skip


def confirm_requests(store: Store, story_ids: Sequence[str]) -> dict[str, int]:
    """A person has confirmed these held requests (``release --story``): apply each
    withdrawal among them now. Returns how many requests were confirmed and how many
    stories that put on hold (empty when none of ``story_ids`` was waiting)."""
    waiting = set(store.outbox.needs_confirmation()) & set(story_ids)
    if not waiting:
        return {}
    held_about = store.privacy.held_about(sorted(waiting))
    on_hold = sum(_hold_others(store, held.story) for held in held_about
                  if held.triage is not None and held.triage.kind == WITHDRAWAL)  # fmt: skip
    return {"confirmed": len(waiting), "on_hold": on_hold}


def _hold_others(store: Store, story: Story) -> int:
    if not story.sender.address:
        return 0
    # Exactly the address the request came From: a From that wraps someone else's (SRS)
    # is authenticated for the wrapper's domain only, and speaks for nobody else.
    others = [s for s in stories_of(store, story.sender.address, written_address)
              if s != story.story_id]  # fmt: skip
    count = store.privacy.hold(others)
    if count:
        log.info("withdrawal %s: %d stories on hold", reference(story.story_id), count)
    return count


def subject_access(store: Store, address: str, folder: Path, now: datetime) -> dict[str, Any]:
    """Write everything held about ``address`` into ``folder``: each story as .eml (when the
    raw message is still kept) and .txt, its tags and acknowledgement as .json, and an index.

    ``folder`` must be new or empty (UsageError otherwise); see ``triage.private_files``.
    """
    story_ids = stories_of(store, address)
    out = open_private_folder(folder)  # new or empty, 0700: nothing of ours written yet
    try:
        # Recorded before a byte is written, so erasing this person removes it all.
        key = store.sender_key(person_address(address))
        store.erasure.record_subject_access(key, subject_access_paths(folder, story_ids), now)
        index = [_write_story(out, held, store.reply_events.events(held.story.story_id))
                 for held in store.privacy.held_about(story_ids)]  # fmt: skip
        summary = {"address": address, "prepared_at": now.isoformat(), "stories": index}
        write_private(out, "index.json", json.dumps(summary, indent=2).encode("utf-8"))
    finally:
        os.close(out)
    return {"folder": str(folder), "stories": len(index)}


def _record(
    ref: str, story: Story, triage: Triage | None, stored_at: datetime, status: str,
    acknowledgement: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "reference": ref, "story_id": story.story_id, "subject": story.subject,
        "sender": {"name": story.sender.name, "address": story.sender.address},
        "sent_at": story.sent_at.isoformat() if story.sent_at else None,
        "received_at": story.received_at.isoformat(), "stored_at": stored_at.isoformat(),
        "status": status, "kind": triage.kind if triage else STORY,
        "themes": list(triage.themes) if triage else [],
        "scores": dict(triage.scores) if triage else {},
        "evidence": [e.text for e in triage.evidence] if triage else [],
        "attachments": [{"name": a.name, "type": a.content_type, "size": a.size}
                        for a in story.attachments],
        "acknowledgement": acknowledgement,
    }  # fmt: skip


def _write_story(out: int, held: Held, history: Sequence[ReplyEvent]) -> dict[str, Any]:
    """Write one story's .eml (when the raw message is still kept), .txt and .json (with
    its reply's history: whether a person or the pipeline acted, not which person)."""
    ref = reference(held.story.story_id)
    if held.raw is not None:
        write_private(out, f"{ref}.eml", held.raw)
    text = "\n\n".join(p for p in (held.story.text, held.story.quoted, held.story.signature) if p)
    write_private(out, f"{ref}.txt", text.encode("utf-8"))
    record = _record(ref, held.story, held.triage, held.stored_at, held.status,
                     held.acknowledgement)  # fmt: skip
    record["reply_history"] = [_event(e) for e in history]
    write_private(out, f"{ref}.json", json.dumps(record, indent=2).encode("utf-8"))
    return record


def _event(event: ReplyEvent) -> dict[str, str]:
    by = "team" if event.who else "pipeline"  # a colleague's name is not the person's data
    return {"at": event.at.isoformat(), "state": event.state, "detail": event.detail, "by": by}


def _remove_older(paths: Iterable[Path], before: datetime) -> int:
    removed = 0
    for path in paths:
        if path.stat().st_mtime < before.timestamp():
            path.unlink()
            removed += 1
    return removed
