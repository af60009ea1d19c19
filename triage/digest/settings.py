"""The digest part's settings: ``[digest]``. Filled by ``story_intake.settings``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DigestSettings:
    """``[digest]``: who gets the team's digest, and when."""

    recipients: tuple[str, ...] = ()
    schedule: str = "0 8 * * 1-5"
    timezone: str = "Europe/London"
    output_dir: str = "var/digests"
    send_empty: bool = True
