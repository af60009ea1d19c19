"""The whole intake pass end to end: crashes, server loss, quarantine, requeue, export, demo."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import mailbox
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import (
    DovecotServer,
    Mailbox,
    count_stories,
    imap_config,
    maildir_config,
    nested_message,
    seed_maildir,
    start_pipeline,
    story_message,
)

import intake.parse
from intake import report
from intake.errors import ConfigError
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.cli import main
from story_intake.pipeline import requeue, run_once
from story_intake.settings import load_settings
from triage.tag.tagger import Tagger

ROOT = Path(__file__).resolve().parents[1]
TRIAGED = b"$Triaged"


def write_config(tmp_path: Path, box: Mailbox, batch_size: int) -> Path:
    return imap_config(tmp_path, box, batch_size=batch_size)


def start_once(config: Path) -> subprocess.Popen[str]:
    return start_pipeline(config, "once", "--json")


def wait_for_progress(process: subprocess.Popen[str], database: Path, total: int) -> int:
    """Block until the run has committed something but not everything; returns the count."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stored = count_stories(database)
        if 0 < stored < total:
            return stored
        assert process.poll() is None, "the run finished before it could be interrupted"
        time.sleep(0.002)
    raise AssertionError("no progress within 60 s")


def assert_complete(database: Path, total: int) -> None:
    with sqlite3.connect(database) as db:
        ids = [r[0] for r in db.execute("SELECT story_id FROM stories")]
        raws = db.execute("SELECT count(*) FROM raw_messages").fetchone()[0]
        pending = db.execute("SELECT count(*) FROM pending_marks").fetchone()[0]
    assert len(ids) == len(set(ids)) == raws == total
    assert pending == 0


def many_stories(total: int) -> list[bytes]:
    # Long enough bodies that a batch takes measurable time.
    return [story_message(n, body=f"Story {n}. " + "The GP and the council never spoke. " * 400)
            for n in range(total)]  # fmt: skip


@pytest.mark.slow
def test_run_once_sigkill_mid_batch_loses_nothing_and_stores_nothing_twice(
    mailbox: Mailbox, tmp_path: Path, tagger: Tagger
) -> None:
    total = 300
    mailbox.append(*many_stories(total))
    config = write_config(tmp_path, mailbox, batch_size=5)
    database = tmp_path / "stories.db"
    process = start_once(config)
    wait_for_progress(process, database, total)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert count_stories(database) < total
    rerun = start_once(config)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert_complete(database, total)
    flags = mailbox.flags()
    assert len(flags) == total and all(TRIAGED in f and b"\\Seen" not in f for f in flags.values())


@pytest.mark.slow
def test_run_once_dovecot_stopped_mid_run_aborts_cleanly_then_resumes(
    own_dovecot: DovecotServer, tmp_path: Path, tagger: Tagger
) -> None:
    total, batch = 1000, 2
    box = Mailbox(own_dovecot, "stopper")
    box.append(*many_stories(total))
    config = write_config(tmp_path, box, batch_size=batch)
    database = tmp_path / "stories.db"
    process = start_once(config)
    wait_for_progress(process, database, total)
    own_dovecot.stop()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "error: IMAP" in err and "Traceback" not in err
    stored = count_stories(database)
    assert stored < total and stored % batch == 0  # whole batches only: no partial story
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM raw_messages").fetchone()[0] == stored
        last_error = db.execute("SELECT error FROM runs ORDER BY id DESC").fetchone()[0]
    assert last_error.startswith("IMAP")
    own_dovecot.start()
    rerun = start_once(config)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert json.loads(out)["stored"] == total - stored
    assert_complete(database, total)


def seed(settings: Settings, *messages: bytes) -> mailbox.Maildir:
    """Deliver messages into the embedded Maildir the settings name."""
    return seed_maildir(settings.mailbox.maildir, *messages)  # type: ignore[union-attr]


