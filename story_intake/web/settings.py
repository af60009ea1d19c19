"""The review page's settings, ``[review]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from intake.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """``[review]``: where the page is reached (links in the digest), how long a session
    lasts and may sit idle, and whether cookies are Secure ("auto": when base_url is https)."""

    base_url: str = ""
    session_hours: int = 12
    idle_minutes: int = 30
    secure_cookies: bool | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        if self.base_url and not self.base_url.startswith(("https://", "http://")):
            raise ConfigError("review.base_url must start with https:// or http://")
        if self.idle_minutes > self.session_hours * 60:
            raise ConfigError("review.idle_minutes must not exceed review.session_hours")

    @property
    def cookies_secure(self) -> bool:
        """Whether the session cookie carries the Secure flag."""
        if self.secure_cookies == "auto":
            return self.base_url.startswith("https://")
        return bool(self.secure_cookies)
