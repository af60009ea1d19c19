"""Schedules as pure predicates of ``now``: crontab weekdays, the digest's time, poll backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intake.errors import ConfigError
from story_intake.schedule import (
    MAX_POLL_BACKOFF,
    cron_trigger,
    crontab_weekdays,
    digest_due,
    next_poll_at,
    poll_due,
)

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sun,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("5-7", "fri,sat,sun"),
        ("mon-fri", "mon-fri"),
        ("*", "sun,mon,tue,wed,thu,fri,sat"),
    ],
)
def test_schedule_crontab_weekdays_count_from_sunday(field: str, names: str) -> None:
    assert crontab_weekdays(field) == names


def test_schedule_weekday_schedule_skips_the_weekend() -> None:
    trigger = cron_trigger("0 8 * * 1-5", "Europe/London")
    friday_9am = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, friday_9am)
    assert fire is not None and fire.strftime("%a %H:%M") == "Mon 08:00"


def test_schedule_digest_due_follows_the_configured_time_zone() -> None:
    trigger = cron_trigger("0 8 * * *", "Europe/London")
    last = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)  # British Summer Time: 08:00 is 07:00 UTC
    assert not digest_due(trigger, last, datetime(2026, 7, 1, 6, 59, 59, tzinfo=UTC))
    assert digest_due(trigger, last, datetime(2026, 7, 1, 7, 0, tzinfo=UTC))
    assert not digest_due(trigger, None, datetime(2026, 7, 1, 7, 0, tzinfo=UTC))


def test_schedule_digest_not_due_twice_for_one_scheduled_time() -> None:
    trigger = cron_trigger("0 8 * * *", "UTC")
    sent_at = datetime(2026, 11, 24, 8, 0, 5, tzinfo=UTC)
    assert not digest_due(trigger, sent_at, sent_at + timedelta(hours=23))
    assert digest_due(trigger, sent_at, sent_at + timedelta(hours=24))


@pytest.mark.parametrize(
    ("expression", "timezone", "named"),
    [("0 8 * *", "UTC", "digest.schedule"), ("61 8 * * *", "UTC", "digest.schedule"),
     ("0 8 * * 8", "UTC", "digest.schedule"), ("0 8 * * *", "Mars/Olympus", "digest.timezone")],
)  # fmt: skip
def test_schedule_bad_expression_names_the_key(expression: str, timezone: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        cron_trigger(expression, timezone)


def test_schedule_poll_due_first_time_then_every_interval() -> None:
    assert poll_due(None, 0, 300, AT)
    assert not poll_due(AT, 0, 300, AT + timedelta(seconds=299))
    assert poll_due(AT, 0, 300, AT + timedelta(seconds=300))


def test_schedule_poll_backs_off_after_failures_up_to_an_hour() -> None:
    waits = [next_poll_at(AT, failures, 60) for failures in range(0, 9)]
    assert [w - AT for w in waits if w][:5] == [timedelta(minutes=m) for m in (1, 1, 2, 4, 8)]
    assert waits[-1] == AT + MAX_POLL_BACKOFF
    assert not poll_due(AT, 3, 60, AT + timedelta(minutes=3))
    assert poll_due(AT, 3, 60, AT + timedelta(minutes=4))
