"""Store stage: the SQLAlchemy adapter and the only SQL in the project.

``Store`` is an engine and its transactions, composed of one object per group of tables
(``intake.store.stories``, ``outbox``, ``digests``, ...), each in its own module.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from intake.errors import StoreError
from intake.store import dialect
from intake.store.accounts import Accounts
from intake.store.digests import DigestRows
from intake.store.erasure import ErasureRows
from intake.store.group import Transactions, reason
from intake.store.outbox import OutboxRows
from intake.store.privacy import PrivacyRows
from intake.store.quarantine import QuarantineRows
from intake.store.reply_events import ReplyEventRows
from intake.store.review import ReviewRows
from intake.store.runs import RunRows
from intake.store.staging import staging_for
from intake.store.stories import BatchResult, StoryRows
from intake.store.unsubscribe import UnsubscribeRows
from intake.store.upgrade import Upgrade, upgrade
from intake.store.worker import WorkerRows

__all__ = ["BatchResult", "Store", "StoreSettings"]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The ``[store]`` section. ``hash_key`` comes from the variable ``hash_key_env`` names;
    without it the store keeps a random key in a file beside the database (owner-only)."""

    url: str = "sqlite:///var/stories.db"
    hash_key_env: str = "STORY_HASH_KEY"
    hash_key: str = field(default="", repr=False, metadata={"toml": False})


class Store:
    """The pipeline's database: an engine and its transactions, composed of one object per
    group of tables. Every public method of a group is one transaction."""

    def __init__(self, settings: StoreSettings) -> None:
        self.engine = dialect.open_engine(settings.url)
        self.hash_key = settings.hash_key.encode("utf-8") or dialect.key_beside(settings.url)
        # The schema changes only here, by the migrations: created, or upgraded after a backup.
        try:
            self.upgraded = _upgrade(self.engine, settings.url)
        except StoreError:
            self.engine.dispose()
            raise
        self._transactions = Transactions(self.engine)
        self.staging = staging_for(settings.url)  # raw mail waiting for its batch commit
        # stories, raw mail, triage, checkpoints
        self.stories = StoryRows(self._transactions, self.staging)
        self.runs = RunRows(self._transactions)  # run records and status
        self.quarantine = QuarantineRows(self._transactions)
        self.outbox = OutboxRows(self._transactions)  # acknowledgement decisions and states
        self.digests = DigestRows(self._transactions)
        self.worker = WorkerRows(self._transactions)  # the lease, poll/send health, breaker
        self.privacy = PrivacyRows(self._transactions)  # retention, erasure, holds, access
        self.erasure = ErasureRows(self._transactions)  # an erasure's remaining work
        self.unsubscribe = UnsubscribeRows(self._transactions)  # the suppression list
        self.accounts = Accounts(self._transactions)  # review page users and sessions
        self.review = ReviewRows(self._transactions)  # audit log, corrections, reviewed marks
        self.reply_events = ReplyEventRows(self._transactions)  # the reply's history

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def sender_key(self, address: str) -> str:
        """What the store remembers instead of a (normalised) address: a keyed hash
        (HMAC-SHA256), so no table alone can be searched for a known address."""
        return hmac.new(self.hash_key, address.encode("utf-8"), hashlib.sha256).hexdigest()

    def _connect(self) -> AbstractContextManager[Connection]:
        return self._transactions.connect()

    def _begin(self) -> AbstractContextManager[Connection]:
        return self._transactions.begin()


def _upgrade(engine: Engine, url: str, attempts: int = 5) -> Upgrade:
    """Bring the schema to the newest revision (``intake.store.upgrade``).

    Openers of a fresh store at once can meet SQLite's "database is locked" without its busy
    wait (a lock it will not wait for, such as the switch to WAL): looking again, after the
    others, finds the store upgraded, so that error is retried a few times."""
    for attempt in range(attempts):
        try:
            return upgrade(engine, url)
        except OperationalError as err:
            if "locked" not in str(err.orig) or attempt == attempts - 1:
                raise StoreError(f"store: cannot upgrade the schema: {reason(err)}") from err
            time.sleep(0.2 * (attempt + 1))
        except SQLAlchemyError as err:
            raise StoreError(f"store: cannot upgrade the schema: {reason(err)}") from err
    raise AssertionError("unreachable: the last attempt returns or raises")
