"""Batches bounded by bytes as well as by count: in the sources and in the worker pool."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from conftest import DEFAULT_THEMES, Mailbox, nested_message, seed_maildir, story_message

from intake.records import Batch, MailboxState, RawMessage, Staged
from intake.sources.imap import ImapSource
from intake.sources.maildir import MaildirSettings, MaildirSource
from intake.store.engine import Store, StoreSettings
from intake.timing import StageTimer
from story_intake.app_settings import Settings
from story_intake.pipeline import run_once
from story_intake.pool import WorkerPool
from story_intake.themes import load_themes
from triage.tag.tagger import Tagger

MakeSettings = Callable[..., Settings]
PADDING = "My GP and the council asked the same questions again and again. " * 60  # ~4 KB


def mixed_messages() -> list[bytes]:
    """Three small stories, three of about 4 KB, one of about 12 KB (over the byte limit)."""
    small = [story_message(n) for n in range(3)]
    big = [story_message(10 + n, body=PADDING) for n in range(3)]
    return [small[0], big[0], big[1], small[1], big[2], story_message(20, body=PADDING * 3),
            small[2]]  # fmt: skip


def assert_within(batches: list[Batch], count: int, limit: int) -> None:
    sizes = [[r.size for r in b.messages] for b in batches]
    assert all(len(s) <= count for s in sizes)
    assert all(sum(s) <= limit or len(s) == 1 for s in sizes), sizes
    assert any(len(s) == 1 and s[0] > limit for s in sizes)  # too big alone: a batch of one


def test_fetch_batch_bytes_closes_an_imap_batch_before_its_count(
    mailbox: Mailbox, imap_settings: MakeSettings
) -> None:
    mailbox.append(*mixed_messages())
    settings = imap_settings(mailbox, batch_size=10, batch_bytes=9000)
    with ImapSource(settings.mailbox) as source:  # type: ignore[arg-type]
        state = source.open()
        batches = list(source.fetch_new(state, 0))
    assert [r.uid for b in batches for r in b.messages] == list(range(1, 8))  # all, in order
    assert len(batches) >= 3 and [b.remaining for b in batches][-1] == 0
    assert all(b.last_uid == b.messages[-1].uid for b in batches)
    assert_within(batches, 10, 9000)


def test_maildir_batch_bytes_closes_a_batch_before_its_count(maildir_settings: Settings) -> None:
    assert isinstance(maildir_settings.mailbox, MaildirSettings)
    settings = dataclasses.replace(maildir_settings.mailbox, batch_size=10, batch_bytes=9000)
    seed_maildir(settings.maildir, *mixed_messages())
    with MaildirSource(settings) as source:
        batches = list(source.fetch_new(source.open(), 0))
    assert sum(len(b.messages) for b in batches) == 7 and len(batches) >= 3
    assert_within(batches, 10, 9000)


class CountingMaildir(MaildirSource):
    """A real Maildir source that keeps account of the raw bytes it fetched that are still
    alive in this process (a finalizer on each RawMessage), and of their peak."""

    def __init__(self, settings: MaildirSettings) -> None:
        super().__init__(settings)
        self.live = self.peak = 0

    def fetch_new(self, state: MailboxState, last_uid: int) -> Iterator[Batch]:
        for batch in super().fetch_new(state, last_uid):
            for raw in batch.messages:
                self.live += len(raw.data)
                weakref.finalize(raw, self._gone, len(raw.data))
            del raw
            self.peak = max(self.peak, self.live)
            yield batch
            del batch  # this wrapper must not hold a batch while the next is fetched

    def _gone(self, size: int) -> None:
        self.live -= size


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])
def test_pool_holds_no_more_than_one_batch_of_raw_bytes(
    maildir_settings: Settings, tagger: Tagger, now: datetime, workers: int
) -> None:
    box = dataclasses.replace(maildir_settings.mailbox, batch_size=10, batch_bytes=9000)
    assert isinstance(box, MaildirSettings)
    messages = [story_message(n, body=PADDING) for n in range(8)]  # ~4.3 KB: two a batch
    seed_maildir(box.maildir, *messages)
    settings = dataclasses.replace(
        maildir_settings, mailbox=box,
        intake=dataclasses.replace(maildir_settings.intake, workers=workers),
    )  # fmt: skip
    source = CountingMaildir(box)
    counts = run_once(settings, now, source=source, tagger=None if workers else tagger)
    assert (counts.fetched, counts.stored) == (8, 8)
    # The batch just fetched is the only one alive: the one before it was let go of first
    # (the old pool still held it, waiting to be stored, while the next was fetched).
    largest = max(len(a) + len(b) for a, b in zip(messages[::2], messages[1::2], strict=True))
    assert source.peak <= largest, (source.peak, largest)
    assert source.live == 0
    with Store(settings.store) as store:
        assert sorted(len(raw) for raw in raw_data(store)) == sorted(len(m) for m in messages)


def raw_data(store: Store) -> list[bytes]:
    """The stored raw messages, once nothing is left waiting in the staging folder."""
    from sqlalchemy import select

    from intake.store import schema

    folder = store.staging.folder
    assert not list(folder.iterdir()) and folder.stat().st_mode & 0o777 == 0o700
    with store.engine.connect() as conn:
        return list(conn.execute(select(schema.raw_messages.c.data)).scalars())


@pytest.mark.slow
def test_stages_worker_pool_quarantine_stores_the_staged_bytes(
    now: datetime, tmp_path: Path
) -> None:
    # A worker reads its batch from the staging folder and sends back where a quarantined
    # message was in it: this process holds a handle; the commit stores the bytes.
    data = nested_message(5000)
    raw = RawMessage("INBOX", 1, 1, now, len(data), data)
    with Store(StoreSettings(f"sqlite:///{tmp_path}/stories.db")) as store:
        with WorkerPool(load_themes(DEFAULT_THEMES), 1, StageTimer(), store) as pool:
            (outcome,) = list(pool.map(iter([Batch((raw,), 1)])))
        (failed,) = outcome.quarantined
        assert not outcome.processed and failed.stage == "parse"
        assert "MIME structure" in failed.reason
        assert isinstance(failed.raw, Staged) and failed.raw.key == raw.key
        store.stories.commit_batch(MailboxState("INBOX", 1), 1, [], [failed], now)
        (entry,) = store.quarantine.quarantined()
        assert entry.raw.data == data and not raw_data(store)


def test_staging_files_a_crashed_pass_left_are_removed_by_the_next(
    maildir_settings: Settings, tagger: Tagger, now: datetime
) -> None:
    assert isinstance(maildir_settings.mailbox, MaildirSettings)
    seed_maildir(maildir_settings.mailbox.maildir, story_message(1))
    with MaildirSource(maildir_settings.mailbox) as source:
        mailbox = source.open().mailbox
    with Store(maildir_settings.store) as store:
        left = RawMessage(mailbox, 0, 7, now, 5, b"story")
        other = RawMessage("another mailbox", 1, 7, now, 5, b"other")
        store.staging.stage([left])  # as if the pass died before its commit
        store.staging.stage([other])
        assert len(list(store.staging.folder.iterdir())) == 2
    assert run_once(maildir_settings, now, tagger=tagger).stored == 1
    with Store(maildir_settings.store) as store:
        (kept,) = store.staging.folder.iterdir()  # another mailbox's are left to its own pass
        assert kept.read_bytes() == b"other" and kept.stat().st_mode & 0o777 == 0o600
