"""Privacy by default: retention, erasure, withdrawal holds, subject access, keyed sender
hashes, owner-only files and logs without personal data; every clock injected."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import (
    PASSWORD,
    Mailbox,
    SmtpSink,
    maildir_config,
    seed_maildir,
    story_message,
)

from intake.errors import UsageError
from intake.records import MailboxState, Quarantined, RawMessage
from intake.store.engine import Store, StoreSettings
from story_intake.app_settings import Settings
from story_intake.cli import main
from story_intake.jobs import digest_context, housekeeping_job
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from triage.digest.deliver import send_digest
from triage.digest.settings import DigestSettings
from triage.privacy import RetentionSettings
from triage.private_files import open_private_folder, write_private
from triage.reply.policy import reference
from triage.tag.tagger import Tagger

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
JANE = "Jane Doe <jane.doe@example.org>"
STORY_TABLES = ("stories", "raw_messages", "triage", "outbox")


def with_digests(settings: Settings, tmp_path: Path, **retention: object) -> Settings:
    return replace(settings, digest=DigestSettings(output_dir=str(tmp_path / "digests")),
                   retention=RetentionSettings(**retention))  # type: ignore[arg-type]  # fmt: skip


def rows_for(database: Path, story_ids: list[str]) -> dict[str, int]:
    connection = sqlite3.connect(database)
    marks = ",".join("?" * len(story_ids))
    query = "SELECT count(*) FROM {} WHERE story_id IN ({})"
    return {table: connection.execute(query.format(table, marks), story_ids).fetchone()[0]
            for table in STORY_TABLES}  # fmt: skip


def test_privacy_retention_purges_what_expired_and_keeps_tags_and_counts(
    maildir_settings: Settings, tmp_path: Path, tagger: Tagger
) -> None:
    settings = with_digests(maildir_settings, tmp_path)
    seed_maildir(settings.mailbox.maildir, story_message(1), story_message(2, sender=JANE))  # type: ignore[union-attr]
    run_once(settings, T0, tagger=tagger)
    with Store(settings.store) as store:
        send_digest(store, T0 + timedelta(hours=1), digest_context(settings))
        store.stories.commit_batch(
            MailboxState("INBOX", 1),
            9,
            [],
            [Quarantined(RawMessage("INBOX", 1, 9, T0, 3, b"bad"), "parse", "ParseError: x", "")],
            T0,
        )
    old = T0.timestamp() - 1
    for path in [*(tmp_path / "outbox").iterdir(), *(tmp_path / "digests").iterdir()]:
        os.utime(path, (old, old))  # the files were written "at T0"
    early = housekeeping_job(settings, T0 + timedelta(days=29))
    assert early is not None and sum(early.values()) == 0
    assert housekeeping_job(settings, T0 + timedelta(days=29, hours=2)) is None  # once a day
    outbox = housekeeping_job(settings, T0 + timedelta(days=31))
    assert outbox is not None and outbox["outbox_addresses"] == 2 and outbox["pickup_files"] == 2
    late = housekeeping_job(settings, T0 + timedelta(days=181))
    assert late is not None
    assert (late["raw_messages"], late["story_bodies"], late["quarantine"]) == (2, 2, 1)
    assert late["digest_files"] == 1
    with Store(settings.store) as store:
        triaged = list(store.stories.triaged())
    assert all(s.text == "" and s.sender.address == "" and s.subject == "" for s, _ in triaged)
    assert all(t is not None and t.themes and not t.evidence for _, t in triaged)
    database = sqlite3.connect(tmp_path / "stories.db")
    assert database.execute("SELECT count(*) FROM raw_messages").fetchone() == (0,)
    assert database.execute("SELECT DISTINCT recipient, sender_key FROM outbox").fetchall() == [
        ("", "")
    ]


def test_privacy_housekeeping_purges_only_our_messages_from_the_mailbox(
    mailbox: Mailbox, imap_settings: Callable[..., Settings], tagger: Tagger, tmp_path: Path
) -> None:
    settings = with_digests(imap_settings(mailbox), tmp_path, purge_mailbox=True)
    mailbox.append(story_message(1))
    run_once(settings, T0, tagger=tagger)  # stored: $Triaged
    mailbox.append(story_message(2))  # arrived since: not ours yet
    with mailbox.server.client(mailbox.user) as client:
        client.select_folder("INBOX")
        client.add_flags(client.search(["NOT", "KEYWORD", "$Triaged"]), [b"\\Deleted"])
    counts = housekeeping_job(settings, datetime.now(UTC) + timedelta(days=182))
    assert counts is not None and counts["mailbox_messages"] == 1
    flags = mailbox.flags()
    assert len(flags) == 1 and b"\\Deleted" in next(iter(flags.values()))  # a person's, untouched


def test_privacy_housekeeping_purges_the_processed_folder_and_leaves_the_inbox(
    mailbox: Mailbox, imap_settings: Callable[..., Settings], tagger: Tagger, tmp_path: Path
) -> None:
    settings = with_digests(imap_settings(mailbox, processed_folder="Processed"), tmp_path,
                            purge_mailbox=True)  # fmt: skip
    mailbox.append(story_message(1), story_message(2))
    run_once(settings, T0, tagger=tagger)  # both moved to Processed
    mailbox.append(story_message(3))  # not fetched yet: stays in INBOX
    early = housekeeping_job(settings, datetime.now(UTC) + timedelta(days=1))
    assert early is not None and early["mailbox_messages"] == 0  # not expired yet
    counts = housekeeping_job(settings, datetime.now(UTC) + timedelta(days=183))
    assert counts is not None and counts["mailbox_messages"] == 2
    assert mailbox.flags("Processed") == {} and len(mailbox.flags()) == 1


def test_privacy_erase_sender_removes_every_trace_and_the_mailbox_copies(
    mailbox: Mailbox, imap_settings: Callable[..., Settings], tagger: Tagger, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    settings = with_digests(imap_settings(mailbox), tmp_path, purge_mailbox=True)
    jane = [story_message(n, sender=JANE, message_id=f"<jane-{n}@example.org>") for n in (1, 2)]
    mailbox.append(*jane, story_message(3, message_id="<other-3@example.org>"))
    run_once(settings, T0, tagger=tagger)
    with Store(settings.store) as store:
        send_digest(store, T0 + timedelta(hours=1), digest_context(settings))
        store.stories.commit_batch(MailboxState("INBOX", 7), 99, [], [Quarantined(
            RawMessage("INBOX", 7, 99, T0, 30, b"From: JANE.DOE@example.org\r\n\r\nx"),
            "parse", "ParseError: x", "")], T0)  # fmt: skip
    config = write_imap_config(tmp_path, mailbox)
    monkeypatch.setenv("STORY_TEST_IMAP_PASSWORD", PASSWORD)
    ids = ["jane-1@example.org", "jane-2@example.org"]
    assert main(["--config", str(config), "erase", "--sender", "JANE.DOE@example.org",
                 "--dry-run"]) == 0  # fmt: skip
    preview = json.loads(capsys.readouterr().out)
    assert preview["rows"]["stories"] == 2 and preview["rows"]["quarantine"] == 1
    assert rows_for(tmp_path / "stories.db", ids) == dict.fromkeys(STORY_TABLES, 2)  # all kept
    assert main(["--config", str(config), "erase", "--sender", "JANE.DOE@example.org"]) == 0
    done = json.loads(capsys.readouterr().out)
    # The digest, and one acknowledgement (the second story was within the per-sender limit).
    assert done["mailbox_messages"] == 2 and len(done["files"]) == 2
    assert rows_for(tmp_path / "stories.db", ids) == dict.fromkeys(STORY_TABLES, 0)
    database = sqlite3.connect(tmp_path / "stories.db")
    assert database.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    assert database.execute("SELECT count(*) FROM stories").fetchone() == (1,)
    assert not any(Path(f).exists() for f in done["files"])
    with mailbox.server.client(mailbox.user) as client:
        client.select_folder("INBOX")
        assert client.search(["HEADER", "Message-ID", "jane-"]) == []
        assert len(client.search(["HEADER", "Message-ID", "other-3"])) == 1


def write_imap_config(tmp_path: Path, box: Mailbox) -> Path:
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'[mailbox]\nmaildir = ""\nhost = "127.0.0.1"\nport = {box.server.port}\n'
        f'security = "none"\nusername = "{box.user}"\npassword_env = "STORY_TEST_IMAP_PASSWORD"\n'
        f'[store]\nurl = "sqlite:///{tmp_path}/stories.db"\n'
        f'[smtp]\npickup_dir = "{tmp_path}/outbox"\n'
        f'[digest]\noutput_dir = "{tmp_path}/digests"\n[retention]\npurge_mailbox = true\n'
    )
    return config


def test_privacy_erase_one_story_by_reference(
    tmp_path: Path, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path)
    settings = load_settings(config, {})
    seed_maildir(settings.mailbox.maildir,  # type: ignore[union-attr]
                 story_message(1, message_id="<one@example.org>"), story_message(2))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    assert main(["--config", str(config), "erase", "--story", reference("one@example.org")]) == 0
    assert json.loads(capsys.readouterr().out)["stories"] == [reference("one@example.org")]
    assert rows_for(tmp_path / "s.db", ["one@example.org"]) == dict.fromkeys(STORY_TABLES, 0)


def test_privacy_withdrawal_holds_the_senders_stories_out_of_the_digest(
    maildir_settings: Settings, tmp_path: Path, tagger: Tagger
) -> None:
    settings = with_digests(maildir_settings, tmp_path)
    # The border vouches for the withdrawal: otherwise it waits for a person (test_forged).
    border = replace(settings.intake, trusted_authserv_ids=("mx.example.org",))
    settings = replace(settings, intake=border)
    story = ("The police took my statement three times because the officers never read "
             "each other's notes, and the GP asked me to repeat it all again.")  # fmt: skip
    seed_maildir(settings.mailbox.maildir, story_message(1, sender=JANE, body=story))  # type: ignore[union-attr]
    run_once(settings, T0, tagger=tagger)
    withdraw = "Please delete my story and everything I sent you. I do not want it used."
    passed = "mx.example.org; dkim=pass header.d=example.org"
    message = story_message(2, sender=JANE, body=withdraw, Authentication_Results=passed)
    seed_maildir(settings.mailbox.maildir, message)  # type: ignore[union-attr]
    run_once(settings, T0 + timedelta(minutes=5), tagger=tagger)
    with Store(settings.store) as store:
        held = store.privacy.on_hold()
        outcome = send_digest(store, T0 + timedelta(hours=1), digest_context(settings))
    assert len(held) == 1
    assert outcome.path is not None
    page = outcome.path.read_text()
    assert reference(held[0]) not in page and "statement three times" not in page
    assert "1 story is on hold" in page and "request:withdrawal" in page


def test_privacy_withdrawal_asked_inside_a_story_holds_nothing_by_itself(
    maildir_settings: Settings, tmp_path: Path, tagger: Tagger
) -> None:
    settings = with_digests(maildir_settings, tmp_path)
    border = replace(settings.intake, trusted_authserv_ids=("mx.example.org",))
    settings = replace(settings, intake=border)
    story = ("The police took my statement three times because the officers never read "
             "each other's notes, and the GP asked me to repeat it all again.")  # fmt: skip
    seed_maildir(settings.mailbox.maildir, story_message(1, sender=JANE, body=story))  # type: ignore[union-attr]
    run_once(settings, T0, tagger=tagger)
    mixed = ("My mum is 86 and has dementia. The care home, the GP and the hospital each asked "
             "me for her whole history, none of them had the others' notes, and I told the "
             "same story three times in one week before the social worker started another "
             "assessment from scratch.\n\nOn reflection, please delete my story.")  # fmt: skip
    passed = "mx.example.org; dkim=pass header.d=example.org"
    message = story_message(2, sender=JANE, body=mixed, Authentication_Results=passed)
    seed_maildir(settings.mailbox.maildir, message)  # type: ignore[union-attr]
    run_once(settings, T0 + timedelta(minutes=5), tagger=tagger)
    with Store(settings.store) as store:
        assert store.privacy.on_hold() == []  # a person confirms first (release --story)
        assert len(store.outbox.needs_confirmation()) == 1


def test_privacy_subject_access_writes_everything_held_owner_only(
    tmp_path: Path, tagger: Tagger
) -> None:
    config = maildir_config(tmp_path)
    settings = load_settings(config, {})
    seed_maildir(settings.mailbox.maildir,  # type: ignore[union-attr]
                 story_message(1, sender=JANE, message_id="<sar@example.org>"),
                 story_message(2))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    out = tmp_path / "sar"
    assert main(["--config", str(config), "subject-access", "--sender", "jane.doe@example.org",
                 "--out", str(out)]) == 0  # fmt: skip
    ref = reference("sar@example.org")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{ref}.eml", f"{ref}.txt", f"{ref}.json", "index.json"]
    )
    record = json.loads((out / f"{ref}.json").read_text())
    assert record["subject"] == "My story number 1" and record["acknowledgement"]["state"]
    assert record["themes"] and record["sender"]["address"] == "jane.doe@example.org"
    history = [(e["state"], e["detail"], e["by"]) for e in record["reply_history"]]
    assert history == [("pending", "send", "pipeline"), ("sending", "", "pipeline"),
                       ("sent", "", "pipeline")]  # fmt: skip
    assert b"Message-ID: <sar@example.org>" in (out / f"{ref}.eml").read_bytes()
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())


def test_privacy_sender_key_is_a_keyed_hash_not_a_plain_digest(tmp_path: Path) -> None:
    address = "jane.doe@example.org"
    own = Store(StoreSettings(f"sqlite:///{tmp_path}/a.db"))
    again = Store(StoreSettings(f"sqlite:///{tmp_path}/a.db"))
    keyed = Store(StoreSettings(f"sqlite:///{tmp_path}/b.db", hash_key="from-the-environment"))
    assert own.sender_key(address) != hashlib.sha256(address.encode()).hexdigest()
    assert own.sender_key(address) == again.sender_key(address)  # the key file is reused
    assert keyed.sender_key(address) != own.sender_key(address)
    assert stat.S_IMODE((tmp_path / "a.db.key").stat().st_mode) == 0o600
    assert not (tmp_path / "b.db.key").exists()


def test_privacy_var_files_are_created_owner_only(tmp_path: Path) -> None:
    config = maildir_config(tmp_path / "var", extra=f'[digest]\noutput_dir = "{tmp_path}/var/d"\n')
    result = subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), "--config",
                             str(config), "demo"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    made = [p for p in (tmp_path / "var").rglob("*") if p.name != "pipeline.toml"]
    assert {p.suffix for p in made} >= {".db", ".eml", ".html", ".key"}
    loose = [str(p) for p in made if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == []


PII_BODY = (
    "My name is Jane Doe and my number is 07700 900461, NHS number 999 123 4567. "
    "The crisis team lost my notes twice and the police asked the same questions."
)


@pytest.mark.slow
def test_privacy_debug_logs_carry_no_body_subject_address_or_secret(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink
) -> None:
    mailbox.append(story_message(1, sender=JANE, body=PII_BODY),
                   story_message(2, sender="Ann <ann.other@example.org>", body="x"))  # fmt: skip
    config = write_imap_config(tmp_path, mailbox)
    text = config.read_text().replace(f'pickup_dir = "{tmp_path}/outbox"',
                                      f'host = "127.0.0.1"\nport = {smtp_sink.port}\n'
                                      'security = "none"\npickup_dir = ""')  # fmt: skip
    config.write_text(text.replace("[digest]\n", '[digest]\nrecipients = ["team@example.org"]\n'))
    env = {**os.environ, "STORY_TEST_IMAP_PASSWORD": PASSWORD, "STORY_HASH_KEY": "k3y-s3cret"}
    logs = ""
    for command in (["once"], ["digest", "--send"], ["status"], ["export"]):
        done = subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), "--config",
                               str(config), "--log-level", "DEBUG", *command], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        logs += done.stderr
    assert "batch" in logs and "digest" in logs  # the logs did say something
    for secret in (
        "Jane",
        "jane.doe",
        "ann.other",
        "example.org>",
        "My story number",
        "07700",
        "999 123 4567",
        "crisis team",
        PASSWORD,
        "k3y-s3cret",
    ):
        assert secret not in logs, secret
    assert len(smtp_sink.messages) >= 2  # acknowledgements and the digest did go out


def _sar(config: Path, out: Path) -> int:
    return main(["--config", str(config), "subject-access", "--sender", "jane.doe@example.org",
                 "--out", str(out)])  # fmt: skip


def test_privacy_subject_access_refuses_a_folder_prepared_with_a_symlink_or_open_file(
    tmp_path: Path, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path)
    settings = load_settings(config, {})
    seed_maildir(settings.mailbox.maildir,  # type: ignore[union-attr]
                 story_message(1, sender=JANE, message_id="<trap@example.org>"))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "index.json").symlink_to(elsewhere)
    (planted / f"{reference('trap@example.org')}.txt").symlink_to(elsewhere)
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    (loose / "index.json").write_text("{}")
    (loose / "index.json").chmod(0o644)
    linked = tmp_path / "linked"
    linked.symlink_to(tmp_path / "empty-target", target_is_directory=True)
    (tmp_path / "empty-target").mkdir()
    for out in (planted, loose, linked):
        assert _sar(config, out) == 2
        assert str(out) in capsys.readouterr().err
    assert elsewhere.read_text() == "not yours"
    assert (loose / "index.json").read_text() == "{}"
    assert list((tmp_path / "empty-target").iterdir()) == []
    # A refused folder is not recorded: erasing Jane later must not delete what is there.
    recorded = (
        sqlite3.connect(tmp_path / "s.db")
        .execute("SELECT count(*) FROM subject_access_files")
        .fetchone()[0]
    )
    assert recorded == 0


def test_privacy_subject_access_writes_a_new_or_empty_folder_owner_only(
    tmp_path: Path, tagger: Tagger
) -> None:
    config = maildir_config(tmp_path)
    settings = load_settings(config, {})
    seed_maildir(settings.mailbox.maildir, story_message(1, sender=JANE))  # type: ignore[union-attr]
    run_once(settings, T0, tagger=tagger)
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    empty.chmod(0o755)
    fresh = tmp_path / "new" / "deeper"
    for out in (empty, fresh):
        assert _sar(config, out) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o700
        assert len(list(out.iterdir())) == 4
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    assert _sar(config, fresh) == 2  # the second time it is not empty: never overwritten


def test_privacy_private_file_never_follows_or_replaces(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("kept")
    folder = tmp_path / "out"
    descriptor = open_private_folder(folder)
    try:
        (folder / "planted").symlink_to(target)  # planted after the folder was checked
        with pytest.raises(UsageError):
            write_private(descriptor, "planted", b"story")
        write_private(descriptor, "fresh", b"story")
        with pytest.raises(UsageError):
            write_private(descriptor, "fresh", b"again")
    finally:
        os.close(descriptor)
    assert target.read_text() == "kept" and (folder / "fresh").read_bytes() == b"story"
