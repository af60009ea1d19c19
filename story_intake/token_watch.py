"""Which OAuth2 clients a pass watches for expiry: the mailbox's (IMAP) once it has logged
in, and SMTP's own once the replies have gone (``[smtp] auth = "oauth2"``; issue 19).

Each channel's record and alert stand apart (``triage.expiry_watch``): a password or Maildir
mailbox with an OAuth2 SMTP relay shows only SMTP's. An inherited delegated sign-in is one
provider serving both channels (``story_intake.smtp_client``): its refresh token is one
credential, watched and alerted under the mailbox only.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from intake.store.engine import Store
from triage.expiry_watch import watch_expiry

if TYPE_CHECKING:
    from intake.oauth2 import TokenProvider
    from story_intake.app_settings import Settings


def note_mailbox_expiry(settings: Settings, store: Store, now: datetime) -> None:
    """Keep when the mailbox's OAuth2 token expires, for ``status`` (never the token), and
    watch its long-lived credentials."""
    tokens: TokenProvider | None = getattr(settings.mailbox, "tokens", None)
    if tokens is not None:
        _note(tokens, "mailbox", settings, store, now)


def note_smtp_expiry(settings: Settings, store: Store, now: datetime) -> None:
    """The same for SMTP's client, once it has asked for a token (replies or alerts sent)."""
    tokens = settings.smtp.tokens
    # No token asked for yet (nothing sent by this process): nothing learnt, and the record
    # of an earlier pass must stand (an empty one would make its alert due again).
    if tokens is None or settings.smtp.auth != "oauth2" or tokens.expires_at is None:
        return
    shared = tokens is getattr(settings.mailbox, "tokens", None)
    _note(tokens, "smtp", settings, store, now, credentials=not shared)


def _note(
    tokens: TokenProvider, channel: str, settings: Settings, store: Store, now: datetime,
    credentials: bool = True,
) -> None:  # fmt: skip
    if tokens.expires_at is not None:
        store.worker.save_token_expiry(tokens.expires_at, now, channel)
    if credentials:  # a refresh token or secret near its end: status, one alert
        watch_expiry(store, tokens.credential_expiry(), now, settings.alerts, settings.smtp,
                     settings.acknowledgement.team_name, channel)  # fmt: skip
