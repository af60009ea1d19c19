"""Store stage, erasure: the record of an erasure's remaining work. SQLAlchemy Core.

A table group of ``Store`` (``store.erasure``). The functions taking a connection add entries
inside the transaction that deletes the rows (``PrivacyRows.erase`` and ``purge_expired``), so a
crash after that commit leaves the files and mailbox copies listed; ``triage.erasure`` carries
them out and removes each entry once done. SQLite is told to overwrite what it deletes
(``secure_delete``, set on every connection) and ``checkpoint`` empties the WAL, so deleted text
is left in neither free pages nor the log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from intake.copies import MailboxCopy, copy_fields
from intake.store import dialect, schema
from intake.store.group import TableGroup

FILE, FOLDER, COPY = "file", "folder", "copy"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file or folder an erasure still has to remove."""

    entry_id: int
    kind: str  # FILE or FOLDER (removed only when empty: it may hold what is not ours)
    path: str


class ErasureRows(TableGroup):
    """Erasure record queries (``store.erasure``)."""

    def pending_files(self) -> list[FileEntry]:
        """Files and folders erasures still have to remove, files first."""
        e = schema.erasures.c
        query = select(e.id, e.kind, e.path).where(e.kind != COPY).order_by(e.kind, e.id)
        with self._connect() as conn:
            found = [FileEntry(int(r[0]), str(r[1]), str(r[2])) for r in conn.execute(query)]
        return sorted(found, key=lambda f: f.kind == FOLDER)  # a folder after its files

    def pending_copies(self) -> list[MailboxCopy]:
        """Mailbox copies erasures (and retention) still have to delete."""
        e = schema.erasures.c
        query = select(e.id, e.mailbox, e.uidvalidity, e.uid, e.story_id, e.digest, e.size,
                       e.too_large).where(e.kind == COPY).order_by(e.id)  # fmt: skip
        with self._connect() as conn:
            return [MailboxCopy(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]),
                                str(r[5]), int(r[6]), bool(r[7]))
                    for r in conn.execute(query)]  # fmt: skip

    def erasures_done(self, entry_ids: Sequence[int]) -> None:
        """Forget these entries: their files or copies are gone."""
        with self._begin() as conn:
            conn.execute(delete(schema.erasures).where(schema.erasures.c.id.in_(list(entry_ids))))

    def record_subject_access(
        self, sender_key: str, paths: Sequence[tuple[str, str]], now: datetime
    ) -> None:
        """Remember the (kind, path) pairs ``subject-access`` writes for this person."""
        rows = [{"sender_key": sender_key, "kind": kind, "path": path, "created_at": now}
                for kind, path in paths]  # fmt: skip
        if rows:
            with self._begin() as conn:
                conn.execute(insert(schema.subject_access_files), rows)

    def quarantine_raw(self) -> Iterator[tuple[int, bytes]]:
        """(id, raw bytes) of every quarantined message."""
        q = schema.quarantine.c
        with self._connect() as conn:
            yield from ((int(r[0]), bytes(r[1])) for r in conn.execute(select(q.id, q.data)))

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the database and truncate it (SQLite; a no-op elsewhere);
        returns SQLite's (busy, log frames, checkpointed frames)."""
        with self._connect() as conn:
            return dialect.checkpoint(conn)


def add_files(conn: Connection, files: Sequence[tuple[str, str]], now: datetime) -> None:
    """Entries for (kind, path) pairs to remove."""
    rows = [{"kind": kind, "path": path, "created_at": now} for kind, path in files]
    if rows:
        conn.execute(insert(schema.erasures), rows)


def take_subject_access(conn: Connection, sender_key: str, now: datetime) -> int:
    """Move what ``subject-access`` wrote for this person into erasure entries; returns
    how many paths."""
    a = schema.subject_access_files
    found = [(str(r[0]), str(r[1])) for r in conn.execute(
        select(a.c.kind, a.c.path).where(a.c.sender_key == sender_key))]  # fmt: skip
    add_files(conn, found, now)
    conn.execute(delete(a).where(a.c.sender_key == sender_key))
    return len(found)


def add_story_copies(conn: Connection, story_ids: Sequence[str], now: datetime) -> int:
    """Entries for the mailbox copies of these stories (before their rows go); returns how
    many."""
    s, r = schema.stories, schema.raw_messages
    query = (select(s.c.story_id, s.c.mailbox, s.c.uidvalidity, s.c.uid, r.c.size,
                    r.c.too_large)
             .outerjoin(r, r.c.story_id == s.c.story_id)
             .where(s.c.story_id.in_(list(story_ids))))  # fmt: skip
    rows = [_copy_row(row[1], row[2], row[3], now,
                      **copy_fields(str(row[0]), int(row[4] or 0), bool(row[5])))
            for row in conn.execute(query)]  # fmt: skip
    if rows:
        conn.execute(insert(schema.erasures), rows)
    return len(rows)


def add_quarantine_copies(conn: Connection, *where: Any, now: datetime) -> int:
    """Entries for the mailbox copies of the quarantined messages ``where`` selects."""
    q = schema.quarantine.c
    query = select(q.mailbox, q.uidvalidity, q.uid, q.digest, q.size, q.too_large).where(*where)
    rows = [_copy_row(row[0], row[1], row[2], now, story_id="", digest=str(row[3]),
                      size=int(row[4]), too_large=bool(row[5]))
            for row in conn.execute(query)]  # fmt: skip
    if rows:
        conn.execute(insert(schema.erasures), rows)
    return len(rows)


def _copy_row(
    mailbox: str, uidvalidity: int, uid: int, now: datetime, **identity: object
) -> dict[str, object]:
    return {"kind": COPY, "mailbox": mailbox, "uidvalidity": uidvalidity, "uid": uid,
            "created_at": now, **identity}  # fmt: skip
