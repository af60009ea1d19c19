"""The mailbox's own addresses: defaults derived from ``[mailbox] username``, and the warning
when they do not match.

Replies are only sent to mail addressed to one of ``[intake] addresses`` (anything else is
suppressed as ``not_addressed``), so an address left at the example value silently stops every
reply. Left unset, ``[intake] addresses`` is the IMAP username when that is an email address,
and ``[smtp] from_address`` the first of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings

if TYPE_CHECKING:
    from story_intake.app_settings import IntakeSettings, Settings
    from triage.reply.settings import SmtpSettings


def own_addresses(
    document: Mapping[str, Any], mailbox: ImapSettings | MaildirSettings,
    intake: IntakeSettings, smtp: SmtpSettings,
) -> tuple[IntakeSettings, SmtpSettings]:  # fmt: skip
    """``intake`` and ``smtp`` with the addresses the file leaves unset (absent or empty)
    filled in: from the mailbox's username, else the documented embedded default."""
    if not _given(document, "intake", "addresses"):
        username = _address_of(mailbox)
        if username:
            intake = dataclasses.replace(intake, addresses=(username,))
        else:  # the embedded Maildir, or a login name that is not an address
            intake = dataclasses.replace(intake, addresses=type(intake)().addresses)
    if not _given(document, "smtp", "from_address"):
        smtp = dataclasses.replace(smtp, from_address=intake.addresses[0])
    return intake, smtp


def address_warnings(settings: Settings) -> list[str]:
    """What to warn about at start: the mailbox's own address missing from
    ``[intake] addresses``, so that mail to it would never be acknowledged. Keys only."""
    if not isinstance(settings.mailbox, ImapSettings):
        return []
    username = _address_of(settings.mailbox)
    own = {a.lower() for a in settings.intake.addresses}
    if username and username not in own:
        return ["mailbox.username is not among intake.addresses: mail addressed to the "
                "mailbox will not be acknowledged (suppressed as not_addressed)"]  # fmt: skip
    if not username and own == {a.lower() for a in type(settings.intake)().addresses}:
        return ["intake.addresses is the example default and mailbox.username is not an "
                "email address: set intake.addresses to the mailbox's own addresses"]  # fmt: skip
    return []


def _address_of(mailbox: ImapSettings | MaildirSettings) -> str:
    if isinstance(mailbox, ImapSettings) and "@" in mailbox.username:
        return mailbox.username.strip().lower()
    return ""


def _given(document: Mapping[str, Any], section: str, key: str) -> bool:
    table = document.get(section, {})
    return isinstance(table, Mapping) and bool(table.get(key))
