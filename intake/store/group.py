"""Store stage: the transactions a table group runs its queries in. SQLAlchemy Core only.

``Store`` is an engine and these transactions, composed of one ``TableGroup`` per group of
tables (``store.stories``, ``store.outbox``, ...). Every group runs in the same engine, so a
query of one group and another's share the store's pool and its error translation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from intake.errors import StoreError


class Transactions:
    """Connections and transactions on one engine; a driver error becomes a StoreError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reading (SQLite: no write lock is taken)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise StoreError(reason(err)) from err

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction, committed when the block ends without an error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise StoreError(reason(err)) from err


class TableGroup:
    """The queries on one group of tables; each public method is one transaction."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def _connect(self) -> AbstractContextManager[Connection]:
        return self._transactions.connect()

    def _begin(self) -> AbstractContextManager[Connection]:
        return self._transactions.begin()


def reason(err: SQLAlchemyError) -> str:
    """What a store error says: the driver's own message ("database or disk is full"), never
    SQLAlchemy's, which quotes the statement's parameters: people's stories."""
    orig = getattr(err, "orig", None)
    return (
        f"store: {type(orig or err).__name__}: {orig}" if orig else f"store: {type(err).__name__}"
    )
