"""``story-intake check``, everything but IMAP: the SMTP relay (connect, STARTTLS, AUTH), the
embedded default's folders (the Maildir and the pickup folder exist, or can be made, and are
writable) and the mailbox's own address among ``[intake] addresses``."""

from __future__ import annotations

import os
from pathlib import Path

from intake.errors import ConfigError
from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from story_intake.addresses import _address_of
from story_intake.check_base import Failed, Probe
from story_intake.secrets import with_secrets
from triage.reply.smtp import probe

_SMTP_FIXES = {
    "connect": "check [smtp] host and port, and that this machine may connect to the relay",
    "starttls": "check [smtp] security (starttls: port 587, ssl: 465) and that the relay's "
                "certificate names the host and is signed by a CA this machine trusts",
    "auth": "check [smtp] username and the password in the variable [smtp] password_env names",
}  # fmt: skip
_OAUTH2_FIX = ("check [smtp] oauth2_client_id (or [mailbox]'s, which it inherits), its secret "
               "and the app's permission to send as [smtp] username (SMTP.SendAsApp)")  # fmt: skip


def smtp_connect(state: Probe) -> str:
    """Connect to the relay (taking every SMTP step at once; the next checks report them)."""
    smtp = state.settings.smtp
    try:  # the password, or SMTP's own OAuth2 client with its secret, as the worker gets them
        smtp = with_secrets(state.settings, state.environ, ("smtp",)).smtp
    except ConfigError as err:
        fix = (f"export {smtp.password_env} with the relay's password" if smtp.auth == "password"
               else "export the variable it names with the client secret")  # fmt: skip
        raise Failed(str(err), fix) from err
    state.smtp = probe(smtp)
    return _step(state, "connect")


def smtp_starttls(state: Probe) -> str:
    """STARTTLS, the certificate verified."""
    return _step(state, "starttls")


def smtp_auth(state: Probe) -> str:
    """AUTH with the configured username."""
    return _step(state, "auth")


def _step(state: Probe, name: str) -> str:
    step = next(s for s in state.smtp if s.name == name)
    if not step.ok:
        oauth2 = name == "auth" and state.settings.smtp.auth == "oauth2"
        raise Failed(step.detail, _OAUTH2_FIX if oauth2 else _SMTP_FIXES[name])
    return step.detail


def pickup_dir(state: Probe) -> str:
    """The pickup folder acknowledgements are written to."""
    return _writable(Path(state.settings.smtp.pickup_dir), "[smtp] pickup_dir")


def maildir(state: Probe) -> str:
    """The embedded default's Maildir."""
    box = state.settings.mailbox
    assert isinstance(box, MaildirSettings)  # listed for the Maildir only
    return _writable(Path(box.maildir), "[mailbox] maildir")


def _writable(folder: Path, key: str) -> str:
    if folder.exists() and not folder.is_dir():
        raise Failed(f"{folder} is a file, not a folder", f"move it away, or change {key}")
    if folder.is_dir():
        if os.access(folder, os.W_OK | os.X_OK):
            return f"{folder} exists and is writable"
        raise Failed(
            f"{folder} is not writable by this user",
            f"make it writable by the user the worker runs as, or change {key}",
        )
    parent = next((p for p in folder.parents if p.exists()), Path("/"))
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return f"{folder} does not exist yet: the first pass creates it"
    raise Failed(
        f"{folder} does not exist and {parent} is not writable",
        f"create {folder} for the user the worker runs as, or change {key}",
    )


def own_address(state: Probe) -> str:
    """The mailbox's own address (its IMAP username, when that is an address) is among
    ``[intake] addresses``: otherwise mail to it is never acknowledged."""
    box, own = state.settings.mailbox, state.settings.intake.addresses
    username = _address_of(box) if isinstance(box, ImapSettings) else ""
    if not username:
        return f"[intake] addresses: {', '.join(own)}"
    if username.lower() in {a.lower() for a in own}:
        return f"{username} is among [intake] addresses"
    raise Failed(f"{username} is not among [intake] addresses ({', '.join(own)}): mail to "
                 "it would be suppressed as not_addressed",
                 f"add {username} to [intake] addresses")  # fmt: skip
