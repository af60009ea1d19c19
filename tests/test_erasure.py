"""Erasure deletes that person's data, all of it, and only theirs: against the real Dovecot and
the embedded Maildir, then a trace search of every table, every file under the data folder,
the mailbox folders and the subject-access output for their address, name and a phrase of
their story. A SIGKILLed erase is finished by the next one."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from conftest import PASSWORD, Mailbox, imap_config, maildir_config, seed_maildir, story_message

from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.cli import main
from story_intake.jobs import digest_context, housekeeping_job
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from triage.digest.deliver import send_digest
from triage.privacy import RetentionSettings
from triage.tag.tagger import Tagger

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
JANE = "Jane Doe <jane.doe@example.org>"
PHRASE = "the marmalade ledger went missing between the ward and the surgery"
NEEDLES = (b"jane.doe", b"jane doe", PHRASE.encode())
SRS_JANE = "SRS0=HHH=TT=example.org=Jane.Doe@forwarder.example.net"
STORY = ("The hospital and the GP never shared my notes, so I told it all again; "
         f"{PHRASE}, and the council asked the same questions a third time.")  # fmt: skip
# Others whose Message-IDs contain Jane's (<7@mail.example.net>): IMAP's HEADER search finds
# them all. Two are stored before the erasure, two arrive after it (never fetched).
OTHERS_STORED = ("<17@mail.example.net>", "<27@mail.example.net.uk>")
OTHERS_UNFETCHED = ("<77@mail.example.net>", "<7@mail.example.net.uk>")


def broken(sender_lines: str, body: str) -> bytes:
    """A message nested too deep to parse: it is quarantined whole."""
    part = f"Content-Type: text/plain\n\n{body}\n"
    for level in reversed(range(5000)):
        part = (f'Content-Type: multipart/mixed; boundary="b{level}"\n\n'
                f"--b{level}\n{part}\n--b{level}--\n")  # fmt: skip
    return (sender_lines + "MIME-Version: 1.0\n" + part).encode()


def jane_messages() -> list[bytes]:
    """Jane's story (Message-ID <7@…>), her second one without a Message-ID (a sha256 id),
    and a message of hers that quarantines, forwarded: only its Return-Path (SRS) is hers."""
    return [
        story_message(1, sender=JANE, message_id="<7@mail.example.net>", body=STORY),
        story_message(2, sender=JANE, message_id=None, body=f"Again: {PHRASE}."),
        broken(f"Return-Path: <{SRS_JANE}>\nFrom: Forwarder <fwd@forwarder.example.net>\n"
               "Message-ID: <q7@mail.example.net>\n", f"Deep down: {PHRASE}."),
    ]  # fmt: skip


def others_messages() -> list[bytes]:
    """Other people's stories and quarantined message, stored before the erasure."""
    stored = [story_message(10 + n, message_id=m, sender=f"Person {n} <p{n}@example.net>")
              for n, m in enumerate(OTHERS_STORED)]  # fmt: skip
    return [*stored, broken("From: Ann <ann@example.net>\nMessage-ID: <q17@mail.example.net>\n",
                            "Ann's deep story.")]  # fmt: skip


def unfetched() -> list[bytes]:
    return [story_message(20 + n, message_id=m, sender=f"Late {n} <late{n}@example.net>")
            for n, m in enumerate(OTHERS_UNFETCHED)]  # fmt: skip


def hits(data: bytes) -> int:
    lowered = data.lower()
    return sum(lowered.count(needle) for needle in NEEDLES)


def table_hits(database: Path) -> int:
    """Occurrences in every text and blob value of every table."""
    total = 0
    with closing(sqlite3.connect(database)) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                total += sum(hits(v.encode() if isinstance(v, str) else v) for v in row
                             if isinstance(v, str | bytes))  # fmt: skip
    return total


def story_rows(database: Path, ids: list[str]) -> dict[str, int]:
    """Rows naming these stories (by story_id), per table that has a story_id column."""
    with closing(sqlite3.connect(database)) as db:
        names = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        tables = [t for t in names if "story_id" in columns(db, t)]
        marks = ",".join("?" * len(ids))
        return {t: db.execute(f'SELECT count(*) FROM "{t}" WHERE story_id IN ({marks})',
                              ids).fetchone()[0] for t in tables}  # fmt: skip


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {str(c[1]) for c in db.execute(f'PRAGMA table_info("{table}")')}


