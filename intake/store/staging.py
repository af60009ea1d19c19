"""Store stage, staging: where a batch's raw bytes wait between fetch and the batch commit.

A batch's raw bytes are written here as soon as it is fetched, and from then on a ``Staged``
handle stands for each message: the parse workers read their batch by key, and the batch
commit moves the bytes into ``raw_messages`` or ``quarantine`` inside the database
(INSERT ... SELECT). So the process that fetches lets go of a batch's bytes before it fetches
the next one, nothing downstream of fetch can lose them, and no process holds more than one
batch's raw mail (issue 17: 15 messages of 15 MB held two batches in the main process, plus the
copy ProcessPoolExecutor keeps of every argument until its result is back).

Rows a crashed pass left are cleared at the start of the next (``clear``). Imports only
``intake``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, insert, literal, select
from sqlalchemy import tuple_ as row_of
from sqlalchemy.exc import SQLAlchemyError

from intake.errors import StoreError
from intake.records import Quarantined, RawMessage, Staged
from intake.store import schema

RAW_COLUMNS = ("internal_at", "size", "too_large", "data")


def stage(engine: Engine, raws: Sequence[RawMessage]) -> tuple[Staged, ...]:
    """Write ``raws`` to the staging table in one transaction; the handles that stand for them
    from now on. A row a crashed pass left under the same key is replaced."""
    handles = tuple(
        Staged(r.mailbox, r.uidvalidity, r.uid, r.internal_at, r.size, r.too_large,
               hashlib.sha256(r.data).hexdigest())
        for r in raws
    )  # fmt: skip
    rows = [{"mailbox": h.mailbox, "uidvalidity": h.uidvalidity, "uid": h.uid,
             "internal_at": h.internal_at, "size": h.size, "too_large": h.too_large,
             "digest": h.digest, "data": r.data}
            for r, h in zip(raws, handles, strict=True)]  # fmt: skip
    if rows:
        with _begin(engine) as conn:
            drop(conn, handles)
            conn.execute(insert(schema.staged), rows)
    return handles


def read(engine: Engine, handles: Sequence[Staged]) -> list[RawMessage]:
    """The raw messages behind ``handles``, in their order (a parse worker's batch)."""
    s = schema.staged.c
    query = select(s.mailbox, s.uidvalidity, s.uid, s.data).where(_keys(handles))
    with _connect(engine) as conn:
        data = {(r.mailbox, r.uidvalidity, r.uid): r.data for r in conn.execute(query)}
    missing = [h.uid for h in handles if h.key not in data]
    if missing:
        raise StoreError(f"store: staged messages missing: uids {missing[:10]}")
    return [RawMessage(h.mailbox, h.uidvalidity, h.uid, h.internal_at, h.size, data.pop(h.key),
                       h.too_large) for h in handles]  # fmt: skip


def move_raw(conn: Connection, handle: Staged, story_id: str) -> None:
    """Store a staged message's bytes as ``story_id``'s raw message, inside the database."""
    s = schema.staged.c
    query = select(literal(story_id), *(s[name] for name in RAW_COLUMNS)).where(_keys([handle]))
    moved = conn.execute(insert(schema.raw_messages).from_select(["story_id", *RAW_COLUMNS], query))
    _one_row(moved.rowcount, handle)


def move_quarantined(conn: Connection, item: Quarantined, handle: Staged, now: datetime) -> None:
    """Quarantine a staged message with its stage and reason (the same bytes twice: one entry)."""
    q = schema.quarantine.c
    if conn.execute(select(q.id).where(q.digest == handle.digest)).first() is not None:
        return
    s = schema.staged.c
    values = {"stage": item.stage, "reason": item.reason, "detail": item.detail,
              "attempts": 1, "quarantined_at": now}  # fmt: skip
    columns = ["digest", "mailbox", "uidvalidity", "uid", *RAW_COLUMNS]
    query = select(
        *(s[name] for name in columns),
        *(literal(value, schema.quarantine.c[name].type) for name, value in values.items()),
    ).where(_keys([handle]))
    moved = conn.execute(insert(schema.quarantine).from_select([*columns, *values], query))
    _one_row(moved.rowcount, handle)


def drop(conn: Connection, handles: Sequence[Staged]) -> None:
    """Forget the staged rows of ``handles`` (committed, or about to be written again)."""
    if handles:
        conn.execute(delete(schema.staged).where(_keys(handles)))


def clear(engine: Engine, mailbox: str) -> None:
    """Forget every row staged for ``mailbox``: what a pass that crashed before its commit left
    (the messages are fetched again, their checkpoint never moved past them)."""
    with _begin(engine) as conn:
        conn.execute(delete(schema.staged).where(schema.staged.c.mailbox == mailbox))


def open_reader(url: str) -> Engine:
    """An engine for a parse worker to read its batch with (no schema work: the store that
    staged the batch made the tables)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _busy_timeout)
    return engine


def _one_row(count: int, handle: Staged) -> None:
    # A staged row that vanished would store a story without its raw message: the commit is
    # rolled back instead (nothing is marked, the message is fetched again).
    if count != 1:
        raise StoreError(f"store: staged message uid {handle.uid} is missing")


def _keys(handles: Sequence[Staged]) -> Any:
    s = schema.staged.c
    return row_of(s.mailbox, s.uidvalidity, s.uid).in_([h.key for h in handles])


def _busy_timeout(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


@contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn:
            yield conn
    except SQLAlchemyError as err:
        raise StoreError(_reason(err)) from err


@contextmanager
def _begin(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as err:
        raise StoreError(_reason(err)) from err


def _reason(err: SQLAlchemyError) -> str:
    # The driver's own message ("database or disk is full"), never SQLAlchemy's, which quotes
    # the statement's parameters: here, people's mail.
    orig = getattr(err, "orig", None)
    return f"store: {type(orig).__name__}: {orig}" if orig else f"store: {type(err).__name__}"
