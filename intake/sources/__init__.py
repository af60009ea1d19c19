"""Mail sources: the ``Source`` protocol the run loop needs, and the registry of kinds.

A source does I/O only: it opens a mailbox, yields batches of RawMessages, marks what the
store has committed and erases copies. Adding a kind (Microsoft Graph, ...) is one module
here and one line in ``KINDS``. Imports only ``intake``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

from intake.copies import MailboxCopy
from intake.records import Batch, MailboxState
from intake.sources.imap import ImapSettings, ImapSource
from intake.sources.maildir import MaildirSettings, MaildirSource


class Source(Protocol):
    """What the run loop needs from a mailbox (ImapSource and MaildirSource both fit)."""

    def open(self) -> MailboxState: ...
    def fetch_new(self, state: MailboxState, last_uid: int) -> Iterator[Batch]: ...
    def mark_stored(self, uids: Sequence[int]) -> None: ...
    def erase_copies(self, copies: Sequence[MailboxCopy]) -> int: ...
    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> set[str]: ...
    def close(self) -> None: ...


class Kind(NamedTuple):
    """One kind of mailbox: its settings, how to open it, and the name that identifies it
    (what the worker's lease is on, so two workers never poll the same mailbox)."""

    settings: type[Any]
    open: Callable[[Any], Source]
    name: Callable[[Any], str]


def _imap_name(box: ImapSettings) -> str:
    return f"imap://{box.username}@{box.host}:{box.port}/{box.folder}"


def _maildir_name(box: MaildirSettings) -> str:
    return f"maildir:{os.path.abspath(box.maildir)}"


MailboxSettings = ImapSettings | MaildirSettings

KINDS: dict[str, Kind] = {
    "imap": Kind(ImapSettings, ImapSource, _imap_name),
    "maildir": Kind(MaildirSettings, MaildirSource, _maildir_name),
}


def kind_of(settings: MailboxSettings) -> Kind:
    """The registered kind whose settings these are."""
    for kind in KINDS.values():
        if isinstance(settings, kind.settings):
            return kind
    raise TypeError(f"no mail source for {type(settings).__name__}")


def open_source(settings: MailboxSettings) -> Source:
    """The source the ``[mailbox]`` section names."""
    return kind_of(settings).open(settings)


def mailbox_name(settings: MailboxSettings) -> str:
    """A stable name for the mailbox (``imap://user@host:port/folder``, ``maildir:/path``)."""
    return kind_of(settings).name(settings)
