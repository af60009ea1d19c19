"""Fetch stage, IMAP: the imapclient adapter. May import imapclient.

Read-only towards what people see: messages are fetched with ``BODY.PEEK[]`` so ``\\Seen`` is
never set. ``mark_stored`` (the keyword ``$Triaged`` and the optional MOVE) is called by the run
loop only after the store has committed, so a crash anywhere leaves the mail on the server.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError

from intake.copies import MailboxCopy
from intake.errors import ConfigError, FetchError, TokenError
from intake.errtext import describe
from intake.network import is_loopback
from intake.oauth2 import MailboxAuth, check_auth
from intake.records import Batch, MailboxState, RawMessage
from intake.sources.batching import BatchLimit, check_batch_limits, plan_batches
from intake.sources.imap_erase import erase_in_folder
from intake.sources.imap_login import log_in, tls_context

log = logging.getLogger(__name__)

TRIAGED = b"$Triaged"
EPOCH = datetime.fromtimestamp(0, UTC)
SIZE_CHUNK_BATCHES = 10  # batches whose sizes one UID SEARCH LARGER finds (see large_uids)
# Everything imapclient, imaplib, the socket or TLS can raise while talking to a server.
_IMAP_ERRORS = (IMAPClientError, OSError, EOFError, ssl.SSLError)


@dataclass(frozen=True, slots=True)
class ImapSettings(MailboxAuth):
    """The ``[mailbox]`` section when it names an IMAP server (how it logs in: MailboxAuth)."""

    host: str
    username: str = ""
    password_env: str = "STORY_IMAP_PASSWORD"
    port: int = 993
    security: Literal["ssl", "starttls", "none"] = "ssl"
    allow_insecure: bool = False
    folder: str = "INBOX"
    processed_folder: str = ""
    batch_size: int = 100
    batch_bytes: int = 32_000_000
    max_message_bytes: int = 25_000_000
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    # Filled from the environment variable named by password_env; never read from the file.
    password: str = field(default="", repr=False, metadata={"toml": False})

    def __post_init__(self) -> None:
        if self.security == "none" and not (self.allow_insecure or is_loopback(self.host)):
            raise ConfigError(
                "mailbox.security = none is only allowed for a loopback host "
                "(set mailbox.allow_insecure = true to override)"
            )
        if not self.username:
            raise ConfigError("mailbox.username must be set when mailbox.host is")
        check_batch_limits(self.batch_size, self.batch_bytes)
        if self.max_message_bytes < 1024:
            raise ConfigError("mailbox.max_message_bytes must be at least 1024")
        check_auth(self)


class ImapSource:
    """One IMAP folder as a source of RawMessages; use as a context manager."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._client: IMAPClient | None = None
        self._can_keyword = False
        self._uidnext = 0  # from SELECT: no message can have a UID at or above it yet

    def __enter__(self) -> ImapSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> MailboxState:
        """Connect, log in and select the folder; FetchError when any of it fails."""
        s = self.settings
        try:
            self._client = _connect(s)
            selected = self._client.select_folder(s.folder)
            if s.processed_folder and not self._client.folder_exists(s.processed_folder):
                self._client.create_folder(s.processed_folder)
        except (*_IMAP_ERRORS, TokenError) as err:
            self.close()
            raise FetchError(f"IMAP {s.host}:{s.port}: {describe(err)}") from err
        flags = selected.get(b"PERMANENTFLAGS", ())
        self._can_keyword = TRIAGED in flags or b"\\*" in flags
        self._uidnext = int(selected.get(b"UIDNEXT") or 0)
        return MailboxState(s.folder, int(selected[b"UIDVALIDITY"]))

    def fetch_new(self, state: MailboxState, last_uid: int) -> Iterator[Batch]:
        """Yield batches of the messages with a UID above ``last_uid``, oldest first, each
        within ``batch_size`` messages and ``batch_bytes`` bytes (``intake.sources.batching``).

        A message that vanished between SEARCH and FETCH is skipped. Any connection error
        raises FetchError; the batch in hand is then dropped whole, never half-yielded.
        """
        uids, s, handed = self.new_uids(last_uid), self.settings, 0
        limit = BatchLimit(s.batch_size, s.batch_bytes)
        # A message of at most batch_bytes / batch_size cannot overfill a batch by itself:
        # only the sizes of bigger ones are asked (one SEARCH, one small FETCH a chunk).
        small = max(1, s.batch_bytes // s.batch_size)
        for at in range(0, len(uids), s.batch_size * SIZE_CHUNK_BATCHES):
            part = uids[at : at + s.batch_size * SIZE_CHUNK_BATCHES]
            large = self.large_uids(part)
            # (none can be, when max_message_bytes is the smaller: no search then)
            big = self.large_uids(part, small) if small < s.max_message_bytes else set()
            sizes = self._sizes(sorted(big - large))
            sizes |= dict.fromkeys(large, small)  # headers only: a few KB
            for batch in plan_batches(part, sizes, small, limit):
                handed += len(batch)
                yield Batch(self.fetch_batch(state, batch, large), batch[-1], len(uids) - handed)

    def new_uids(self, last_uid: int) -> list[int]:
        """UIDs above ``last_uid``, ascending (one UID SEARCH, none when SELECT's UIDNEXT
        already says nothing has arrived since: an idle poll costs one round trip less)."""
        client = self._require()
        if 0 < self._uidnext <= last_uid + 1:
            return []
        try:
            found = client.search(["UID", f"{last_uid + 1}:*"])
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP search: {describe(err)}") from err
        # The server answers `last+1:*` with the highest UID even when it is <= last.
        return sorted(u for u in found if u > last_uid)

    def large_uids(self, uids: Sequence[int], over: int = 0) -> set[int]:
        """Which of ``uids`` are over ``over`` bytes (default ``max_message_bytes``): one UID
        SEARCH LARGER over their range, SIZE_CHUNK_BATCHES batches at a time (a FETCH of every
        size made the server read a row per message; one search over a whole backlog could
        outlast the read timeout). A message never changes (RFC 3501): the answer holds."""
        if not uids:
            return set()
        client = self._require()
        limit = str(over or self.settings.max_message_bytes)
        criteria = ["UID", f"{min(uids)}:{max(uids)}", "LARGER", limit]
        try:
            found = client.search(criteria)
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP search: {describe(err)}") from err
        return set(found).intersection(uids)

    def _sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each of ``uids`` (those that vanished are left out)."""
        if not uids:
            return {}
        try:
            rows = self._require().fetch(uids, [b"RFC822.SIZE"])
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP fetch: {type(err).__name__}: {err}") from err
        return {u: int(rows[u][b"RFC822.SIZE"]) for u in uids if b"RFC822.SIZE" in rows.get(u, {})}

    def fetch_batch(
        self, state: MailboxState, uids: list[int], large: set[int] | None = None
    ) -> tuple[RawMessage, ...]:
        """The messages with these UIDs, in order; vanished ones are left out. Those in
        ``large`` (default: asked of the server now) come as headers only, ``too_large``."""
        client = self._require()
        try:
            large = self.large_uids(uids) if large is None else large
            return self._fetch(client, state, uids, large)
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP fetch: {describe(err)}") from err

    def _fetch(
        self, client: IMAPClient, state: MailboxState, uids: list[int], large: set[int]
    ) -> tuple[RawMessage, ...]:
        whole = [u for u in uids if u not in large]
        headers = [u for u in uids if u in large]
        found: dict[int, RawMessage] = {}
        # A server reports what other sessions expunged only between commands (Dovecot after
        # NOOP or a FETCH, not a SEARCH); until then it may still hand the message over. One
        # cheap round trip (where the size FETCH used to be) keeps a message deleted since the
        # SEARCH from being stored.
        client.noop()
        for wanted, ask, key in ((whole, b"BODY.PEEK[]", b"BODY[]"),
                                 (headers, b"BODY.PEEK[HEADER]", b"BODY[HEADER]")):  # fmt: skip
            if wanted:
                rows = client.fetch(wanted, [b"RFC822.SIZE", b"INTERNALDATE", ask])
                # Only rows with the body: a FETCH response the server adds unasked (another
                # session changed flags) has no UID, and imapclient keys it by sequence number.
                found.update(
                    _to_raw(state, uid, row, key) for uid, row in rows.items() if key in row
                )
        return tuple(found[u] for u in uids if u in found)

    def mark_stored(self, uids: Sequence[int]) -> None:
        """Tag stored messages ``$Triaged`` and move them to the processed folder if set."""
        if not uids:
            return
        client = self._require()
        try:
            if self._can_keyword:
                client.add_flags(list(uids), [TRIAGED], silent=True)
            if self.settings.processed_folder:
                self._move(client, list(uids))
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP mark: {describe(err)}") from err

    def _move(self, client: IMAPClient, uids: list[int]) -> None:
        target = self.settings.processed_folder
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        # Without MOVE: copy, then expunge exactly these UIDs. A bare EXPUNGE would also
        # remove whatever a person had marked \Deleted in the same folder.
        client.copy(uids, target)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        client.uid_expunge(uids)

    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> set[str]:
        """Which of these Message-IDs are in ``folder`` (read-only; call after fetching)."""
        client = self._require()
        found = set()
        try:
            client.select_folder(folder, readonly=True)
            for message_id in message_ids:
                if client.search(["HEADER", "Message-ID", message_id]):
                    found.add(message_id)
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP search of {folder}: {type(err).__name__}") from err
        return found

    def erase_copies(self, copies: Sequence[MailboxCopy]) -> int:
        """Delete these recorded copies from the folder and the processed folder, each
        confirmed exactly (``intake.sources.imap_erase``); returns how many messages went."""
        client = self._require()
        folders = [(self.settings.folder, False)]
        if self.settings.processed_folder:
            folders.append((self.settings.processed_folder, True))
        deleted = 0
        for folder, owned in folders:
            try:
                deleted += erase_in_folder(client, folder, copies, owned)
            except _IMAP_ERRORS as err:
                raise FetchError(f"IMAP delete in {folder}: {type(err).__name__}") from err
        return deleted

    def close(self) -> None:
        """Log out, ignoring a connection that is already gone."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except _IMAP_ERRORS:
            with contextlib.suppress(OSError):
                client.shutdown()

    def _require(self) -> IMAPClient:
        if self._client is None:
            raise FetchError("IMAP source used before open()")
        return self._client


def _connect(s: ImapSettings) -> IMAPClient:
    client = connect(s)
    login(client, s)
    return client


def connect(s: ImapSettings) -> IMAPClient:
    """A connection to the server, TLS (or STARTTLS) done, not yet logged in."""
    context = tls_context(s.ca_file)
    timeout = SocketTimeout(connect=s.connect_timeout, read=s.read_timeout)
    client = IMAPClient(
        s.host, port=s.port, ssl=s.security == "ssl", ssl_context=context, timeout=timeout
    )
    client.normalise_times = False
    if s.security == "starttls":
        client.starttls(context)
    return client


def login(client: IMAPClient, s: ImapSettings) -> str:
    """Log in as ``[mailbox]`` says (password, or XOAUTH2 with a token); returns the mechanism
    used (``check`` reports it)."""
    done = log_in(client, s, s.tokens)
    return "LOGIN (password)" if done.mechanism == "LOGIN" else done.mechanism


def _to_raw(
    state: MailboxState, uid: int, row: dict[bytes, Any], body_key: bytes
) -> tuple[int, RawMessage]:
    data = bytes(row.get(body_key) or b"")
    internal = row.get(b"INTERNALDATE")
    # INTERNALDATE is mandatory in IMAP; the epoch marks a server that left it out.
    internal_at = _utc(internal) if isinstance(internal, datetime) else EPOCH
    size = int(row.get(b"RFC822.SIZE", len(data)))
    raw = RawMessage(
        state.mailbox, state.uidvalidity, uid, internal_at, size, data, body_key != b"BODY[]"
    )
    return uid, raw


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
