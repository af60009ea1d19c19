"""Privacy, erasure: a person's data, all of it, and only theirs.

The store deletes the rows and, in the same transaction, records what remains outside it
(``intake.store.erasure``): digest and acknowledgement files, what ``subject-access`` wrote
for the person, and the mailbox copies by their recorded identity. ``finish_erasures`` then
carries that record out, entry by entry; the next erase or housekeeping finishes whatever a
crash left. Quarantined mail is the person's when its From or Return-Path is their address,
normalised as stories' senders are (case, SRS and BATV wrappers).

Left alone on purpose: the suppression list of inboxes that unsubscribed
(``intake.store.unsubscribe``). It holds a keyed hash of the inbox, not the address, and no
story_id, and erasing someone who asked not to be mailed must not start mailing them again;
only ``resubscribe`` (the person asking) removes an entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Protocol

from intake.copies import MailboxCopy, header_block
from intake.store.engine import Store
from intake.store.erasure import FOLDER, FileEntry
from intake.store.privacy import ErasurePlan
from triage.reply.identity import person_address
from triage.reply.pickup import pickup_name
from triage.reply.policy import reference
from triage.reply.render import message_id_for

log = logging.getLogger(__name__)


class Mailbox(Protocol):
    """What privacy needs from a mailbox source (ImapSource and MaildirSource fit)."""

    def erase_copies(self, copies: Sequence[MailboxCopy]) -> int: ...


@dataclass(frozen=True, slots=True)
class Folders:
    """The var folders that hold copies: digests (.html) and the pickup folder (.eml)."""

    digests: Path
    pickup: Path | None  # None when mail goes out over SMTP


def erase(
    store: Store, story_ids: Sequence[str], folders: Folders, from_address: str,
    mailbox: Mailbox | None, now: datetime, *, address: str = "", dry_run: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Remove every stored trace of these stories and, given ``address``, of that person's
    quarantined mail and subject-access output: rows, digest copies, acknowledgement files
    and, with ``mailbox``, the messages themselves. Finishes an interrupted erasure first.
    Returns what was (or, with ``dry_run``, would be) removed."""
    earlier = {} if dry_run else finish_erasures(store, mailbox)
    quarantined = quarantine_of(store, address) if address else []
    files = [str(p) for p in _files_of(story_ids, folders, from_address) if p.exists()]
    key = store.sender_key(person_address(address)) if address else ""
    plan = ErasurePlan(story_ids, quarantined, files, key, mailbox is not None, now)
    removed: dict[str, Any] = {"stories": [reference(s) for s in story_ids]}
    removed["rows"] = store.privacy.erase(plan, dry_run=dry_run)
    removed["files"] = files
    if not dry_run:
        _checkpoint(store)  # the deleted rows' pages reach the database file now
        done = finish_erasures(store, mailbox)
        if mailbox is not None:
            removed["mailbox_messages"] = done["mailbox_messages"]
        else:  # say so: "every trace" would otherwise hide the mail still on the server
            removed["mailbox"] = "left as it is ([retention] purge_mailbox = false)"
        removed["finished_earlier"] = sum(earlier.values())
    log.info("erase%s: stories=%d quarantined=%d files=%d", " (dry run)" if dry_run else "",
             len(story_ids), len(quarantined), len(files))  # fmt: skip
    return removed


def finish_erasures(store: Store, mailbox: Mailbox | None) -> dict[str, int]:
    """Carry out what the erasure record still lists: files and folders, then (given a
    mailbox) the mailbox copies; each entry goes once done. Returns counts."""
    entries = store.erasure.pending_files()
    files = sum(_remove(entry) for entry in entries)
    store.erasure.erasures_done([e.entry_id for e in entries])
    copies = store.erasure.pending_copies() if mailbox is not None else []
    deleted = mailbox.erase_copies(copies) if mailbox is not None and copies else 0
    store.erasure.erasures_done([c.entry_id for c in copies])
    if entries or copies:
        _checkpoint(store)
        log.info("erasure record: files=%d copies=%d mailbox_messages=%d", files, len(copies),
                 deleted)  # fmt: skip
    return {"files": files, "mailbox_messages": deleted}


def quarantine_of(store: Store, address: str) -> list[int]:
    """Quarantined messages from ``address``: its From or Return-Path, normalised."""
    wanted = person_address(address)
    return [entry_id for entry_id, data in store.erasure.quarantine_raw()
            if wanted in senders_of(data)]  # fmt: skip


def senders_of(data: bytes) -> set[str]:
    """The normalised From and Return-Path addresses of a raw message (none when unreadable)."""
    headers = BytesHeaderParser().parsebytes(header_block(data))
    values = [str(v) for name in ("from", "return-path") for v in headers.get_all(name) or ()]
    try:
        pairs = getaddresses(values)
    except (ValueError, TypeError):  # a header too broken to hold an address
        return set()
    return {person_address(address) for _, address in pairs if "@" in address}


def subject_access_paths(folder: Path, story_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The (kind, path) pairs ``subject-access`` writes for these stories into ``folder``."""
    names = [f"{reference(s)}{suffix}" for s in story_ids for suffix in (".eml", ".txt", ".json")]
    files = [("file", str((folder / name).absolute())) for name in [*names, "index.json"]]
    return [*files, (FOLDER, str(folder.absolute()))]


def _files_of(story_ids: Sequence[str], folders: Folders, from_address: str) -> list[Path]:
    """The digest pages and acknowledgement files that name or answer these stories."""
    refs = {reference(s) for s in story_ids}
    digests = [p for p in folders.digests.glob("digest-*.html")
               if refs and any(r in p.read_text(errors="replace") for r in refs)]  # fmt: skip
    acks = [folders.pickup / pickup_name(message_id_for(s, from_address)) for s in story_ids
            ] if folders.pickup else []  # fmt: skip
    return [*digests, *acks]


def _checkpoint(store: Store) -> None:
    """Checkpoint the store; say so when a reader kept it from finishing (until the next one,
    the erased rows' old pages stay in the database file)."""
    busy, _, _ = store.erasure.checkpoint()
    if busy:
        log.warning("store checkpoint after erasure incomplete: a reader was active")


def _remove(entry: FileEntry) -> int:
    """Remove one file (or an empty folder); 1 if something went."""
    path = Path(entry.path)
    try:
        if entry.kind == FOLDER:
            path.rmdir()  # only when empty: a folder given to --out may hold what is not ours
        else:
            path.unlink()
    except FileNotFoundError:
        return 0
    except OSError as err:  # a folder with other files in it: those are left, and logged
        log.warning("erasure left %s in place: %s", entry.kind, type(err).__name__)
        return 0
    return 1
