"""The commands that act on one person's data or one story's reply: ``erase``,
``subject-access``, ``release`` and ``resubscribe``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from intake.errors import UsageError
from intake.records import ReplyState
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.jobs import privacy_mailbox, var_folders
from triage.erasure import erase
from triage.privacy import confirm_requests, stories_of, story_by_reference, subject_access
from triage.reply.identity import mailbox_identity
from triage.reply.send_watch import resume


def erase_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``erase --sender ADDRESS | --story REF [--dry-run]``."""
    with Store(settings.store) as store:
        ids = stories_of(store, args.sender) if args.sender else named_story(store, args.story)
        with privacy_mailbox(settings) as mailbox:
            done = erase(store, ids, var_folders(settings), settings.smtp.from_address, mailbox,
                         now, address=args.sender or "", dry_run=args.dry_run)  # fmt: skip
    print(json.dumps(done, indent=2))
    return 0


def subject_access_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``subject-access --sender ADDRESS [--out DIR]``."""
    folder = Path(args.out or f"var/subject-access/{now:%Y%m%dT%H%M%SZ}")
    with Store(settings.store) as store:
        print(json.dumps(subject_access(store, args.sender, folder, now), indent=2))
    return 0


def release_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``release --story REF | --all [--as-sent]``."""
    with Store(settings.store) as store:
        ids = None if args.all else named_story(store, args.story)
        state = ReplyState.SENT if args.as_sent else ReplyState.PENDING
        # Naming a held request confirms it: its withdrawal applies before the reply.
        confirmed = confirm_requests(store, ids) if ids else {}
        released = store.outbox.release_held(ids, state, now, "cli")
        out = {"released": released, "as": state, **confirmed}
        if args.all:  # everything held has been looked at: sending resumes too
            out["resumed"] = resume(store, now)
        print(json.dumps(out))
    return 0


def resubscribe_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``resubscribe --sender ADDRESS``: the person asked to hear from us again."""
    with Store(settings.store) as store:
        key = store.sender_key(mailbox_identity(args.sender))
        print(json.dumps({"lifted": store.unsubscribe.lift_unsubscribe(key)}))
    return 0


def named_story(store: Store, ref: str) -> list[str]:
    """The story ``ref`` names; UsageError (exit 2) when the store holds none, so a mistyped
    reference is not mistaken for a story released or erased."""
    story_ids = story_by_reference(store, ref)
    if not story_ids:
        raise UsageError(f"no story {ref.strip().upper()} in the store")
    return story_ids
