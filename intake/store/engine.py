"""Store stage: RawMessage/Story <-> rows. The SQLAlchemy adapter and the only SQL in the project.

A batch is committed in one transaction together with its UID checkpoint and its pending
server marks, so a crash leaves either all of it or none of it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from intake.errors import StoreError
from intake.records import (
    MailboxState,
    Quarantined,
    RawMessage,
    Staged,
    Story,
    Triage,
)
from intake.store import rows, schema
from intake.store.digests import DigestRows
from intake.store.erasure import ErasureRows
from intake.store.outbox import OutboxRows
from intake.store.privacy import PrivacyRows
from intake.store.quarantine import QuarantineRows, quarantine_row
from intake.store.staging import Staging, staging_for
from intake.store.unsubscribe import UnsubscribeRows
from intake.store.worker import WorkerRows


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The ``[store]`` section. ``hash_key`` comes from the variable ``hash_key_env`` names;
    without it the store keeps a random key in a file beside the database (owner-only)."""

    url: str = "sqlite:///var/stories.db"
    hash_key_env: str = "STORY_HASH_KEY"
    hash_key: str = field(default="", repr=False, metadata={"toml": False})


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What committing one batch did."""

    stored: int
    duplicates: int
    quarantined: int
    fresh: frozenset[str] = frozenset()  # story_ids stored by this batch (not duplicates)


class Store(OutboxRows, DigestRows, WorkerRows, PrivacyRows, QuarantineRows, ErasureRows,
            UnsubscribeRows):
    """The pipeline's database. Every public method is one transaction."""

    def __init__(self, settings: StoreSettings) -> None:
        self.engine = _engine(settings.url)
        self.hash_key = settings.hash_key.encode("utf-8") or _key_beside(settings.url)
        self.staging = staging_for(settings.url)  # raw mail waiting for its batch commit
        _create_schema(self.engine)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def last_uid(self, state: MailboxState) -> int:
        """The checkpoint for (mailbox, UIDVALIDITY): the highest UID already handled."""
        c = schema.checkpoints.c
        query = select(c.last_uid).where(
            c.mailbox == state.mailbox, c.uidvalidity == state.uidvalidity
        )
        with self._connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def known_uidvalidities(self, mailbox: str) -> set[int]:
        """Every UIDVALIDITY this mailbox has had a checkpoint under."""
        c = schema.checkpoints.c
        with self._connect() as conn:
            rows = conn.execute(select(c.uidvalidity).where(c.mailbox == mailbox))
            return {int(r[0]) for r in rows}

    def commit_batch(
        self,
        state: MailboxState,
        last_uid: int,
        parsed: Sequence[tuple[RawMessage | Staged, Story]],
        failed: Sequence[Quarantined],
        now: datetime,
        triages: Mapping[str, Triage] | None = None,
    ) -> BatchResult:
        """Store a batch, its triage, quarantine, pending marks and checkpoint, atomically.

        A ``Staged`` message's bytes are read back from ``staging`` one at a time as they are
        stored, and its file removed once the batch is committed."""
        triages = triages or {}
        with self._begin() as conn:
            ids = [story.story_id for _, story in parsed]
            known = set(
                conn.execute(
                    select(schema.stories.c.story_id).where(schema.stories.c.story_id.in_(ids))
                ).scalars()
            )
            fresh = _first_of_each(parsed, known)
            if fresh:
                conn.execute(insert(schema.stories), [rows.story_row(s, now) for _, s in fresh])
                _insert_raw(conn, fresh, self.staging)
                tagged = [triages[s.story_id] for _, s in fresh if s.story_id in triages]
                if tagged:
                    conn.execute(insert(schema.triage), [rows.triage_row(t, now) for t in tagged])
            for item in failed:
                raw = item.raw
                held = self.staging.load(raw) if isinstance(raw, Staged) else raw
                quarantine_row(conn, replace(item, raw=held), now)
                del held
            uids = [r.uid for r, _ in parsed] + [q.raw.uid for q in failed]
            if uids:
                marks = [{"mailbox": state.mailbox, "uidvalidity": state.uidvalidity, "uid": u}
                         for u in uids]  # fmt: skip
                conn.execute(sqlite_insert(schema.pending_marks).on_conflict_do_nothing(), marks)
            if state.uidvalidity:
                _checkpoint(conn, state, last_uid, now)
        self.staging.drop([r for r in (*(r for r, _ in parsed), *(q.raw for q in failed))
                           if isinstance(r, Staged)])  # fmt: skip
        stored = frozenset(story.story_id for _, story in fresh)
        return BatchResult(len(fresh), len(parsed) - len(fresh), len(failed), stored)

    def pending_marks(self, state: MailboxState) -> list[int]:
        """UIDs stored under this UIDVALIDITY but not yet marked on the server."""
        c = schema.pending_marks.c
        query = select(c.uid).where(c.mailbox == state.mailbox, c.uidvalidity == state.uidvalidity)
        with self._connect() as conn:
            return sorted(int(u) for u in conn.execute(query).scalars())

    def clear_marks(self, state: MailboxState, uids: Sequence[int]) -> None:
        """Forget pending marks for these UIDs: they are marked on the server now."""
        c = schema.pending_marks.c
        query = delete(schema.pending_marks).where(
            c.mailbox == state.mailbox, c.uidvalidity == state.uidvalidity, c.uid.in_(list(uids))
        )
        with self._begin() as conn:
            conn.execute(query)

    def drop_stale_marks(self, state: MailboxState) -> None:
        """Forget pending marks under any other UIDVALIDITY: those UIDs mean nothing now."""
        c = schema.pending_marks.c
        query = delete(schema.pending_marks).where(
            c.mailbox == state.mailbox, c.uidvalidity != state.uidvalidity
        )
        with self._begin() as conn:
            conn.execute(query)

    def record_run(
        self, command: str, started_at: datetime, finished_at: datetime,
        counts: dict[str, int], error: str | None,
    ) -> None:  # fmt: skip
        """Remember one run for ``status``."""
        row = {"command": command, "started_at": started_at, "finished_at": finished_at,
               "counts": counts, "error": error}  # fmt: skip
        with self._begin() as conn:
            conn.execute(insert(schema.runs), [row])

    def status(self) -> dict[str, Any]:
        """Checkpoints, counts, the last run and the last error, as plain values."""
        with self._connect() as conn:
            cp = conn.execute(select(schema.checkpoints)).mappings().all()
            runs = schema.runs.c
            last = conn.execute(select(schema.runs).order_by(runs.id.desc()).limit(1)).first()
            failed = select(schema.runs).where(runs.error.is_not(None))
            last_error = conn.execute(failed.order_by(runs.id.desc()).limit(1)).first()
            return {
                "checkpoints": [{k: rows.plain(v) for k, v in row.items()} for row in cp],
                "stories": conn.execute(select(func.count()).select_from(schema.stories)).scalar(),
                "quarantined": conn.execute(
                    select(func.count()).select_from(schema.quarantine)
                ).scalar(),
                "pending_marks": conn.execute(
                    select(func.count()).select_from(schema.pending_marks)
                ).scalar(),
                "acknowledgements": self.outbox_counts(),
                "last_run": rows.run_summary(last),
                "last_error": rows.run_summary(last_error),
            }

    def stories(self) -> Iterator[Story]:
        """Every stored story, in the order received."""
        for story, _ in self.triaged():
            yield story

    def triaged(self) -> Iterator[tuple[Story, Triage | None]]:
        """Every stored story with its triage (None if not tagged yet), in the order received."""
        with self._connect() as conn:
            for row in conn.execute(schema.stories_with_triage()).mappings():
                yield rows.row_story(row), rows.row_triage(row)

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
    # The driver's own message ("database or disk is full"), never SQLAlchemy's, which
    # quotes the statement's parameters: people's stories.
    orig = getattr(err, "orig", None)
    return (
        f"store: {type(orig or err).__name__}: {orig}" if orig else f"store: {type(err).__name__}"
    )


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Owner-only from the first byte; SQLite gives its -wal/-shm files the same mode. Only
        # ever a new file: closing a descriptor of an existing one would drop every POSIX
        # lock this process holds on it (SQLite's, in another thread's Store), and another
        # process could then write, or delete the WAL, under that Store's feet.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


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
                raise StoreError(f"store: cannot create schema: {_reason(err)}") from err
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