def file_hits(folder: Path, *, skip: Path | None = None) -> dict[str, int]:
    """Occurrences per file under ``folder`` (the SQLite file and its -wal included)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (skip is None or skip not in path.parents):
            count = hits(path.read_bytes())
            if count:
                found[str(path.relative_to(folder))] = count
    return found


def imap_folder(box: Mailbox, folder: str) -> list[bytes]:
    with box.server.client(box.user) as client:
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        rows = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
    return [bytes(row[b"BODY[]"]) for row in rows.values()]


def maildir_folder(root: Path, folder: str) -> list[bytes]:
    box = seed_maildir(root if folder == "inbox" else root / f".{folder}")
    return [box.get_bytes(key) for key in box.iterkeys()]


def message_ids(messages: list[bytes]) -> set[str]:
    return {str(BytesHeaderParser().parsebytes(m).get("Message-ID", "")) for m in messages}


def trace(data: Path, database: Path, folders: Callable[[str], list[bytes]],
          sar: Path) -> dict[str, int]:  # fmt: skip
    """Hits per place: tables, files under the data folder (the SAR output apart), the
    mailbox folders and the SAR output."""
    return {
        "tables": table_hits(database),
        "data files": sum(file_hits(data, skip=sar).values()),
        "inbox": sum(hits(m) for m in folders("INBOX")),
        "processed": sum(hits(m) for m in folders("Processed")),
        "subject access": sum(file_hits(sar).values()) if sar.exists() else 0,
    }


def setup(
    kind: str, tmp_path: Path, tagger: Tagger, box: Mailbox
) -> tuple[Path, Settings, Callable[[str], list[bytes]]]:
    """Store Jane's and others' mail, send the digest, add unfetched mail; returns the config,
    the settings and a reader of the mailbox folders."""
    if kind.startswith("imap"):
        config = imap_config(
            tmp_path,
            box,
            extra=(
                f'[digest]\noutput_dir = "{tmp_path}/digests"\n[retention]\npurge_mailbox = true\n'
            ),
        )
        if kind == "imap":  # else stored mail stays in INBOX, marked $Triaged
            text = config.read_text().replace(
                "batch_size", 'processed_folder = "Processed"\nbatch_size'
            )
            config.write_text(text)
        settings = load_settings(config, {"STORY_TEST_IMAP_PASSWORD": PASSWORD})
        box.append(*jane_messages(), *others_messages())
        read: Callable[[str], list[bytes]] = lambda folder: imap_folder(box, folder)  # noqa: E731
    else:
        config = maildir_config(tmp_path, extra=f'[digest]\noutput_dir = "{tmp_path}/digests"\n')
        settings = load_settings(config, {})
        seed_maildir(tmp_path / "mailbox", *jane_messages(), *others_messages())
        read = lambda folder: maildir_folder(tmp_path / "mailbox", folder.lower())  # noqa: E731
    settings = replace(settings, intake=replace(settings.intake, workers=0))
    counts = run_once(settings, T0, tagger=tagger)
    assert (counts.stored, counts.quarantined) == (4, 2)
    with Store(settings.store) as store:
        send_digest(store, T0 + timedelta(hours=1), digest_context(settings))
    if kind.startswith("imap"):
        box.append(*unfetched())
    else:
        seed_maildir(tmp_path / "mailbox", *unfetched())
    return config, settings, read


def kept(kind: str) -> dict[str, set[str]]:
    """The Message-IDs each folder must still hold after Jane's erasure."""
    stored = {*OTHERS_STORED, "<q17@mail.example.net>"}
    if kind == "imap-inbox":
        return {"INBOX": stored | set(OTHERS_UNFETCHED), "Processed": set()}
    return {"INBOX": set(OTHERS_UNFETCHED), "Processed": stored}


@pytest.mark.parametrize("kind", ["imap", "imap-inbox", "maildir"])
def test_erasure_removes_every_trace_of_the_person_and_only_theirs(
    kind: str, tmp_path: Path, tagger: Tagger, mailbox: Mailbox,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("STORY_TEST_IMAP_PASSWORD", PASSWORD)
    config, _, read = setup(kind, tmp_path, tagger, mailbox)
    sar = tmp_path / "sar-jane"
    assert main(["--config", str(config), "subject-access", "--sender", "jane.doe@example.org",
                 "--out", str(sar)]) == 0  # fmt: skip
    database = tmp_path / ("s.db" if kind == "maildir" else "stories.db")
    before = trace(tmp_path, database, read, sar)
    with closing(sqlite3.connect(database)) as db:
        janes = [i for (i,) in db.execute("SELECT story_id FROM stories WHERE sender_address "
                                          "LIKE 'jane.doe@%'")]  # fmt: skip
    rows_before = story_rows(database, janes)
    assert rows_before["stories"] == 2 and rows_before["outbox_events"] >= 2, rows_before
    where = "inbox" if kind == "imap-inbox" else "processed"
    assert all(v for k, v in before.items() if k in (where, "tables", "data files",
                                                       "subject access")), before  # fmt: skip
    capsys.readouterr()
    # A worker holding the store open keeps SQLite from checkpointing when erase closes it:
    # only erase's own checkpoint brings the deleted rows' pages into the database file.
    with closing(sqlite3.connect(database)) as worker:
        worker.execute("SELECT count(*) FROM stories").fetchone()
        assert main(["--config", str(config), "erase", "--sender", "JANE.Doe@Example.org"]) == 0
        while_open = sum(file_hits(tmp_path, skip=sar).values())
    assert while_open == 0
    done = json.loads(capsys.readouterr().out)
    # Everyone else's mail is where it was, fetched or not.
    assert {folder: message_ids(read(folder)) for folder in ("INBOX", "Processed")} == kept(kind)
    after = trace(tmp_path, database, read, sar)
    print(f"trace hits {kind}: before {before} after {after}")
    assert after == dict.fromkeys(after, 0), (after, file_hits(tmp_path))
    # Every row about her stories, in any table, by id (history and marks included).
    assert story_rows(database, janes) == dict.fromkeys(rows_before, 0)
    assert done["rows"]["stories"] == 2 and done["rows"]["quarantine"] == 1
    assert done["mailbox_messages"] == 3
    assert not sar.exists()
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT count(*) FROM stories").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM erasures").fetchone() == (0,)


