"""The reply's history (``outbox_events``): every outbox state change writes one event, in
order, in the transaction that makes the change; erasure removes a story's events and
retention prunes old ones, like the audit log."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import story_message

from intake.errors import StoreError
from intake.parse import parse
from intake.records import Acknowledgement, MailboxState, RawMessage, ReplyState
from intake.store.engine import Store, StoreSettings
from intake.store.outbox import Attempt
from intake.store.privacy import ErasurePlan
from intake.store.reply_events import ReplyEvent
from triage.erasure import Folders
from triage.privacy import RetentionSettings, housekeeping

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
IDS = [f"ev{n}@example.org" for n in range(1, 5)]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store with four stories decided: ev1 and ev4 to send, ev2 suppressed, ev3 a request
    held for a person."""
    store = Store(StoreSettings(f"sqlite:///{tmp_path}/stories.db"))
    raws = [RawMessage("INBOX", 1, n, T0, 1, story_message(n, message_id=f"<ev{n}@example.org>"))
            for n in range(1, 5)]  # fmt: skip
    store.stories.commit_batch(MailboxState("INBOX", 1), 4, [(r, parse(r)) for r in raws], [], T0)
    to, key = "sam@example.org", store.sender_key("sam@example.org")
    decided = [
        Acknowledgement(IDS[0], "send", "acknowledgement", to, ReplyState.PENDING),
        Acknowledgement(IDS[1], "auto_submitted", "acknowledgement", to, ReplyState.SUPPRESSED),
        Acknowledgement(IDS[2], "unverified_request", "withdrawal_confirmation", to,
                        ReplyState.HELD),
        Acknowledgement(IDS[3], "send", "acknowledgement", to, ReplyState.PENDING),
    ]  # fmt: skip
    store.outbox.record_decisions([(item, key) for item in decided], T0)
    return store


def events(store: Store, story_id: str) -> list[tuple[int, str, str, str]]:
    """(minutes after T0, state, detail, who) of the story's events."""
    return [(int((e.at - T0).total_seconds() // 60), e.state, e.detail, e.who)
            for e in store.reply_events.events(story_id)]  # fmt: skip


def test_reply_events_every_transition_writes_one_event_in_order(store: Store) -> None:
    outbox = store.outbox
    assert outbox.claim_ids([IDS[0], IDS[3]], at(1)) == [IDS[0], IDS[3]]
    temporary = Attempt(IDS[0], ReplyState.PENDING, "smtp rcpt refused: 451", retry_at=at(10),
                        detail="smtp_4xx")  # fmt: skip
    refused = Attempt(IDS[3], ReplyState.FAILED, "smtp rcpt refused: 550", permanent=True,
                      detail="smtp_5xx")  # fmt: skip
    outbox.finish_many([temporary, refused], at(2))
    assert outbox.claim_ids([IDS[0]], at(10)) == [IDS[0]]
    assert outbox.hold_interrupted(at(11)) == 1  # a crash mid-send
    assert outbox.release_held([IDS[0]], ReplyState.PENDING, at(12), "rob") == 1
    assert outbox.release_held(None, ReplyState.PENDING, at(13), "cli") == 0  # none: no event
    assert outbox.finish_and_claim([], [IDS[0]], at(14)) == [IDS[0]]
    outbox.finish(IDS[0], ReplyState.SENT, at(15), message_id="<m@example.org>")
    assert store.review.reject_request(IDS[2], at(16), "ann")
    assert not store.review.reject_request(IDS[2], at(17), "ann")  # no longer waiting
    assert events(store, IDS[0]) == [
        (0, "pending", "send", ""),
        (1, "sending", "", ""),
        (2, "pending", "smtp_4xx", ""),
        (10, "sending", "", ""),
        (11, "held", "interrupted", ""),
        (12, "pending", "released", "rob"),
        (14, "sending", "", ""),
        (15, "sent", "", ""),
    ]
    assert events(store, IDS[1]) == [(0, "suppressed", "auto_submitted", "")]
    assert events(store, IDS[2]) == [(0, "held", "unverified_request", ""),
                                     (16, "pending", "not_a_request", "ann")]  # fmt: skip
    assert events(store, IDS[3]) == [(0, "pending", "send", ""), (1, "sending", "", ""),
                                     (2, "failed", "smtp_5xx", "")]  # fmt: skip


def refuse_events(database: Path) -> None:
    """Make every later event insert fail, as a full disk or a lost connection would."""
    with closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON outbox_events "
                   "BEGIN SELECT RAISE(ABORT, 'refused'); END")  # fmt: skip
        db.commit()


def test_reply_events_state_change_and_its_event_commit_together(
    store: Store, tmp_path: Path
) -> None:
    assert store.outbox.claim_ids([IDS[0]], at(1)) == [IDS[0]]
    refuse_events(tmp_path / "stories.db")
    # No event, no change: the state stays as it was, so the history never misses a step.
    with pytest.raises(StoreError):
        store.outbox.finish(IDS[0], ReplyState.SENT, at(2))
    with pytest.raises(StoreError):
        store.outbox.claim_ids([IDS[3]], at(2))
    with pytest.raises(StoreError):
        store.outbox.hold_interrupted(at(3))
    with pytest.raises(StoreError):
        store.outbox.release_held([IDS[2]], ReplyState.PENDING, at(3), "rob")
    with pytest.raises(StoreError):
        store.review.reject_request(IDS[2], at(3), "ann")
    assert store.outbox.outbox_states() == {
        IDS[0]: "pending",  # sending is shown as pending
        IDS[1]: "suppressed:auto_submitted",
        IDS[2]: "held",
        IDS[3]: "pending",
    }
    assert store.outbox.interrupted() == [IDS[0]]


def test_reply_events_finishing_a_reply_erased_meanwhile_leaves_no_event(store: Store) -> None:
    assert store.outbox.claim_ids([IDS[0]], at(1)) == [IDS[0]]
    store.privacy.erase(ErasurePlan([IDS[0]], [], [], "", False, at(2)))
    assert events(store, IDS[0]) == []
    store.outbox.finish(IDS[0], ReplyState.SENT, at(3))  # the sender had it in hand
    assert events(store, IDS[0]) == []


def test_reply_events_erasure_removes_the_storys_events_only(store: Store) -> None:
    assert store.outbox.release_held([IDS[2]], ReplyState.PENDING, at(1), "rob") == 1
    plan = ErasurePlan([IDS[2]], [], [], "", False, at(2))
    assert store.privacy.erase(plan, dry_run=True)["outbox_events"] == 2
    assert store.privacy.erase(plan)["outbox_events"] == 2
    assert events(store, IDS[2]) == []
    assert events(store, IDS[1]) == [(0, "suppressed", "auto_submitted", "")]


def test_reply_events_retention_prunes_them_with_the_audit_log(
    store: Store, tmp_path: Path
) -> None:
    assert store.outbox.claim_ids([IDS[0]], T0 + timedelta(days=20)) == [IDS[0]]
    folders = Folders(tmp_path / "digests", None)
    (tmp_path / "digests").mkdir()
    counts = housekeeping(store, T0 + timedelta(days=30, hours=1), RetentionSettings(audit_days=30),
                          folders, None)  # fmt: skip
    assert counts["outbox_events"] == 4  # the four decisions, made on day 0
    assert store.reply_events.events(IDS[0]) == [ReplyEvent(T0 + timedelta(days=20), "sending")]
    assert all(store.reply_events.events(i) == [] for i in IDS[1:])
