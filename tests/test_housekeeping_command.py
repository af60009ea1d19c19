"""``story-intake housekeeping``: the worker's retention job as one command, for deployments
that run ``once`` from a timer or cron instead of the worker."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import IN_PROCESS, maildir_config, seed_maildir, story_message

from story_intake.cli import main
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from triage.tag.tagger import Tagger

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # stored then: over a day ago whenever this runs
RETENTION = ("[retention]\nraw_days = 1\nbody_days = 1\nquarantine_days = 1\noutbox_days = 1\n"
             "digest_days = 1\n")  # fmt: skip


def test_housekeeping_command_purges_what_expired_now(
    tmp_path: Path, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path, extra=RETENTION)
    settings = replace(load_settings(config, os.environ), intake=IN_PROCESS)
    seed_maildir(settings.mailbox.maildir, story_message(1), story_message(2))  # type: ignore[union-attr]
    run_once(settings, T0, tagger=tagger)
    capsys.readouterr()
    assert main(["--config", str(config), "housekeeping"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert (counts["raw_messages"], counts["story_bodies"], counts["outbox_addresses"]) == (2, 2, 2)
    # Run by a timer, it runs whenever it is started (the worker's job waits a day between runs).
    assert main(["--config", str(config), "housekeeping"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert sum(again.values()) == 0
    assert main(["--config", str(config), "status"]) == 0
    assert json.loads(capsys.readouterr().out)["last_run"]["command"] == "housekeeping"
