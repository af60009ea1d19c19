"""Store stage: exactly once by story_id, atomic batches, checkpoints and pending marks."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import story_message

from intake.errors import StoreError
from intake.parse import parse
from intake.records import Acknowledgement, MailboxState, Quarantined, RawMessage
from intake.store.engine import Store, StoreSettings

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
STATE = MailboxState("INBOX", 42)


def raw(data: bytes, uid: int) -> RawMessage:
    return RawMessage("INBOX", 42, uid, AT, len(data), data)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(StoreSettings(f"sqlite:///{tmp_path}/var/stories.db"))


def test_store_same_story_twice_in_one_batch_and_across_batches_is_one_row(store: Store) -> None:
    first = raw(story_message(1, message_id="<same@example.org>"), 1)
    copy = raw(story_message(1, message_id="<same@example.org>"), 2)
    other = raw(story_message(2), 3)
    batch = [(r, parse(r)) for r in (first, copy, other)]
    result = store.stories.commit_batch(STATE, 3, batch, [], AT)
    assert (result.stored, result.duplicates) == (2, 1)
    again = raw(story_message(1, message_id="<same@example.org>"), 4)
    result = store.stories.commit_batch(STATE, 4, [(again, parse(again))], [], AT)
    assert (result.stored, result.duplicates) == (0, 1)
    assert sorted(s.story_id for s in store.stories.stories()) == sorted(
        ["same@example.org", parse(other).story_id]
    )


def test_store_undecided_lists_stories_without_a_decision_until_none_is_left(
    store: Store,
) -> None:
    raws = [raw(story_message(n, message_id=f"<u{n}@example.org>"), n) for n in range(1, 4)]
    store.stories.commit_batch(STATE, 3, [(r, parse(r)) for r in raws], [], AT)
    undecided = [s.story_id for s, _ in store.outbox.undecided(10)]
    assert undecided == [f"u{n}@example.org" for n in (1, 2, 3)]
    decided = [
        (
            Acknowledgement(
                f"u{n}@example.org", "send", "acknowledgement", "a@example.org", "pending"
            ),
            store.sender_key("a@example.org"),
        )
        for n in (1, 3)
    ]
    store.outbox.record_decisions(decided, AT)  # fmt: skip
    assert [s.story_id for s, _ in store.outbox.undecided(10)] == ["u2@example.org"]
    store.outbox.record_decisions([(replace(decided[0][0], story_id="u2@example.org"), "k")], AT)
    assert store.outbox.undecided(10) == []


def test_store_story_round_trips_every_field(store: Store) -> None:
    data = (Path(__file__).parent / "data" / "traversal_attachment_name.eml").read_bytes()
    message = raw(data, 1)
    story = parse(message)
    store.stories.commit_batch(STATE, 1, [(message, story)], [], AT)
    (loaded,) = store.stories.stories()
    assert loaded == story


def test_store_checkpoint_is_per_uidvalidity(store: Store) -> None:
    assert store.stories.last_uid(STATE) == 0
    store.stories.commit_batch(STATE, 17, [], [], AT)
    assert store.stories.last_uid(STATE) == 17
    assert store.stories.last_uid(MailboxState("INBOX", 43)) == 0
    assert store.stories.known_uidvalidities("INBOX") == {42}


def test_store_quarantine_keeps_raw_bytes_once(store: Store, now: datetime) -> None:
    bad = raw(b"\x00garbage", 5)
    item = Quarantined(bad, "parse", "ParseError: nothing readable", "traceback")
    store.stories.commit_batch(STATE, 5, [], [item], now)
    store.stories.commit_batch(STATE, 5, [], [item], now + timedelta(minutes=5))
    (entry,) = store.quarantine.quarantined()
    assert entry.raw.data == b"\x00garbage"
    assert (entry.stage, entry.attempts) == ("parse", 1)
    assert entry.reason == "ParseError: nothing readable"
    assert hashlib.sha256(entry.raw.data).hexdigest()


def test_store_pending_marks_survive_until_cleared(store: Store) -> None:
    message = raw(story_message(1), 9)
    store.stories.commit_batch(STATE, 9, [(message, parse(message))], [], AT)
    assert store.stories.pending_marks(STATE) == [9]
    store.stories.drop_stale_marks(STATE)
    assert store.stories.pending_marks(STATE) == [9]
    store.stories.drop_stale_marks(MailboxState("INBOX", 43))  # the UIDVALIDITY changed
    assert store.stories.pending_marks(STATE) == []
    store.stories.commit_batch(STATE, 9, [(message, parse(message))], [], AT)
    store.stories.clear_marks(STATE, [9])
    assert store.stories.pending_marks(STATE) == []


def test_store_database_file_is_owner_only(store: Store, tmp_path: Path) -> None:
    database = tmp_path / "var" / "stories.db"
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(database.parent).st_mode) == 0o700


def test_store_run_history_feeds_status(store: Store) -> None:
    store.runs.record_run("once", AT, AT + timedelta(seconds=2), {"fetched": 3}, None)
    store.runs.record_run("once", AT, AT + timedelta(seconds=3), {"fetched": 0}, "FetchError: down")
    status = store.runs.status()
    assert status["last_run"]["error"] == "FetchError: down"
    assert status["last_error"]["counts"] == {"fetched": 0}
    assert status["stories"] == 0


def open_at_once(url: str, count: int) -> tuple[list[bytes], list[str]]:
    """Open the store at ``url`` from ``count`` threads released together."""
    start, keys, errors = threading.Barrier(count), [], []

    def open_store() -> None:
        start.wait()
        try:
            with Store(StoreSettings(url)) as store:
                keys.append(store.hash_key)
        except StoreError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return keys, errors


def test_store_opened_by_many_at_once_on_a_fresh_path_agrees_on_schema_and_key(
    tmp_path: Path,
) -> None:
    # Two processes starting together (a worker and a `once`) both found tables missing and
    # one CREATE failed, and one could read the hashing key before it was written: an empty
    # key, so the same sender had two keys. Each round opens a fresh store from six threads.
    for round_number in range(5):
        folder = tmp_path / f"round{round_number}"
        keys, errors = open_at_once(f"sqlite:///{folder}/s.db", 6)
        assert errors == []
        assert len(keys) == 6 and len(set(keys)) == 1 and len(keys[0]) == 64
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no drafts


def test_store_opening_again_keeps_the_locks_this_process_holds(tmp_path: Path) -> None:
    # POSIX record locks belong to the process and go when *any* descriptor of the file is
    # closed. A Store opened while another in the same process (the lease thread beside a
    # poll) holds SQLite's locks must not open and close the database file itself: two `run`
    # workers then corrupted the store ("database disk image is malformed").
    import sqlite3
    import subprocess
    import sys

    database = tmp_path / "stories.db"
    settings = StoreSettings(f"sqlite:///{database}")
    Store(settings).close()
    probe = ("import fcntl, sys\nf = open(sys.argv[1], 'rb+')\n"
             "try:\n    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 512, (1 << 30) + 2)\n"
             "except OSError:\n    sys.exit(3)\n")  # fmt: skip
    reader, other = sqlite3.connect(database, isolation_level=None), None
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM stories").fetchall()  # SQLite's SHARED lock
        other = Store(settings)  # open beside it, as the lease thread's is beside a poll
        taken = subprocess.run([sys.executable, "-c", probe, str(database)], check=False)
        assert taken.returncode == 3, "another process could lock what this one still holds"
    finally:
        reader.close()
        if other is not None:
            other.close()


def test_store_made_by_an_earlier_version_gets_the_columns_added_since(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/stories.db"
    Store(StoreSettings(url)).close()
    import sqlite3

    with sqlite3.connect(tmp_path / "stories.db") as db:  # as a store before the column
        db.execute('ALTER TABLE runs DROP COLUMN "error"')
        db.execute("DROP TABLE alembic_version")  # an earlier version wrote none
    with Store(StoreSettings(url)) as store:
        store.runs.record_run("once", AT, AT, {"fetched": 1}, "boom")
        assert store.runs.status()["last_run"]["error"] == "boom"


def test_store_backup_is_a_whole_owner_only_copy_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import maildir_config

    from story_intake.cli import main

    config = maildir_config(tmp_path / "site")
    url = f"sqlite:///{tmp_path}/site/s.db"
    with Store(StoreSettings(url)) as store:  # a writer holds the store open meanwhile
        message = raw(story_message(1), 1)
        store.stories.commit_batch(STATE, 1, [(message, parse(message))], [], AT)
        target = tmp_path / "backup.db"
        assert main(["--config", str(config), "backup", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with Store(StoreSettings(f"sqlite:///{target}")) as copy:
        assert [s.story_id for s in copy.stories.stories()] == [parse(message).story_id]
    before = target.read_bytes()
    capsys.readouterr()
    assert main(["--config", str(config), "backup", str(target)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err and target.read_bytes() == before
