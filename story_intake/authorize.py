"""``story-intake authorize``: the delegated OAuth2 sign-in (device-code flow) for tenants that
refuse app permissions. The mailbox's owner opens the address printed here, types the code and
signs in; the refresh token goes into ``[mailbox] oauth2_token_cache`` (0600) and the worker
uses it from then on. Never prints or logs a token. A mailbox that logs in with its password
may still have SMTP sign in this way (``[smtp] auth = "oauth2"`` inheriting ``[mailbox]``'s
delegated client): then it is SMTP's sign-in that is made."""

from __future__ import annotations

import logging
from typing import TextIO

from intake.errors import UsageError
from intake.oauth2_delegated import DelegatedTokenProvider
from intake.sources.imap import ImapSettings
from story_intake.app_settings import Settings
from story_intake.secrets import delegated_provider, smtp_provider
from story_intake.smtp_client import shares_mailbox_provider, smtp_client

log = logging.getLogger(__name__)


def authorize_command(settings: Settings, out: TextIO) -> int:
    """Run the device-code flow for ``[mailbox]``; 0 once the token cache is written.

    UsageError (exit 2) when the mailbox is not set up for it; TokenError (exit 1, one line
    with the provider's error) when the sign-in is refused, expires or the provider is
    unreachable."""
    provider = _provider(settings)

    def tell(message: str) -> None:
        print(message, file=out, flush=True)  # the person acts on it while this waits

    expires = provider.authorize(tell)
    until = (
        f"; the refresh token expires at {expires.isoformat(timespec='seconds')}" if expires else ""
    )
    print(f"authorized: token cache written to {provider.cache_path}{until}", file=out)
    log.info("oauth2 device-code sign-in done; token cache written")
    return 0


def _provider(settings: Settings) -> DelegatedTokenProvider:
    """The delegated client to sign in: the mailbox's, or SMTP's when only SMTP uses it."""
    box, smtp = settings.mailbox, settings.smtp
    if not isinstance(box, ImapSettings):
        raise UsageError('authorize is for [mailbox] auth = "oauth2" on an IMAP server')
    smtp_signs_in = smtp.auth == "oauth2" and bool(smtp.host)
    if (
        box.auth != "oauth2"
        and smtp_signs_in
        and shares_mailbox_provider(smtp, smtp_client(smtp, box))
    ):
        provider = smtp_provider(smtp, box, {})  # a delegated client reads no secret
        if isinstance(provider, DelegatedTokenProvider):
            return provider
    if box.auth != "oauth2":
        raise UsageError('authorize is for [mailbox] auth = "oauth2" on an IMAP server (or '
                         '[smtp] auth = "oauth2" inheriting its delegated client)')  # fmt: skip
    if box.oauth2_flow != "device_code":
        raise UsageError("authorize is for [mailbox] oauth2_flow = \"device_code\" (the "
                         "client_credentials flow needs no sign-in)")  # fmt: skip
    return delegated_provider(box)
