"""Fetch stage, IMAP IDLE (RFC 2177): a second, read-only connection that waits for the server
to say something arrived. May import imapclient (through ``intake.sources.imap``).

I/O only: it never fetches or marks (the pass does, on its own connection), and it does not
read the clock; the worker (``story_intake.idle``) decides when to renew, probe or reconnect.
Every connection error is translated to FetchError.
"""

from __future__ import annotations

import contextlib
import select
from dataclasses import dataclass
from types import TracebackType

from imapclient import IMAPClient

from intake.errors import FetchError
from intake.errtext import describe
from intake.sources.imap import _IMAP_ERRORS, ImapSettings, connect, login

# Untagged responses that mean a new message is in the folder. FETCH (flag changes, our own
# $Triaged among them) and EXPUNGE do not.
_ARRIVALS = (b"EXISTS", b"RECENT")


@dataclass(frozen=True, slots=True)
class Heard:
    """What the server said during one wait: anything at all (it is alive), and whether
    any of it announced a new message."""

    anything: bool
    arrived: bool


class IdleConnection:
    """The folder watched with IDLE; use as a context manager."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._client: IMAPClient | None = None
        self._idling = False

    def __enter__(self) -> IdleConnection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> bool:
        """Connect, log in and select the folder read-only; whether the server offers IDLE
        (False: the connection is closed again and the worker polls). FetchError on failure."""
        s = self.settings
        try:
            self._client = connect(s)
            login(self._client, s)
            if not self._client.has_capability("IDLE"):
                self.close()
                return False
            self._client.select_folder(s.folder, readonly=True)
        except _IMAP_ERRORS as err:
            self.close()
            raise FetchError(f"IMAP IDLE {s.host}:{s.port}: {describe(err)}") from err
        return True

    def start(self) -> None:
        """Enter IDLE."""
        client = self._require()
        try:
            client.idle()
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP IDLE: {describe(err)}") from err
        self._idling = True

    def wait(self, seconds: float) -> Heard:
        """Wait up to ``seconds`` for the server to say something while idling."""
        client = self._require()
        try:
            responses = client.idle_check(timeout=seconds)
            # imapclient ends a wait quietly at end of file; a socket that is still readable
            # with not one line in it has been closed by the server.
            closed = not responses and bool(select.select([client.socket()], [], [], 0)[0])
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP IDLE: {describe(err)}") from err
        if closed:
            raise FetchError("IMAP IDLE: the server closed the connection")
        return _heard(responses)

    def renew(self) -> Heard:
        """End IDLE, send a NOOP and enter IDLE again: the keepalive, and the watchdog's
        probe (a dead connection raises FetchError here, at the latest after the read
        timeout). What the server said meanwhile is returned."""
        client = self._require()
        try:
            _, responses = client.idle_done()
            self._idling = False
            _, more = client.noop()
            client.idle()
            self._idling = True
        except _IMAP_ERRORS as err:
            raise FetchError(f"IMAP IDLE renew: {describe(err)}") from err
        heard = _heard([*responses, *more])
        return Heard(anything=True, arrived=heard.arrived)  # the tagged replies came back

    def close(self) -> None:
        """Leave IDLE and log out, ignoring a connection that is already gone."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if self._idling:
                client.idle_done()
            client.logout()
        except _IMAP_ERRORS:
            with contextlib.suppress(OSError):  # already closed by the other end
                client.shutdown()
        self._idling = False

    def _require(self) -> IMAPClient:
        if self._client is None:
            raise FetchError("IMAP IDLE used before open()")
        return self._client


def _heard(responses: list[tuple[object, ...]]) -> Heard:
    if any(r and r[0] == b"BYE" for r in responses):  # kicked, or the server shuts down
        raise FetchError("IMAP IDLE: the server ended the connection (BYE)")
    arrived = any(len(r) > 1 and r[1] in _ARRIVALS for r in responses)
    return Heard(anything=bool(responses), arrived=arrived)