def test_erasure_quarantine_is_matched_by_normalised_sender_not_substring() -> None:
    from triage.erasure import senders_of  # here: the module is new with this test

    srs = f"Return-Path: <{SRS_JANE}>\nFrom: Fwd <fwd@forwarder.example.net>\n\nx".encode()
    assert "jane.doe@example.org" in senders_of(srs)
    mention = b"From: Ann <ann@example.net>\n\nPlease forward to jane.doe@example.org\n"
    assert "jane.doe@example.org" not in senders_of(mention)
    assert senders_of(b"From: JANE.DOE@EXAMPLE.ORG\n\n") == {"jane.doe@example.org"}


KILL_AFTER_COMMIT = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from intake.store.privacy import PrivacyRows
erase = PrivacyRows.erase
def erase_then_die(self, *args, **kwargs):
    counts = erase(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # right after the commit: nothing else runs
    return counts
PrivacyRows.erase = erase_then_die
from story_intake import cli
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("finish", ["erase", "housekeeping"])
def test_erasure_killed_after_the_commit_is_finished_by_the_next_run(
    finish: str, tmp_path: Path, tagger: Tagger, mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("STORY_TEST_IMAP_PASSWORD", PASSWORD)
    config, settings, read = setup("imap", tmp_path, tagger, mailbox)
    sar = tmp_path / "sar-jane"
    assert main(["--config", str(config), "subject-access", "--sender", "jane.doe@example.org",
                 "--out", str(sar)]) == 0  # fmt: skip
    erase = ["--config", str(config), "erase", "--sender", "jane.doe@example.org"]
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_COMMIT, str(ROOT), *erase],
                            cwd=ROOT, capture_output=True, timeout=300)  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    database = tmp_path / "stories.db"
    with closing(sqlite3.connect(database)) as db:  # the rows went; the rest is recorded
        assert db.execute("SELECT count(*) FROM stories").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM erasures").fetchone()[0] > 0
    assert sar.exists() and trace(tmp_path, database, read, sar)["processed"] > 0
    if finish == "erase":
        assert main(erase) == 0
    else:
        retention = RetentionSettings(purge_mailbox=True)
        assert housekeeping_job(replace(settings, retention=retention), T0) is not None
    after = trace(tmp_path, database, read, sar)
    assert after == dict.fromkeys(after, 0), after
    assert not sar.exists()
    assert {folder: message_ids(read(folder)) for folder in ("INBOX", "Processed")} == kept("imap")
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT count(*) FROM erasures").fetchone() == (0,)


def test_erasure_housekeeping_purges_only_recorded_copies(
    mailbox: Mailbox, imap_settings: Callable[..., Settings], tagger: Tagger, tmp_path: Path
) -> None:
    settings = replace(imap_settings(mailbox, processed_folder="Processed"),
                       retention=RetentionSettings(purge_mailbox=True))  # fmt: skip
    mailbox.append(story_message(1, message_id="<7@mail.example.net>"), story_message(2))
    run_once(settings, T0, tagger=tagger)
    # Filed into the processed folder by a person, never fetched: not the pipeline's to purge.
    mailbox.append(story_message(3, message_id="<17@mail.example.net>"), folder="Processed")
    counts = housekeeping_job(settings, datetime.now(UTC) + timedelta(days=183))
    assert counts is not None and counts["mailbox_messages"] == 2
    assert message_ids(imap_folder(mailbox, "Processed")) == {"<17@mail.example.net>"}


def test_erasure_too_large_message_without_message_id_is_found_by_its_header_digest(
    mailbox: Mailbox, imap_settings: Callable[..., Settings], tagger: Tagger, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("STORY_TEST_IMAP_PASSWORD", PASSWORD)
    settings = imap_settings(mailbox, processed_folder="Processed", max_message_bytes=2048)
    big = story_message(1, sender=JANE, message_id=None, body=f"{PHRASE}. " * 100)
    mailbox.append(big, story_message(2, message_id=None, body="Someone else's. " * 150))
    assert run_once(settings, T0, tagger=tagger).too_large == 2
    config = imap_config(tmp_path, mailbox, extra="[retention]\npurge_mailbox = true\n")
    config.write_text(
        config.read_text().replace(
            "batch_size", 'processed_folder = "Processed"\nmax_message_bytes = 2048\nbatch_size'
        )
    )
    assert main(["--config", str(config), "erase", "--sender", "jane.doe@example.org"]) == 0
    left = imap_folder(mailbox, "Processed")
    assert len(left) == 1 and not hits(left[0]) and b"Someone else's" in left[0]
