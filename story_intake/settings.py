"""Load ``pipeline.toml`` into frozen settings; the only reader of configuration.

Unknown keys, wrong types, numbers not above 0 and wrong shapes stop the program at start
with a ConfigError that names the key, never a value; keys left out keep their documented
defaults. Secrets are never in the file: a key ending in ``_env`` names the variable that holds
them, read (``story_intake.secrets``) only for the parts a command logs in to.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from intake.errors import ConfigError
from intake.network import is_loopback
from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from intake.store.engine import StoreSettings
from story_intake.addresses import own_addresses
from story_intake.app_settings import IntakeSettings, ScheduleSettings, Settings
from story_intake.auth_settings import check_smtp_auth
from story_intake.paths import anchored
from story_intake.schedule import cron_trigger
from story_intake.secrets import ALL, with_secrets
from story_intake.themes import DEFAULT_THEMES, load_themes
from story_intake.toml_schema import build, check, read_toml
from story_intake.web.settings import ReviewSettings
from triage.alerts import AlertSettings
from triage.digest.settings import DigestSettings
from triage.privacy import RetentionSettings
from triage.reply.policy import is_plausible_mailbox
from triage.reply.settings import AcknowledgementSettings, SmtpSettings

EMBEDDED_MAILDIR = "var/mailbox"

_SECTIONS: dict[str, type[Any]] = {
    "smtp": SmtpSettings, "intake": IntakeSettings, "store": StoreSettings,
    "acknowledgement": AcknowledgementSettings, "digest": DigestSettings,
    "schedule": ScheduleSettings, "alerts": AlertSettings, "retention": RetentionSettings,
    "review": ReviewSettings,
}  # fmt: skip


def load_settings(
    path: Path,
    environ: Mapping[str, str],
    secrets: Collection[str] = ALL,
    base: Path | None = None,
) -> Settings:
    """Read and validate the TOML file at ``path``; the ``secrets`` of those parts (see
    ``story_intake.secrets``) come from ``environ``. Relative paths in it are from ``base``,
    by default the file's own folder (``story_intake.paths``).

    The tagger's vocabulary is ``themes.toml`` beside it, or the shipped one when there is none.
    """
    document = read_toml(path, "config")
    themes = path.parent / "themes.toml"
    tagger = load_themes(themes if themes.exists() else DEFAULT_THEMES)
    settings = dataclasses.replace(settings_from(document, environ, ()), tagger=tagger)
    # Secrets after anchoring: a token provider keeps its token cache's (anchored) path.
    return with_secrets(anchored(settings, path.parent if base is None else base), environ, secrets)


def settings_from(
    document: Mapping[str, Any], environ: Mapping[str, str], secrets: Collection[str] = ALL
) -> Settings:
    """Validate an already-parsed TOML document (tests use this directly). Keys the file
    leaves out keep their documented defaults."""
    for section in document:
        if section != "mailbox" and section not in _SECTIONS:
            raise ConfigError(f"unknown section [{section}]")
    sections = {name: build(cls, document.get(name, {}), name, positive=True)
                for name, cls in _SECTIONS.items()}  # fmt: skip
    mailbox = mailbox_from(document.get("mailbox", {}))
    sections["intake"], sections["smtp"] = own_addresses(
        document, mailbox, sections["intake"], sections["smtp"]
    )
    smtp = sections["smtp"]
    if smtp.host and smtp.security == "none" and not is_loopback(smtp.host):
        raise ConfigError("smtp.security = none is only allowed for a loopback host")
    check_smtp_auth(smtp, mailbox)
    store = sections["store"]
    if store.hash_key_env and environ.get(store.hash_key_env):
        sections["store"] = dataclasses.replace(store, hash_key=environ[store.hash_key_env])
    digest = sections["digest"]
    cron_trigger(digest.schedule, digest.timezone)  # ConfigError naming the key when invalid
    _check_recipients(digest.recipients, "digest.recipients")
    _check_recipients(sections["alerts"].recipients, "alerts.recipients")
    own = {a.lower() for a in sections["intake"].addresses}
    if sections["smtp"].from_address.lower() not in own:
        # Replies to our acknowledgements are recognised by our own address and Message-IDs.
        raise ConfigError("smtp.from_address must be one of intake.addresses")
    return with_secrets(Settings(mailbox=mailbox, **sections), environ, secrets)


def mailbox_from(table: object) -> ImapSettings | MaildirSettings:
    """``[mailbox]``: IMAP when ``host`` is set, otherwise the Maildir at ``maildir`` (by
    default ``var/mailbox``, the embedded default). Its password is left to ``with_secrets``."""
    if isinstance(table, list):
        raise ConfigError("mailbox: several mailboxes ([[mailbox]]) are not supported yet")
    if not isinstance(table, Mapping):
        raise ConfigError("[mailbox] must be a table")
    hints = typing.get_type_hints(ImapSettings) | typing.get_type_hints(MaildirSettings)
    for key, value in table.items():
        if key not in hints or key in ("password", "tokens"):
            raise ConfigError(f"unknown key mailbox.{key}")
        check(value, hints[key], f"mailbox.{key}")
    if table.get("host"):
        if table.get("maildir"):
            raise ConfigError("mailbox.maildir and mailbox.host are both set: choose one")
        imap = {k: v for k, v in table.items() if k != "maildir"}
        return build(ImapSettings, imap, "mailbox", positive=True)
    maildir = table.get("maildir", EMBEDDED_MAILDIR)
    if not maildir:
        raise ConfigError("mailbox.maildir or mailbox.host must be set")
    keys = {f.name for f in dataclasses.fields(MaildirSettings)}
    subset = {k: v for k, v in table.items() if k in keys and v != ""} | {"maildir": maildir}
    return build(MaildirSettings, subset, "mailbox", positive=True)


def _check_recipients(addresses: tuple[str, ...], key: str) -> None:
    for number, address in enumerate(addresses):
        if not is_plausible_mailbox(address) or any(c in address for c in ",;\r\n"):
            raise ConfigError(f"{key}[{number}] is not one plain email address")
