"""Fetch stage against a real Dovecot: checkpoints, marks, UIDVALIDITY, vanishing, dead servers."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from conftest import DovecotServer, Mailbox, story_message

from intake.errors import FetchError
from intake.records import Batch, MailboxState
from intake.sources.imap import SIZE_CHUNK_BATCHES, ImapSettings, ImapSource
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.pipeline import run_once

SEEN = b"\\Seen"
TRIAGED = b"$Triaged"
MakeSettings = Callable[..., Settings]


def stored_ids(settings: Settings) -> list[str]:
    with Store(settings.store) as store:
        return [story.story_id for story in store.stories.stories()]


def test_fetch_stores_each_distinct_message_once_and_never_sets_seen(
    mailbox: Mailbox, imap_settings: MakeSettings, now: datetime
) -> None:
    messages = [story_message(n) for n in range(5)]
    messages += [story_message(9, message_id="<twin@example.org>")] * 2
    messages += [story_message(10, message_id=None)]
    mailbox.append(*messages)
    settings = imap_settings(mailbox, batch_size=3)
    first = run_once(settings, now)
    second = run_once(settings, now)
    assert (first.fetched, first.stored, first.duplicates, first.quarantined) == (8, 7, 1, 0)
    assert (second.fetched, second.stored) == (0, 0)
    ids = stored_ids(settings)
    assert len(ids) == len(set(ids)) == 7
    assert sum(i.startswith("sha256:") for i in ids) == 1
    flags = mailbox.flags()
    assert len(flags) == 8
    assert all(TRIAGED in f and SEEN not in f for f in flags.values())


def test_fetch_uidvalidity_reset_creates_no_duplicates(
    mailbox: Mailbox, imap_settings: MakeSettings, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    old = [story_message(n) for n in range(4)] + [story_message(4, message_id=None)]
    mailbox.append(*old, folder="Stories")
    settings = imap_settings(mailbox, folder="Stories")
    assert run_once(settings, now).stored == 5
    before = mailbox.uidvalidity("Stories")
    mailbox.delete_folder("Stories")
    mailbox.append(*old, story_message(5), folder="Stories")
    assert mailbox.uidvalidity("Stories") != before
    counts = run_once(settings, now)
    assert (counts.fetched, counts.stored, counts.duplicates) == (6, 1, 5)
    assert len(stored_ids(settings)) == 6
    assert "UIDVALIDITY of Stories changed" in caplog.text


class AppendDuringRun(ImapSource):
    """A real ImapSource; another client APPENDs while the first batch is in hand."""

    def __init__(self, settings: ImapSettings, box: Mailbox) -> None:
        super().__init__(settings)
        self.box = box

    def fetch_new(self, state: MailboxState, last_uid: int) -> Iterator[Batch]:
        for number, batch in enumerate(super().fetch_new(state, last_uid)):
            if number == 0:
                self.box.append(story_message(100, message_id="<late@example.org>"))
            yield batch


def test_fetch_message_appended_during_run_is_picked_up_next_run(
    mailbox: Mailbox, imap_settings: MakeSettings, now: datetime
) -> None:
    mailbox.append(*(story_message(n) for n in range(4)))
    settings = imap_settings(mailbox, batch_size=2)
    assert isinstance(settings.mailbox, ImapSettings)
    first = run_once(settings, now, AppendDuringRun(settings.mailbox, mailbox))
    assert (first.fetched, first.stored) == (4, 4)
    second = run_once(settings, now)
    assert (second.fetched, second.stored) == (1, 1)
    assert "late@example.org" in stored_ids(settings)
    assert all(TRIAGED in f for f in mailbox.flags().values())


def test_fetch_moves_to_processed_folder_only_what_was_stored(
    mailbox: Mailbox, imap_settings: MakeSettings, now: datetime
) -> None:
    mailbox.append(*(story_message(n) for n in range(3)))
    settings = imap_settings(mailbox, processed_folder="Processed")
    assert run_once(settings, now).stored == 3
    assert mailbox.flags() == {}
    moved = mailbox.flags("Processed")
    assert len(moved) == 3 and all(TRIAGED in f and SEEN not in f for f in moved.values())
    mailbox.append(story_message(7))
    assert run_once(settings, now).stored == 1
    assert len(mailbox.flags("Processed")) == 4


def test_fetch_too_large_message_stores_headers_only(
    mailbox: Mailbox, imap_settings: MakeSettings, now: datetime
) -> None:
    huge = story_message(1, message_id="<huge@example.org>", body="x" * 30_000_000)
    mailbox.append(huge, story_message(2))
    counts = run_once(imap_settings(mailbox), now)
    assert (counts.fetched, counts.stored, counts.too_large) == (2, 2, 1)
    with sqlite3.connect(imap_settings(mailbox).store.url.removeprefix("sqlite:///")) as db:
        size, too_large, stored = db.execute(
            "SELECT size, too_large, length(data) FROM raw_messages WHERE story_id = ?",
            ("huge@example.org",),
        ).fetchone()
    assert size > 30_000_000 and too_large == 1 and stored < 2_000


def test_fetch_sizes_are_asked_a_few_batches_at_a_time_and_the_limit_is_inclusive(
    mailbox: Mailbox, imap_settings: MakeSettings
) -> None:
    # One message a batch: the large one is the twelfth, past the first UID SEARCH LARGER
    # (SIZE_CHUNK_BATCHES batches), and one exactly at the limit stays whole.
    mailbox.append(*(story_message(n) for n in range(11)))
    mailbox.append(story_message(11, body="x" * 5000), story_message(12, body="y" * 3000))
    with mailbox.server.client(mailbox.user) as client:
        client.select_folder("INBOX", readonly=True)
        sizes = {
            uid: row[b"RFC822.SIZE"] for uid, row in client.fetch("1:*", ["RFC822.SIZE"]).items()
        }
    limit = sizes[13]  # the "y" message: exactly at the limit
    assert sizes[12] > limit > max(sizes[u] for u in range(1, 12))
    settings = imap_settings(mailbox, batch_size=1, max_message_bytes=limit)
    assert isinstance(settings.mailbox, ImapSettings) and SIZE_CHUNK_BATCHES < 12
    with ImapSource(settings.mailbox) as source:
        state = source.open()
        fetched = [raw for batch in source.fetch_new(state, 0) for raw in batch.messages]
    assert [raw.uid for raw in fetched] == list(range(1, 14))
    assert [raw.uid for raw in fetched if raw.too_large] == [12]
    assert fetched[11].size == sizes[12] and len(fetched[11].data) < 2_000
    assert len(fetched[12].data) == sizes[13]


def test_fetch_message_vanished_between_search_and_fetch_is_skipped(
    mailbox: Mailbox, imap_settings: MakeSettings
) -> None:
    mailbox.append(*(story_message(n) for n in range(3)))
    settings = imap_settings(mailbox)
    assert isinstance(settings.mailbox, ImapSettings)
    with ImapSource(settings.mailbox) as source:
        state = source.open()
        uids = source.new_uids(0)
        with mailbox.server.client(mailbox.user) as other:
            other.select_folder("INBOX")
            other.delete_messages([uids[1]])
            other.expunge()
        fetched = source.fetch_batch(state, uids)
    assert [raw.uid for raw in fetched] == [uids[0], uids[2]]


def test_fetch_server_that_never_answers_times_out(
    mailbox: Mailbox, imap_settings: MakeSettings, now: datetime
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # the kernel completes the handshake; no greeting ever comes
    try:
        settings = imap_settings(mailbox)
        dead = ImapSettings(
            host="127.0.0.1", port=silent.getsockname()[1], security="none", username="x",
            password_env="X", password="x", connect_timeout=1, read_timeout=1,
        )  # fmt: skip
        with pytest.raises(FetchError, match=r"timed out|TimeoutError"):
            run_once(Settings(mailbox=dead, store=settings.store), now)
    finally:
        silent.close()
    mailbox.append(story_message(1))
    assert run_once(settings, now).stored == 1


def test_fetch_refused_login_is_a_fetch_error_naming_no_secret(
    mailbox: Mailbox, imap_settings: MakeSettings, now: datetime
) -> None:
    settings = imap_settings(mailbox)
    assert isinstance(settings.mailbox, ImapSettings)
    wrong = ImapSettings(**{**_fields(settings.mailbox), "password": "wrong-pass-123"})
    with pytest.raises(FetchError) as caught:
        run_once(Settings(mailbox=wrong, store=settings.store), now)
    assert "wrong-pass-123" not in str(caught.value)


def _fields(settings: ImapSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__slots__}


def test_fetch_pending_marks_from_a_crashed_run_are_finished(
    mailbox: Mailbox, imap_settings: MakeSettings, now: datetime, tmp_path: Path
) -> None:
    mailbox.append(story_message(1), story_message(2))
    settings = imap_settings(mailbox)
    assert isinstance(settings.mailbox, ImapSettings)

    class CrashAfterCommit(ImapSource):
        def mark_stored(self, uids: object) -> None:
            raise FetchError("connection lost after commit")

    with pytest.raises(FetchError):
        run_once(settings, now, CrashAfterCommit(settings.mailbox))
    assert all(TRIAGED not in f for f in mailbox.flags().values())
    counts = run_once(settings, now)
    assert (counts.fetched, counts.stored) == (0, 0)
    assert all(TRIAGED in f for f in mailbox.flags().values())
    with Store(settings.store) as store:
        assert store.stories.pending_marks(MailboxState("INBOX", mailbox.uidvalidity())) == []


class PersonDeletesDuringRun(ImapSource):
    """While our batch is in hand, a person appends a message and flags it \\Deleted."""

    def __init__(self, settings: ImapSettings, box: Mailbox) -> None:
        super().__init__(settings)
        self.box = box

    def fetch_new(self, state: MailboxState, last_uid: int) -> Iterator[Batch]:
        for batch in super().fetch_new(state, last_uid):
            with self.box.server.client(self.box.user) as person:
                person.select_folder("INBOX")
                person.append("INBOX", story_message(50))
                person.add_flags([max(person.search())], [b"\\Deleted"])
            yield batch


def test_fetch_without_move_copies_and_expunges_only_our_uids(
    dovecot_without_move: DovecotServer, imap_settings: MakeSettings, now: datetime
) -> None:
    box = Mailbox(dovecot_without_move, f"nomove-{time.monotonic_ns()}")
    box.append(story_message(1), story_message(2))
    settings = imap_settings(box, processed_folder="Processed")
    assert isinstance(settings.mailbox, ImapSettings)
    with ImapSource(settings.mailbox) as probe:
        probe.open()
        assert probe._require().has_capability("MOVE") is False
    counts = run_once(settings, now, PersonDeletesDuringRun(settings.mailbox, box))
    assert counts.stored == 2
    assert len(box.flags("Processed")) == 2
    left = box.flags()  # the person's \Deleted message is still there: no bare EXPUNGE
    assert len(left) == 1 and b"\\Deleted" in next(iter(left.values()))