def test_run_once_maildir_stores_quarantines_and_moves(
    maildir_settings: Settings, now: datetime
) -> None:
    box = seed(maildir_settings, story_message(1), story_message(2, message_id=None),
               nested_message(5000))  # fmt: skip
    counts = run_once(maildir_settings, now)
    assert (counts.fetched, counts.stored, counts.quarantined) == (3, 2, 1)
    assert len(box) == 0 and len(box.get_folder("processed")) == 3
    assert run_once(maildir_settings, now).fetched == 0
    with Store(maildir_settings.store) as store:
        (entry,) = store.quarantine.quarantined()
    assert entry.stage == "parse" and "MIME structure" in entry.reason


@pytest.mark.slow
def test_run_once_worker_processes_store_what_one_process_stores(
    tmp_path: Path, now: datetime
) -> None:
    messages = [story_message(i) for i in range(1, 8)] + [nested_message(5000)]
    results = []
    for workers in (0, 2):
        settings = seeded_in_batches_of_3(tmp_path / f"workers-{workers}", workers, messages)
        counts = run_once(settings, now)
        assert (counts.fetched, counts.stored, counts.quarantined) == (8, 7, 1)
        with Store(settings.store) as store:
            (entry,) = store.quarantine.quarantined()
            assert entry.stage == "parse" and "MIME structure" in entry.reason
            stored = sorted((s.story_id, s.text, t) for s, t in store.stories.triaged())
            results.append((stored, store.outbox.outbox_counts()))
    assert results[0] == results[1]


def seeded_in_batches_of_3(folder: Path, workers: int, messages: list[bytes]) -> Settings:
    """Maildir settings with ``[intake] workers``, the messages delivered, batches of 3."""
    settings = load_settings(maildir_config(folder, extra=f"[intake]\nworkers = {workers}\n"), {})
    seed(settings, *messages)
    return dataclasses.replace(
        settings, mailbox=dataclasses.replace(settings.mailbox, batch_size=3)
    )


# Loaded by the spawned worker processes alone (PYTHONPATH): a message carrying the header makes
# the worker die outright, as a crash in a C extension would.
CRASHING_WORKER = """
import os
import intake.parse

real_parse = intake.parse.parse


def parse(raw, *args, **kwargs):
    if b"X-Test-Kill-Worker: yes" in raw.data:
        os._exit(70)
    return real_parse(raw, *args, **kwargs)


intake.parse.parse = parse
"""


@pytest.mark.slow
def test_run_once_message_that_kills_a_worker_is_quarantined_and_the_rest_stored(
    tmp_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASHING_WORKER)
    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("PYTHONPATH", f"{hooks}{os.pathsep}{root}")
    killer = story_message(4, message_id="<killer@example.org>").replace(
        b"Subject:", b"X-Test-Kill-Worker: yes\nSubject:")  # fmt: skip
    messages = [story_message(i) for i in range(1, 4)] + [killer]
    messages += [story_message(i) for i in range(5, 9)]
    settings = seeded_in_batches_of_3(tmp_path, 1, messages)
    counts = run_once(settings, now)
    assert (counts.fetched, counts.stored, counts.quarantined) == (8, 7, 1)
    with Store(settings.store) as store:
        (entry,) = store.quarantine.quarantined()
        assert entry.stage == "worker" and "died" in entry.reason
        assert b"X-Test-Kill-Worker" in entry.raw.data  # kept whole, for requeue
        assert "killer@example.org" not in {s.story_id for s in store.stories.stories()}
    assert run_once(settings, now).fetched == 0  # the run went past it: no failing loop


