"""Which digest a story belongs to: claimed in the transaction that opens the digest, so a pass
committing while a digest is built goes to the next one; old stores; erasure; outcomes."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import story_message
from test_digest import MONDAY_7AM, settings_for, stored

from intake.errors import SendError
from intake.records import MailboxState, Quarantined, RawMessage
from intake.store.engine import Store
from intake.store.privacy import ErasurePlan
from story_intake.app_settings import Settings
from story_intake.jobs import digest_context
from triage.digest.deliver import DigestOutcome, preview_digest, send_digest
from triage.reply.policy import reference
from triage.tag.tagger import Tagger

HOUR = timedelta(hours=1)


def send(settings: Settings, at: timedelta) -> DigestOutcome:
    with Store(settings.store) as store:
        return send_digest(store, MONDAY_7AM + at, digest_context(settings))


def health_stored(settings: Settings) -> list[int]:
    with Store(settings.store) as store, store._connect() as conn:
        found = conn.exec_driver_sql("SELECT health FROM digests ORDER BY id").scalars()
        return [int(json.loads(h).get("stored", 0)) for h in found]


def test_digest_claims_a_pass_that_commits_after_the_digest_opened_for_the_next_one(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1))
    assert send(settings, HOUR).stories == 1
    # A pass starts (its ``now``) a second before the next digest opens, commits after it.
    started = MONDAY_7AM + 2 * HOUR - timedelta(seconds=1)
    assert send(settings, 2 * HOUR).stories == 0
    stored(settings, tagger, started, story_message(2))
    third = send(settings, 3 * HOUR)
    assert third.stories == 1  # by stored_at it was in the closed window: never shown
    assert health_stored(settings) == [1, 0, 1]  # the run record is counted once too


def test_digest_claims_preview_shows_the_unclaimed_and_claims_nothing(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1))
    send(settings, HOUR)
    stored(settings, tagger, MONDAY_7AM + HOUR - timedelta(seconds=1), story_message(2))
    with Store(settings.store) as store:
        preview = preview_digest(store, MONDAY_7AM + 2 * HOUR, digest_context(settings))
    assert preview.stories == 1
    assert send(settings, 2 * HOUR).stories == 1


def test_digest_claims_an_old_store_does_not_show_what_a_finished_digest_covered(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1))
    send(settings, HOUR)
    # Make it a store from before claiming: the next Store adds the columns back, all NULL.
    with sqlite3.connect(tmp_path / "stories.db") as db:
        for table in ("stories", "runs", "quarantine", "outbox"):
            db.execute(f"DROP INDEX ix_{table}_digest_id")
            db.execute(f"ALTER TABLE {table} DROP COLUMN digest_id")
        db.execute("ALTER TABLE outbox DROP COLUMN counted_state")
        db.execute("ALTER TABLE digests DROP COLUMN claims")
        db.execute("DROP TABLE alembic_version")  # a version before migrations wrote none
    stored(settings, tagger, MONDAY_7AM + 2 * HOUR, story_message(2))
    second = send(settings, 3 * HOUR)
    assert second.stories == 1
    assert health_stored(settings) == [1, 1]
    with Store(settings.store) as store, store._connect() as conn:
        acks = conn.exec_driver_sql("SELECT count(*) FROM outbox WHERE digest_id = 2").scalar()
    assert acks == 1  # story 1's acknowledgement was counted by the first digest


def test_digest_claims_an_erased_story_leaves_the_rendered_digest_with_the_rest_only(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1), story_message(2))
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the pickup folder should be")
    broken = replace(settings, smtp=replace(settings.smtp, pickup_dir=str(blocked)))
    with pytest.raises(SendError):
        send(broken, HOUR)  # rendered, not sent
    stored(settings, tagger, MONDAY_7AM + HOUR - timedelta(seconds=1), story_message(3))
    with Store(settings.store) as store:
        first = next(store.stories.stories())
        store.privacy.erase(ErasurePlan([first.story_id], [], [], "", False, MONDAY_7AM + HOUR))
    resent = send(settings, HOUR + timedelta(minutes=5))
    assert (resent.state, resent.stories) == ("sent", 1)  # story 3 is not in it
    assert resent.path is not None and reference(first.story_id) not in resent.path.read_text()
    assert send(settings, 2 * HOUR).stories == 1  # story 3, in the next one


def test_digest_claims_an_outcome_once_and_again_only_when_it_changes(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1))
    with Store(settings.store) as store, store._begin() as conn:
        conn.exec_driver_sql("UPDATE outbox SET state = 'failed'")
    send(settings, HOUR)
    send(settings, 2 * HOUR)  # nothing changed: counted by the first digest only
    with Store(settings.store) as store, store._begin() as conn:
        conn.exec_driver_sql("UPDATE outbox SET state = 'sent'")  # a retry got through
    send(settings, 3 * HOUR)
    with Store(settings.store) as store, store._connect() as conn:
        found = conn.exec_driver_sql("SELECT health FROM digests ORDER BY id").scalars()
        acks = [json.loads(h)["acknowledgements"] for h in found]
    assert acks == [{"failed": 1}, {}, {"sent": 1}]


def test_digest_claims_a_skipped_digest_leaves_its_health_rows_to_the_next(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path, send_empty=False)
    bad = RawMessage("INBOX", 1, 9, MONDAY_7AM, 3, b"bad")
    with Store(settings.store) as store:
        store.stories.commit_batch(MailboxState("INBOX", 1), 9, [],
                           [Quarantined(bad, "parse", "ParseError: unreadable", "")],
                           MONDAY_7AM)  # fmt: skip
    assert send(settings, HOUR).state == "skipped"  # no story to show
    stored(settings, tagger, MONDAY_7AM + 2 * HOUR, story_message(1))
    second = send(settings, 3 * HOUR)
    assert second.path is not None and "parse: ParseError: 1" in second.path.read_text()
