"""Store stage, staging: where a batch's raw bytes wait between fetch and the batch commit.

A batch's raw bytes are written here, one owner-only file a batch, as soon as the batch is
fetched, and from then on a ``Staged`` handle stands for each message: a parse worker reads
its batch from here by key, and the batch commit reads each message back as it inserts it. So
the process that fetches lets go of a batch's bytes before it fetches the next one, and no
process holds more than one batch's raw mail (issue 17: 15 messages of 15 MB held two batches
in the main process, plus the copy ProcessPoolExecutor keeps of every argument until its
result is back).

Files, not a table: a table wrote each byte three more times through SQLite's write-ahead log
(staged, copied into ``raw_messages``, zeroed on delete) and made 15 x 15 MB five times slower.
A file is written once, read from the page cache, and removed after the commit (one a batch:
creating and removing a file a message cost more than storing the message); what a crashed
pass left is removed at the start of the next (``clear``). Imports only ``intake``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from intake.errors import StoreError
from intake.records import RawMessage, Staged

FILE_MODE = 0o600


class Staging:
    """A private folder of raw messages waiting for their batch commit. ``folder`` None means
    a new private temporary folder, made when first needed (a store that is not a file)."""

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder

    @property
    def folder(self) -> Path:
        """The folder, made owner-only if it does not exist yet."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="story-intake-staging-"))
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._folder

    def stage(self, raws: Sequence[RawMessage]) -> tuple[Staged, ...]:
        """Write ``raws`` here; the handles that stand for them from now on. A file a crashed
        pass left under the same key is replaced."""
        if not raws:
            return ()
        first = raws[0]
        name = f"{_prefix(first.mailbox)}-{first.uidvalidity}-{first.uid}-{raws[-1].uid}"
        handles, offset = [], 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        try:
            with os.fdopen(os.open(self.folder / name, flags, FILE_MODE), "wb") as out:
                for raw in raws:
                    out.write(raw.data)
                    handles.append(Staged(raw.mailbox, raw.uidvalidity, raw.uid,
                                          raw.internal_at, raw.size, raw.too_large, name,
                                          offset, len(raw.data)))  # fmt: skip
                    offset += len(raw.data)
        except OSError as err:
            raise StoreError(f"store: staging: {type(err).__name__}: {err.strerror}") from err
        return tuple(handles)

    def read(self, handles: Sequence[Staged]) -> list[RawMessage]:
        """The raw messages behind ``handles``, in their order (a parse worker's batch)."""
        return [self.load(handle) for handle in handles]

    def load(self, handle: Staged) -> RawMessage:
        """The raw message behind ``handle``; StoreError when it is gone (the commit is then
        rolled back: nothing is marked, the message is fetched again)."""
        try:
            with os.fdopen(os.open(self._path(handle), os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
                f.seek(handle.offset)
                data = f.read(handle.length)
        except OSError as err:
            raise StoreError(f"store: staged message uid {handle.uid}: {err.strerror}") from err
        if len(data) != handle.length:
            raise StoreError(f"store: staged message uid {handle.uid}: cut short")
        return RawMessage(handle.mailbox, handle.uidvalidity, handle.uid, handle.internal_at,
                          handle.size, data, handle.too_large)  # fmt: skip

    def drop(self, handles: Sequence[Staged]) -> None:
        """Remove the files of ``handles`` (their batch is committed)."""
        for name in {handle.file for handle in handles}:
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()

    def clear(self, mailbox: str) -> None:
        """Remove every file staged for ``mailbox``: what a pass that crashed before its commit
        left (the messages are fetched again, their checkpoint never moved past them)."""
        if self._folder is None or not self._folder.is_dir():
            return
        for path in self._folder.glob(f"{_prefix(mailbox)}-*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _path(self, handle: Staged) -> Path:
        if "/" in handle.file or handle.file.startswith("."):  # a name, never a path
            raise StoreError(f"store: staged message uid {handle.uid}: bad file name")
        return self.folder / handle.file


def staging_for(url: str) -> Staging:
    """The staging folder of the store at ``url``: ``<database>.staging`` beside a SQLite file
    (the same disk, the same owner-only folder), else a private temporary folder."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Staging(Path(url.removeprefix("sqlite:///") + ".staging"))
    return Staging(None)


def _prefix(mailbox: str) -> str:
    # A mailbox name may hold slashes and any character: its hash names its files.
    return hashlib.sha256(mailbox.encode("utf-8")).hexdigest()[:16]
