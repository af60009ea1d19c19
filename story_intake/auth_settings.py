"""How the pipeline logs in, checked across sections at load: ``[smtp] auth = "oauth2"`` has
an OAuth2 client (its own keys, or ``[mailbox]``'s), and every ``ca_file`` names a readable
file. Each error names the key, never a value."""

from __future__ import annotations

from pathlib import Path

from intake.errors import ConfigError
from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from story_intake.smtp_client import check_smtp_client
from triage.reply.settings import SmtpSettings


def check_smtp_auth(smtp: SmtpSettings, mailbox: ImapSettings | MaildirSettings) -> None:
    """ConfigError naming the key when ``[smtp]``'s login cannot work as configured."""
    if isinstance(mailbox, ImapSettings):
        check_ca_file(mailbox.ca_file, "mailbox.ca_file")
    if not smtp.host:
        return
    check_ca_file(smtp.ca_file, "smtp.ca_file")
    if smtp.auth == "password":
        if smtp.username and not smtp.password_env:
            raise ConfigError("smtp.password_env must name an environment variable")
        return
    if not smtp.username:
        raise ConfigError("smtp.username must be set when smtp.auth = oauth2")
    check_smtp_client(smtp, mailbox)  # [smtp]'s own oauth2_* keys, else [mailbox]'s


def check_ca_file(path: str, key: str) -> None:
    """A set ``ca_file`` must be a readable file (an empty one trusts the system's CAs)."""
    if not path:
        return
    try:
        with Path(path).open("rb") as handle:
            handle.read(1)
    except OSError as err:
        raise ConfigError(f"{key} cannot be read: {type(err).__name__}") from err
