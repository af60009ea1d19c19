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

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from intake.errors import StoreError
from intake.store import dialect, schema
from intake.store.digests import DigestRows
from intake.store.erasure import ErasureRows
from intake.store.group import Transactions, reason
from intake.store.outbox import OutboxRows
from intake.store.privacy import PrivacyRows
from intake.store.quarantine import QuarantineRows
from intake.store.runs import RunRows
from intake.store.stories import BatchResult, StoryRows
from intake.store.unsubscribe import UnsubscribeRows
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
        _create_schema(self.engine)
        self._transactions = Transactions(self.engine)
        self.stories = StoryRows(self._transactions)  # stories, raw mail, triage, checkpoints
        self.runs = RunRows(self._transactions)  # run records and status
        self.quarantine = QuarantineRows(self._transactions)
        self.outbox = OutboxRows(self._transactions)  # acknowledgement decisions and states
        self.digests = DigestRows(self._transactions)
        self.worker = WorkerRows(self._transactions)  # the lease, poll/send health, breaker
        self.privacy = PrivacyRows(self._transactions)  # retention, erasure, holds, access
        self.erasure = ErasureRows(self._transactions)  # an erasure's remaining work
        self.unsubscribe = UnsubscribeRows(self._transactions)  # the suppression list

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


def _create_schema(engine: Engine, attempts: int = 5) -> None:
    """Create the tables that are missing. Two processes starting on a fresh store at once
    (a worker and a ``once``) both find a table missing and one CREATE fails ("already
    exists"): looking again then finds it, so a failure is retried a few times."""
    for attempt in range(attempts):
        try:
            schema.metadata.create_all(engine)
            _add_missing_columns(engine)
            _create_indexes(engine)
            return
        except OperationalError as err:
            if attempt == attempts - 1:
                raise StoreError(f"store: cannot create schema: {reason(err)}") from err
            time.sleep(0.05 * (attempt + 1))
        except SQLAlchemyError as err:
            raise StoreError(f"store: cannot create schema: {type(err).__name__}") from err


def _add_missing_columns(engine: Engine) -> None:
    """Add the columns a later version gave an existing table (nullable or with a server
    default, so ALTER TABLE ADD COLUMN can fill the rows already there).

    create_all leaves an existing table as it is. Until the store has proper migrations
    (Alembic, with the layout issue) this keeps a store made by an earlier version working.
    """
    with engine.begin() as conn:
        present = inspect(conn)
        for table in schema.metadata.sorted_tables:
            have = {column["name"] for column in present.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                default = column.server_default
                clause = f" DEFAULT {default.arg.text}" if default is not None else ""  # type: ignore[attr-defined]
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" '
                                  f"{kind}{clause}"))  # fmt: skip


def _create_indexes(engine: Engine) -> None:
    # create_all makes a missing table with its indexes, but leaves an existing table as it
    # is: an index added in a later version would never reach a store made before it.
    for table in schema.metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)
