"""Load ``pipeline.toml`` into frozen settings; the only reader of configuration.

Unknown keys, wrong types, numbers not above 0 and wrong shapes stop the program at start
with a ConfigError that names the key, never a value; keys left out keep their documented
defaults. Secrets are never in the file: a key ending in ``_env`` names the variable that holds
them, read (``config.secrets``) only for the parts a command logs in to.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from config.addresses import own_addresses
from config.schedule import cron_trigger
from config.schema import build, check, read_toml
from config.secrets import ALL, with_secrets
from config.themes import DEFAULT_THEMES, load_themes
from intake.errors import ConfigError
from intake.fetch import ImapSettings, is_loopback
from intake.maildir import MaildirSettings
from intake.store import StoreSettings
from triage.acknowledge import is_plausible_mailbox
from triage.rules import TagSettings


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    """``[intake]``: the mailbox's own addresses, to recognise mail to and from itself, how
    many worker processes parse and tag (0: all in the one process), and the authserv-ids of
    the team's own border whose ``Authentication-Results`` headers count (none: no message
    is authenticated, so every request that changes data waits for a person)."""

    addresses: tuple[str, ...] = ("stories@example.org",)
    workers: int = field(default=1, metadata={"zero_allowed": True})
    trusted_authserv_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.workers <= 16:
            raise ConfigError("intake.workers must be between 0 and 16")
        for authserv_id in self.trusted_authserv_ids:
            # One token, as RFC 8601 writes it: spaces or ";" could never match a header.
            if not authserv_id or any(c.isspace() or c in ";()=" for c in authserv_id):
                raise ConfigError("intake.trusted_authserv_ids must be single host-like names")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """``[smtp]``: a pickup folder (embedded default) or an SMTP server when ``host`` is set."""

    from_address: str = "stories@example.org"
    pickup_dir: str = "var/outbox"
    host: str = ""
    port: int = 587
    security: Literal["ssl", "starttls", "none"] = "starttls"
    username: str = ""
    password_env: str = ""
    sent_folder: str = ""
    envelope_sender: str = ""
    timeout: float = 30.0
    password: str = field(default="", repr=False, metadata={"toml": False})

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= 600:
            raise ConfigError("smtp.timeout must be between 0 and 600 seconds")


@dataclass(frozen=True, slots=True)
class AcknowledgementSettings:
    """``[acknowledgement]``: whether and how often people get a reply."""

    enabled: bool = True
    per_sender_days: int = 7
    max_age_days: int = 7
    # 0 is a cap too: every reply is held until someone runs `release` (a pause).
    max_per_hour: int = field(default=200, metadata={"zero_allowed": True})
    team_name: str = "The Stories Team"
    subject: str = "Auto: Thank you for sharing your story [{reference}]"
    help_text: str = (
        "If you are in immediate danger, please call 999.\n"
        "If you need to talk to someone today, you can call NHS 111 and choose option 2 for "
        "mental health support, or call Samaritans free, day or night, on 116 123."
    )
    crisis_terms: tuple[str, ...] = (
        "suicide", "suicidal", "kill myself", "killing myself", "end my life", "ending my life",
        "end it all", "take my own life", "taking my own life", "want to die", "better off dead",
        "no reason to live", "self harm", "selfharm", "self harming", "harm myself",
        "hurt myself", "hurting myself", "overdose", "overdosed", "overdosing",
        "immediate danger", "not safe tonight", "don't feel safe", "do not feel safe",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DigestSettings:
    """``[digest]``: who gets the team's digest, and when."""

    recipients: tuple[str, ...] = ()
    schedule: str = "0 8 * * 1-5"
    timezone: str = "Europe/London"
    output_dir: str = "var/digests"
    send_empty: bool = True


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """``[schedule]``: how often the worker polls."""

    poll_seconds: int = 300


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """``[alerts]``: who hears about repeated failures, and after how many."""

    recipients: tuple[str, ...] = ()
    after_failures: int = 3


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """``[retention]``: how long each kind of stored data is kept, in days."""

    raw_days: int = 180
    body_days: int = 180
    quarantine_days: int = 180
    outbox_days: int = 30
    digest_days: int = 180
    purge_mailbox: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the pipeline is configured with."""

    mailbox: ImapSettings | MaildirSettings
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    acknowledgement: AcknowledgementSettings = field(default_factory=AcknowledgementSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    tagger: TagSettings = field(default_factory=lambda: load_themes(DEFAULT_THEMES))


EMBEDDED_MAILDIR = "var/mailbox"

_SECTIONS: dict[str, type[Any]] = {
    "smtp": SmtpSettings, "intake": IntakeSettings, "store": StoreSettings,
    "acknowledgement": AcknowledgementSettings, "digest": DigestSettings,
    "schedule": ScheduleSettings, "alerts": AlertSettings, "retention": RetentionSettings,
}  # fmt: skip


def load_settings(
    path: Path, environ: Mapping[str, str], secrets: Collection[str] = ALL
) -> Settings:
    """Read and validate the TOML file at ``path``; the ``secrets`` of those parts (see
    ``config.secrets``) come from ``environ``.

    The tagger's vocabulary is ``themes.toml`` beside it, or the shipped one when there is none.
    """
    document = read_toml(path, "config")
    themes = path.parent / "themes.toml"
    tagger = load_themes(themes if themes.exists() else DEFAULT_THEMES)
    return dataclasses.replace(settings_from(document, environ, secrets), tagger=tagger)


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
        document, mailbox, sections["intake"], sections["smtp"])
    smtp = sections["smtp"]
    if smtp.host and smtp.security == "none" and not is_loopback(smtp.host):
        raise ConfigError("smtp.security = none is only allowed for a loopback host")
    if smtp.host and smtp.username and not smtp.password_env:
        raise ConfigError("smtp.password_env must name an environment variable")
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
        if key not in hints or key == "password":
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
