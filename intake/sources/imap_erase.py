"""Fetch stage, IMAP erasure: delete the copies the store recorded, and nothing else. May
import imapclient (through the client ``intake.sources.imap`` hands over).

Candidates come from the recorded identity (folder, UIDVALIDITY, UID) and from a SEARCH of
the folders the pipeline owns: the processed folder, and in the watched folder only what it
marked ``$Triaged``. IMAP's ``HEADER`` search matches substrings (``<7@x>`` finds ``<17@x>``),
so a candidate is deleted only when confirmed exactly (``intake.copies.is_copy``); then
``\\Deleted`` and ``UID EXPUNGE`` of exactly those UIDs, so a person's own deletions stay
undone. A folder whose UIDVALIDITY changed since the fetch is not trusted by UID: only the
searched, confirmed candidates there are deleted.
"""

from __future__ import annotations

from collections.abc import Sequence

from imapclient import IMAPClient

from intake.copies import MailboxCopy, fetch_item, is_copy, search_criteria

TRIAGED = "$Triaged"


def erase_in_folder(
    client: IMAPClient, folder: str, copies: Sequence[MailboxCopy], owned: bool
) -> int:
    """Delete the confirmed copies in ``folder``; returns how many messages went. ``owned``:
    the folder holds only what the pipeline put there (the processed folder)."""
    selected = client.select_folder(folder)
    uidvalidity = int(selected[b"UIDVALIDITY"])
    confirmed: set[int] = set()
    for copy in copies:
        candidates = set()
        if copy.mailbox == folder and copy.uidvalidity == uidvalidity:
            candidates.add(copy.uid)
        criteria = search_criteria(copy)
        if criteria is not None:
            mine: list[object] = [] if owned else ["KEYWORD", TRIAGED]
            candidates.update(client.search([*mine, *criteria]))
        confirmed.update(_confirm(client, copy, candidates - confirmed))
    if confirmed:
        uids = sorted(confirmed)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        client.uid_expunge(uids)
    return len(confirmed)


def _confirm(client: IMAPClient, copy: MailboxCopy, candidates: set[int]) -> set[int]:
    """The candidates that are exactly this copy."""
    if not candidates:
        return set()
    item, key = fetch_item(copy)
    rows = client.fetch(sorted(candidates), [item])
    # Rows without the item (a FETCH the server adds unasked) are keyed by sequence number.
    return {uid for uid, row in rows.items()
            if uid in candidates and key in row and is_copy(copy, bytes(row[key]))}  # fmt: skip
