"""What the pipeline is configured with: ``Settings``, one frozen part per section, and the
application's own parts (``[intake]``, ``[schedule]``). Each other part's settings live beside
its code; ``story_intake.settings`` fills them all from the TOML files."""

from __future__ import annotations

from dataclasses import dataclass, field

from intake.errors import ConfigError
from intake.sources.imap import ImapSettings
from intake.sources.maildir import MaildirSettings
from intake.store.engine import StoreSettings
from story_intake.themes import DEFAULT_THEMES, load_themes
from story_intake.web.settings import ReviewSettings
from triage.alerts import AlertSettings
from triage.digest.settings import DigestSettings
from triage.privacy import RetentionSettings
from triage.reply.settings import AcknowledgementSettings, SmtpSettings
from triage.tag.rules import TagSettings


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
class ScheduleSettings:
    """``[schedule]``: how often the worker polls, and how it waits with IMAP IDLE."""

    poll_seconds: int = 300
    idle: bool = True
    idle_renew_seconds: int = 1740  # RFC 2177: re-issue IDLE at least every 29 minutes
    idle_silence_seconds: int = 300


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
    review: ReviewSettings = field(default_factory=ReviewSettings)
    tagger: TagSettings = field(default_factory=lambda: load_themes(DEFAULT_THEMES))
