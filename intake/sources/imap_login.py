"""Fetch stage, IMAP: logging in, by password or by OAuth2 (SASL XOAUTH2). Imports only
``intake``; the imapclient connection is handed in (the IMAP source and ``check`` open it).

Kept apart from the source so every caller logs in the same way and can report how.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from intake.errors import ConfigError

if TYPE_CHECKING:
    from intake.oauth2 import TokenProvider

log = logging.getLogger(__name__)


class Account(Protocol):
    """What logging in needs of the settings (ImapSettings fits)."""

    @property
    def auth(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Login:
    """How a login went: the mechanism, and the token's expiry for OAuth2."""

    mechanism: str
    token_expires_at: datetime | None = None
    token_fetched: bool = False


def tls_context(ca_file: str) -> ssl.SSLContext:
    """A verifying TLS context: trusting exactly ``ca_file`` when set (SSL_CERT_FILE and
    SSL_CERT_DIR are then not consulted), else the system's CAs."""
    return ssl.create_default_context(cafile=ca_file or None)


def log_in(client: Any, settings: Account, tokens: TokenProvider | None) -> Login:
    """Log ``client`` (a connected IMAPClient) in as ``settings`` say: ``auth = "password"``
    with its password, ``auth = "oauth2"`` with XOAUTH2 and a token from ``tokens``.

    TokenError when no token can be had (nothing was sent to the server then); the client's
    own errors when the server refuses.
    """
    if settings.auth != "oauth2":
        client.login(settings.username, settings.password)
        return Login("LOGIN")
    if tokens is None:
        raise ConfigError("mailbox.auth = oauth2 but no token provider was set up")
    token = tokens.token()
    client.oauth2_login(settings.username, token.value, mech="XOAUTH2")
    left = (token.expires_at - datetime.now(UTC)).total_seconds()
    log.info("IMAP login by XOAUTH2 (%s token, %d s left)",
             "new" if token.fetched else "cached", left)  # fmt: skip
    return Login("XOAUTH2", token.expires_at, token.fetched)
