"""Store stage: the base of a table group that works on a Store's engine.

A group is composed beside the Store (``Accounts(store.engine)``) rather than mixed into it;
it translates SQLAlchemy's errors into StoreError the way the Store does, naming the
driver's reason, never the statement's parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from intake.errors import StoreError


class TableGroup:
    """Queries on some tables of the store, one transaction per public method."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise StoreError(_reason(err)) from err

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise StoreError(_reason(err)) from err


def _reason(err: SQLAlchemyError) -> str:
    orig = getattr(err, "orig", None)
    if orig is None:
        return f"store: {type(err).__name__}"
    return f"store: {type(orig).__name__}: {orig}"
