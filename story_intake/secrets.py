"""Secrets, read from the environment only by the commands that connect.

The file names each secret's environment variable (``password_env``); the value is looked up
here, when a command is about to log in, so that reading the store (``status``, ``export``, a
digest preview...) works on a machine that holds no mailbox password. A command that does log
in still stops at start, naming the variable, never its value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from intake.errors import ConfigError
from intake.oauth2 import TokenProvider, oauth2_settings
from intake.oauth2_delegated import DelegatedTokenProvider
from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from story_intake.smtp_client import (
    ca_section,
    secret_section,
    shares_mailbox_provider,
    smtp_client,
)
from triage.reply.settings import SmtpSettings

if TYPE_CHECKING:
    from story_intake.app_settings import Settings

# The parts that log in: the mailbox (IMAP) and the SMTP relay.
ALL = ("mailbox", "smtp")


def with_secrets(
    settings: Settings, environ: Mapping[str, str], needed: Collection[str]
) -> Settings:
    """``settings`` with the passwords of the ``needed`` parts filled from ``environ``.

    ConfigError naming the variable when one that is needed is unset. Parts that do not log in
    (a Maildir, a pickup folder, a relay without ``username``) need none.
    """
    mailbox, smtp = settings.mailbox, settings.smtp
    tokens = _token_provider(mailbox, environ) if "mailbox" in needed else None
    if "mailbox" in needed and isinstance(mailbox, ImapSettings):
        if tokens is not None:
            mailbox = dataclasses.replace(mailbox, tokens=tokens)
        else:
            mailbox = dataclasses.replace(
                mailbox, password=secret(environ, mailbox.password_env, "mailbox")
            )
    if "smtp" in needed and smtp.host and smtp.auth == "oauth2":
        smtp = dataclasses.replace(smtp, tokens=smtp_provider(smtp, settings.mailbox, environ,
                                                              tokens))  # fmt: skip
    elif "smtp" in needed and smtp.host and smtp.username:
        smtp = dataclasses.replace(smtp, password=secret(environ, smtp.password_env, "smtp"))
    return dataclasses.replace(settings, mailbox=mailbox, smtp=smtp)


def smtp_provider(
    smtp: SmtpSettings, mailbox: ImapSettings | MaildirSettings, environ: Mapping[str, str],
    mailbox_tokens: TokenProvider | None = None,
) -> TokenProvider:  # fmt: skip
    """SMTP's own token provider (own MSAL application and cache: a failure of the mailbox's
    client never touches it), its secret read now. An inherited delegated sign-in shares
    ``mailbox_tokens`` when there is one (``story_intake.smtp_client``)."""
    client = smtp_client(smtp, mailbox)
    if shares_mailbox_provider(smtp, client):
        if isinstance(mailbox_tokens, DelegatedTokenProvider):
            return mailbox_tokens
        return DelegatedTokenProvider(oauth2_settings(client, "", smtp.timeout, smtp.username,
                                                      ca_section(smtp, mailbox)),
                                      Path(client.oauth2_token_cache))  # fmt: skip
    client_secret = secret(environ, client.oauth2_client_secret_env, secret_section(smtp),
                           "oauth2_client_secret_env")  # fmt: skip
    return TokenProvider(oauth2_settings(client, client_secret, smtp.timeout,
                                         smtp.username, ca_section(smtp, mailbox)))  # fmt: skip


def _token_provider(mailbox: object, environ: Mapping[str, str]) -> TokenProvider | None:
    """[mailbox]'s OAuth2 client, its secret read now; the provider (its token cache) serves
    IMAP for the life of the process (SMTP has its own: ``smtp_provider``)."""
    if not isinstance(mailbox, ImapSettings) or mailbox.auth != "oauth2":
        return None
    if mailbox.oauth2_flow == "device_code":  # no client secret: the person's refresh token
        return delegated_provider(mailbox)
    client_secret = secret(environ, mailbox.oauth2_client_secret_env, "mailbox",
                           "oauth2_client_secret_env")  # fmt: skip
    return TokenProvider(oauth2_settings(mailbox, client_secret, mailbox.connect_timeout,
                                         subject=mailbox.username))  # fmt: skip


def delegated_provider(mailbox: ImapSettings) -> DelegatedTokenProvider:
    """The delegated (device_code) client of ``mailbox``, its tokens in oauth2_token_cache."""
    return DelegatedTokenProvider(
        oauth2_settings(mailbox, "", mailbox.connect_timeout, subject=mailbox.username),
        Path(mailbox.oauth2_token_cache),
    )


def secret(
    environ: Mapping[str, str], variable: str, section: str, key: str = "password_env"
) -> str:
    """The secret held in ``variable``; ConfigError naming the variable when it is unset."""
    if not variable:
        raise ConfigError(f"{section}.{key} must name an environment variable")
    value = environ.get(variable)
    if not value:
        raise ConfigError(f"environment variable {variable} (named by {section}.{key}) is not set")
    return value
