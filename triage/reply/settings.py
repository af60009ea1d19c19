"""The reply part's settings: ``[smtp]`` (how mail goes out) and ``[acknowledgement]``
(whether and how often people get a reply). Filled by ``story_intake.settings``; imports only
``intake.errors``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from intake.errors import ConfigError
from intake.oauth2 import TokenProvider


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
    auth: Literal["password", "oauth2"] = "password"
    ca_file: str = ""
    # auth = oauth2: SMTP's own OAuth2 client; "" inherits [mailbox]'s key of the same name
    # (story_intake.smtp_client). Setting any of them gives SMTP a client of its own.
    oauth2_provider: Literal["", "microsoft", "google", "generic"] = ""
    oauth2_authority: str = ""
    oauth2_tenant: str = ""
    oauth2_client_id: str = ""
    oauth2_client_secret_env: str = ""
    oauth2_scope: str = ""
    password: str = field(default="", repr=False, metadata={"toml": False})
    # oauth2: SMTP's own token provider, set up by the application (story_intake.secrets).
    tokens: TokenProvider | None = field(
        default=None, repr=False, compare=False, metadata={"toml": False}
    )

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
