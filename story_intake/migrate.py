"""The ``migrate`` command: bring the store's schema to this version's, and say what changed.

Opening the store upgrades it (``intake.store.upgrade``), so this is the same step taken on
its own, for instance right after installing a new version and before starting the worker.
It reads no mailbox or SMTP secret.
"""

from __future__ import annotations

from intake.store.engine import Store, StoreSettings


def migrate(settings: StoreSettings) -> str:
    """Upgrade the store to the newest revision; ``from X to Y (backup: PATH)`` or
    ``up to date (Y)``."""
    with Store(settings) as store:
        done = store.upgraded
    saved = f" (backup: {done.backup})" if done.backup else ""
    return done.describe() + saved