def test_run_once_stage_failure_quarantines_then_requeue_releases(
    maildir_settings: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(maildir_settings, story_message(1, message_id="<one@example.org>"),
         story_message(2, message_id="<two@example.org>"))  # fmt: skip

    def broken(raw: object, *args: object) -> object:
        raise RuntimeError("injected fault in the parse stage")

    monkeypatch.setattr(intake.parse, "parse", broken)
    counts = run_once(maildir_settings, now)
    assert (counts.fetched, counts.stored, counts.quarantined) == (2, 0, 2)
    assert requeue(maildir_settings, now) == (0, 2)  # still broken: kept, attempts counted
    monkeypatch.undo()
    assert requeue(maildir_settings, now) == (2, 0)
    with Store(maildir_settings.store) as store:
        assert store.quarantine.quarantined() == []
        stored = sorted(s.story_id for s in store.stories.stories())
        assert stored == ["one@example.org", "two@example.org"]


def test_run_once_export_has_the_contract_fields(maildir_settings: Settings, now: datetime) -> None:
    seed(maildir_settings, story_message(1, message_id="<one@example.org>"), nested_message(5000))
    run_once(maildir_settings, now)
    out = io.StringIO()
    with Store(maildir_settings.store) as store:
        report.export(store, "jsonl", out)
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        csv_out = io.StringIO()
        report.export(store, "csv", csv_out)
    contract = {"story_id", "sender", "subject", "received_at", "kind", "themes", "scores",
                "evidence", "needs_review", "acknowledgement", "quarantined"}  # fmt: skip
    assert all(contract <= set(row) for row in rows)
    story, bad = rows
    assert story["story_id"] == "one@example.org" and story["quarantined"] is None
    assert story["sender"] == "person1@example.org" and story["kind"] == "story"
    assert "duplication" in story["themes"] and set(story["scores"]) >= {"health", "policing"}
    assert all(e["text"] for items in story["evidence"].values() for e in items)
    assert bad["quarantined"].startswith("parse: ParseError")
    parsed = list(csv.DictReader(io.StringIO(csv_out.getvalue())))
    assert [r["story_id"] for r in parsed] == [story["story_id"], bad["story_id"]]


def test_run_once_cli_demo_once_status_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path / "var")
    assert main(["--config", str(config), "demo"]) == 0
    demo_out = capsys.readouterr().out
    samples = len(list((ROOT / "samples" / "stories").glob("*.eml")))
    assert f"seeded {samples} sample stories" in demo_out and f"stored={samples}" in demo_out
    assert main(["--config", str(config), "once", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fetched"] == 0
    assert main(["--config", str(config), "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["stories"] == samples and status["last_run"]["error"] is None
    assert main(["--config", str(config), "export", "--format", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == samples


def test_run_once_cli_bad_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text('[mailbox]\nmaildir = "m"\nbatchsize = 3\n')
    assert main(["--config", str(config), "once"]) == 2
    assert "mailbox.batchsize" in capsys.readouterr().err


def test_run_once_idle_poll_does_not_load_the_tagger(
    maildir_settings: Settings, now: datetime, tmp_path: Path
) -> None:
    # Loading spaCy costs half a second; a poll that finds nothing new must not pay it.
    no_data = dataclasses.replace(maildir_settings.tagger, data_dir=str(tmp_path / "empty"))
    settings = dataclasses.replace(maildir_settings, tagger=no_data)
    assert run_once(settings, now).fetched == 0
    seed(settings, story_message(1))
    with pytest.raises(ConfigError, match=r"tagger\.data_dir"):
        run_once(settings, now)


def test_run_once_cli_dry_run_and_breaker_in_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tagger: Tagger
) -> None:
    config = maildir_config(tmp_path, "[acknowledgement]\nmax_per_hour = 1\n")
    box = seed_maildir(tmp_path / "mailbox", story_message(1, message_id="<dry@example.org>"))
    assert main(["--config", str(config), "once", "--dry-run", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert (counts["acknowledged"], counts["suppressed"]) == (0, 1)
    assert not (tmp_path / "outbox").exists()
    box.add(story_message(2, message_id="<wet@example.org>"))
    assert main(["--config", str(config), "once", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["acknowledged"] == 1
    assert main(["--config", str(config), "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["acknowledgement_breaker"]["state"].startswith("open")
    assert status["acknowledgements"] == {"sent": 1, "suppressed:disabled": 1}


def test_run_once_cli_export_into_a_closed_pipe_ends_quietly(
    tmp_path: Path, tagger: Tagger
) -> None:
    config = maildir_config(tmp_path)
    seed_maildir(tmp_path / "mailbox", *(story_message(n) for n in range(40)))
    command = [sys.executable, str(ROOT / "run_pipeline.py"), "--config", str(config)]
    subprocess.run([*command, "once"], cwd=ROOT, check=True, capture_output=True, timeout=120)
    export = subprocess.Popen([*command, "export"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)  # fmt: skip
    assert export.stdout is not None and export.stdout.readline()
    export.stdout.close()  # the reader stops after one line, like `| head -1`
    _, err = export.communicate(timeout=60)
    assert b"Traceback" not in err
