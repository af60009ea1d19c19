"""Batches bounded by bytes as well as by count: in the sources and in the worker pool."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from conftest import DEFAULT_THEMES, Mailbox, nested_message, seed_maildir, story_message

from intake.records import Batch, RawMessage
from intake.sources.imap import ImapSource
from intake.sources.maildir import MaildirSettings, MaildirSource
from intake.timing import StageTimer
from story_intake.app_settings import Settings
from story_intake.pool import WorkerPool
from story_intake.themes import load_themes

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


def numbered_batches(count: int, size: int, now: datetime, pulled: list[int]) -> Iterator[Batch]:
    """``count`` one-message batches of about ``size`` bytes; ``pulled`` records how many the
    consumer has asked for."""
    for n in range(1, count + 1):
        data = story_message(n, body=PADDING * (size // len(PADDING)))
        pulled.append(n)
        yield Batch((RawMessage("INBOX", 1, n, now, len(data), data),), n)


@pytest.mark.slow
def test_stages_worker_pool_keeps_no_more_than_batch_bytes_in_flight(now: datetime) -> None:
    pulled: list[int] = []
    held: list[int] = []  # batches fetched and not yet handed back, at each hand-back
    size = 200_000
    settings = load_themes(DEFAULT_THEMES)
    with WorkerPool(settings, 2, StageTimer(), max_bytes=int(size * 1.5)) as pool:
        done = 0
        for batch, (stored, failed) in pool.map(numbered_batches(6, size, now, pulled)):
            done += 1
            held.append(len(pulled) - done + 1)
            assert batch.last_uid == done and len(stored) == 1 and not failed
    assert done == 6
    # One batch in the worker's hands plus the one just fetched; the old pool kept workers + 2.
    assert max(held) <= 2, held


@pytest.mark.slow
def test_stages_worker_pool_quarantine_keeps_the_raw_bytes_it_sent(now: datetime) -> None:
    # A worker sends back where a quarantined message was in its batch, not its bytes: the
    # message's RawMessage is this process's own, not a second copy of a 20 MB message.
    data = nested_message(5000)
    raw = RawMessage("INBOX", 1, 1, now, len(data), data)
    with WorkerPool(load_themes(DEFAULT_THEMES), 1, StageTimer(), max_bytes=10**6) as pool:
        ((_, (stored, (failed,))),) = list(pool.map(iter([Batch((raw,), 1)])))
    assert not stored and failed.stage == "parse" and "MIME structure" in failed.reason
    assert failed.raw is raw