def _key_beside(url: str) -> bytes:
    """The store's own hashing key: ``<database>.key`` beside a SQLite file, created once with
    32 random bytes, owner-only. (An in-memory store gets a key for its lifetime.)"""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return secrets.token_bytes(32)
    path = Path(url.removeprefix("sqlite:///") + ".key")
    if not path.exists():
        # Written whole under a private name, then linked into place: a process starting at the
        # same moment sees either no key or the whole key, never an empty file. The first
        # link wins; every process then reads the same key.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_hex(32).encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten, not left in free pages: erasure and retention mean gone.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _insert_raw(
    conn: Connection, fresh: Sequence[tuple[RawMessage | Staged, Story]], staging: Staging
) -> None:
    # Staged messages are read back here: this batch's bytes, the only batch in this process.
    staged = iter(staging.read([r for r, _ in fresh if isinstance(r, Staged)]))
    held = [rows.raw_row(r if isinstance(r, RawMessage) else next(staged), s) for r, s in fresh]
    conn.execute(insert(schema.raw_messages), held)


def _first_of_each(
    parsed: Sequence[tuple[RawMessage | Staged, Story]], known: set[str]
) -> list[tuple[RawMessage | Staged, Story]]:
    seen = set(known)
    fresh = []
    for raw, story in parsed:
        if story.story_id not in seen:
            seen.add(story.story_id)
            fresh.append((raw, story))
    return fresh


def _checkpoint(conn: Any, state: MailboxState, last_uid: int, now: datetime) -> None:
    row = {"mailbox": state.mailbox, "uidvalidity": state.uidvalidity,
           "last_uid": last_uid, "updated_at": now}  # fmt: skip
    upsert = sqlite_insert(schema.checkpoints).values(row)
    conn.execute(upsert.on_conflict_do_update(
        index_elements=["mailbox", "uidvalidity"],
        set_={"last_uid": upsert.excluded.last_uid, "updated_at": now},
    ))  # fmt: skip
