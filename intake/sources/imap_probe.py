"""Fetch stage, IMAP: the connection check's questions to the server, one at a time, reading
nothing and changing nothing. May import imapclient (through ``intake.sources.imap``).

``story-intake check`` asks them in order (connect, log in, the folder, its flags, the
capabilities, the processed folder) so that it can say which step fails. Errors are
FetchError with the server's words decoded (``intake.errtext``), and the TLS hint when TLS met
a plain-text port.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

from imapclient import IMAPClient

from intake.errors import FetchError
from intake.errtext import describe
from intake.sources.imap import _IMAP_ERRORS, TRIAGED, ImapSettings, connect, login

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Certificate:
    """The server's certificate, as far as a check reports it."""

    subject: str
    issuer: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """What SELECT said about a folder."""

    exists: bool
    permanent_flags: tuple[str, ...] = ()

    @property
    def can_keyword(self) -> bool:
        """Whether ``$Triaged`` may be stored on its messages."""
        return TRIAGED.decode() in self.permanent_flags or "\\*" in self.permanent_flags


class ImapProbe:
    """One connection for the check; use as a context manager."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._client: IMAPClient | None = None

    def __enter__(self) -> ImapProbe:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> Certificate | None:
        """Connect (TLS or STARTTLS as configured, the certificate verified) and wait for the
        greeting; the certificate, None without TLS."""
        try:
            self._client = connect(self.settings)
            return _certificate(self._client.socket())
        except _IMAP_ERRORS as err:
            raise FetchError(describe(err)) from err

    def login(self) -> str:
        """Log in as the pipeline does; the mechanism used."""
        return self._ask(lambda client: login(client, self.settings))

    def folder(self, name: str) -> FolderInfo:
        """Whether ``name`` exists, and its PERMANENTFLAGS. SELECT as the pipeline does, not
        EXAMINE: a read-only folder has no permanent flags to report. Nothing is stored."""

        def select(client: IMAPClient) -> FolderInfo:
            if not client.folder_exists(name):
                return FolderInfo(False)
            selected = client.select_folder(name)
            flags = selected.get(b"PERMANENTFLAGS", ())
            return FolderInfo(True, tuple(_text(f) for f in flags))

        return self._ask(select)

    def capabilities(self) -> frozenset[str]:
        """What the server offers, after login (upper case)."""
        return self._ask(lambda client: frozenset(_text(c).upper() for c in client.capabilities()))

    def close(self) -> None:
        """Log out, ignoring a connection that is already gone."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.logout()
            except _IMAP_ERRORS:
                with contextlib.suppress(OSError):
                    client.shutdown()

    def _ask(self, question: Callable[[IMAPClient], T]) -> T:
        if self._client is None:
            raise FetchError("IMAP check used before connect()")
        try:
            return question(self._client)
        except _IMAP_ERRORS as err:
            raise FetchError(describe(err)) from err


def _certificate(sock: Any) -> Certificate | None:
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    cert = getpeercert() or {}
    expires = cert.get("notAfter")
    expires_at = datetime.fromtimestamp(_cert_time(expires), UTC) if expires else None
    return Certificate(_name(cert.get("subject", ())), _name(cert.get("issuer", ())), expires_at)


def _cert_time(text: str) -> float:
    return float(ssl.cert_time_to_seconds(text))


def _name(rdns: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """``CN=…, O=…`` from the nested tuples ``getpeercert`` gives."""
    parts = {key: value for rdn in rdns for key, value in rdn}
    short = {"commonName": "CN", "organizationName": "O", "countryName": "C"}
    return ", ".join(f"{short[k]}={parts[k]}" for k in short if k in parts) or "(none)"


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
