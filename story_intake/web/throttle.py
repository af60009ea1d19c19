"""The review page, login throttling: per account and per client address.

After ``LIMIT`` failures within ``WINDOW`` a key is refused for a delay that doubles with every
further failure (up to ``MAX_DELAY``); a success clears the account and the address. Kept in
the serving process: a restart forgets it, which costs an attacker a restart per window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

LIMIT = 5
WINDOW = timedelta(hours=1)
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)


@dataclass
class Throttle:
    """Failed logins by key (``user:NAME`` and ``addr:HOST``): count and last failure."""

    failures: dict[str, tuple[int, datetime]] = field(default_factory=dict)

    def retry_after(self, keys: tuple[str, ...], now: datetime) -> int:
        """Seconds until any of ``keys`` may try again (0: now)."""
        waits = [self._wait(key, now) for key in keys]
        return max([0, *waits])

    def fail(self, keys: tuple[str, ...], now: datetime) -> None:
        """Count one failure against each key."""
        for key in keys:
            count, last = self.failures.get(key, (0, now))
            self.failures[key] = (1 if now - last > WINDOW else count + 1, now)

    def succeed(self, keys: tuple[str, ...]) -> None:
        """A correct login: forget these keys' failures."""
        for key in keys:
            self.failures.pop(key, None)

    def _wait(self, key: str, now: datetime) -> int:
        count, last = self.failures.get(key, (0, now))
        if count < LIMIT or now - last > WINDOW:
            return 0
        delay = min(BASE_DELAY * 2 ** (count - LIMIT), MAX_DELAY)
        return max(0, int((last + delay - now).total_seconds() + 0.999))
