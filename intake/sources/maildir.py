"""Fetch stage, embedded default: a local Maildir behind the same interface as ImapSource.

Stdlib only (``mailbox``). A Maildir has no UIDs, so the source hands out per-run sequence
numbers (UIDVALIDITY 0) and ``mark_stored`` moves each stored message into the ``processed``
sub-folder: what is left in the Maildir's root is, by definition, not yet stored.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from intake.copies import MailboxCopy, matching
from intake.errors import ConfigError, FetchError
from intake.records import Batch, MailboxState, RawMessage
from intake.sources.batching import BatchLimit, check_batch_limits

# A header block bigger than this is itself hostile; keep its start and let parse flag it.
MAX_HEADER_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class MaildirSettings:
    """The ``[mailbox]`` section when it names a local Maildir."""

    maildir: str
    processed_folder: str = "processed"
    batch_size: int = 100
    batch_bytes: int = 32_000_000
    max_message_bytes: int = 25_000_000

    def __post_init__(self) -> None:
        if not self.processed_folder:
            raise ConfigError("mailbox.processed_folder must be set for a Maildir")
        check_batch_limits(self.batch_size, self.batch_bytes)


class MaildirSource:
    """A Maildir as a source of RawMessages; use as a context manager."""

    def __init__(self, settings: MaildirSettings) -> None:
        self.settings = settings
        self._box: mailbox.Maildir | None = None
        self._keys: dict[int, str] = {}

    def __enter__(self) -> MaildirSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> MailboxState:
        """Open (creating if needed) the Maildir."""
        try:
            self._box = open_maildir(self.settings.maildir)
        except OSError as err:
            raise FetchError(f"Maildir: {type(err).__name__}: {err.strerror}") from err
        return MailboxState(f"maildir:{Path(self.settings.maildir).name}", 0)

    def fetch_new(self, state: MailboxState, last_uid: int) -> Iterator[Batch]:
        """Yield every message in the Maildir's root, in batches within ``batch_size`` and
        ``batch_bytes``; ``last_uid`` is unused."""
        box = self._require()
        try:
            keys = sorted(box.keys())
        except OSError as err:
            raise FetchError(f"Maildir: {type(err).__name__}: {err.strerror}") from err
        limit = BatchLimit(self.settings.batch_size, self.settings.batch_bytes)
        batch: list[RawMessage] = []
        for uid, key in enumerate(keys, start=1):
            size = self._held_size(box, key)
            if size is None:
                continue  # removed by someone else since the listing
            if not limit.fits(size):  # decided before reading: never a batch and one more
                yield Batch(tuple(batch), batch[-1].uid, len(keys) - batch[-1].uid)
                batch = []
                limit.restart()
            raw = self._read(box, state, uid, key)
            if raw is None:
                continue
            self._keys[uid] = key
            batch.append(raw)
            limit.add(len(raw.data))
            del raw  # the batch's alone: not kept while the next batch is read
        if batch:
            yield Batch(tuple(batch), batch[-1].uid)

    def _held_size(self, box: mailbox.Maildir, key: str) -> int | None:
        """The bytes reading this message will hold (its header block alone when too large)."""
        try:
            with box.get_file(key) as handle:
                handle.seek(0, 2)
                size = handle.tell()
        except KeyError:
            return None
        except OSError as err:
            raise FetchError(f"Maildir: {type(err).__name__}: {err.strerror}") from err
        return min(size, MAX_HEADER_BYTES) if size > self.settings.max_message_bytes else size

    def _read(
        self, box: mailbox.Maildir, state: MailboxState, uid: int, key: str
    ) -> RawMessage | None:
        try:
            with box.get_file(key) as handle:
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(0)
                too_large = size > self.settings.max_message_bytes
                data = _read_header(handle) if too_large else handle.read()
        except KeyError:
            return None
        except OSError as err:
            raise FetchError(f"Maildir: {type(err).__name__}: {err.strerror}") from err
        return RawMessage(state.mailbox, 0, uid, delivered_at(key), size, data, too_large)

    def mark_stored(self, uids: Sequence[int]) -> None:
        """Move stored messages into the processed sub-folder (copy first, then remove)."""
        box = self._require()
        try:
            done = box.add_folder(self.settings.processed_folder)
            for uid in uids:
                key = self._keys.pop(uid, None)
                if key is not None and key in box:
                    done.add(box.get_bytes(key))
                    box.discard(key)
        except OSError as err:
            raise FetchError(f"Maildir mark: {type(err).__name__}: {err.strerror}") from err

    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> set[str]:
        """A Maildir has no Sent folder to confirm anything from."""
        return set()

    def erase_copies(self, copies: Sequence[MailboxCopy]) -> int:
        """Delete these recorded copies, processed or not, each confirmed exactly by its
        Message-ID or the digest of its bytes (a Maildir has no lasting UIDs); returns how
        many messages went. Messages not among them are left alone, whatever they contain."""
        box = self._require()
        removed = 0
        try:
            for folder in (box, box.add_folder(self.settings.processed_folder)):
                for key in list(folder.keys()):
                    try:
                        data = folder.get_bytes(key)
                    except KeyError:
                        continue  # removed by someone else since the listing
                    if matching(copies, data):
                        folder.discard(key)
                        removed += 1
        except OSError as err:
            raise FetchError(f"Maildir erase: {type(err).__name__}: {err.strerror}") from err
        return removed

    def close(self) -> None:
        """Forget the open Maildir."""
        self._box = None
        self._keys.clear()

    def _require(self) -> mailbox.Maildir:
        if self._box is None:
            raise FetchError("Maildir source used before open()")
        return self._box


def open_maildir(path: str) -> mailbox.Maildir:
    """The Maildir at ``path``, created (owner-only, parents too) when missing."""
    Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return mailbox.Maildir(path, factory=None, create=True)


def delivered_at(key: str) -> datetime:
    """The delivery time a Maildir file name starts with ("<seconds>.<unique>.<host>").

    Read from the name, not the message, so fetching never parses untrusted mail.
    """
    match = re.match(r"(\d{9,11})(?:\.|$)", key)
    return datetime.fromtimestamp(int(match.group(1)) if match else 0, UTC)


def _read_header(handle: object) -> bytes:
    """The header block of a message read from a binary file, up to MAX_HEADER_BYTES."""
    lines: list[bytes] = []
    total = 0
    for line in handle:  # type: ignore[attr-defined]
        lines.append(line)
        total += len(line)
        if line in (b"\n", b"\r\n") or total >= MAX_HEADER_BYTES:
            break
    return b"".join(lines)
