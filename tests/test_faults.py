"""Reliability under faults: a real Dovecot and a real aiosmtpd, a mailbox of generated stories,
one injected fault per scenario; then the pipeline runs to completion and ``audit`` counts what
matters to the people who wrote in:

- lost: a message still in the watched folder that is neither stored nor quarantined;
- duplicates: one message stored as two stories;
- duplicate acknowledgements: a person who got more than one reply;
- missing acknowledgements: a story that should have had a reply and has neither had one nor
  been visibly held (``held`` or ``failed`` in the outbox, which ``status`` and the digest show).

``make test`` runs each scenario a reduced number of times over 120 messages; ``make faults``
sets FAULT_FULL=1 for the full counts over 300 and prints the table the README's
"Reliability" section shows.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    FAULT_TALLY,
    DovecotServer,
    Mailbox,
    SmtpSink,
    count_stories,
    imap_config,
    start_pipeline,
    story_message,
    wait_for,
)

from intake.errors import FetchError
from intake.store.engine import Store, StoreSettings
from story_intake.app_settings import Settings
from story_intake.pipeline import run_once
from triage.reply.settings import AcknowledgementSettings, SmtpSettings
from triage.tag.tagger import Tagger

FULL = os.environ.get("FAULT_FULL") == "1"
STORIES = 300 if FULL else 120
ACK = "[acknowledgement]\nmax_per_hour = 100000\n"  # the hourly cap is not under test here
TRIAGED = b"$Triaged"
SENTENCES = (
    "I rang the GP surgery three times before anyone called me back.",
    "The police officer who came out took a statement, then a second officer took another.",
    "Mum is 87 and has dementia, and the care home kept losing her medication chart.",
    "I had to fill in the same form for the council, the hospital and the benefits office.",
    "Nobody at the hospital knew that social services had already visited the week before.",
    "The PCSO was kind but said the report would have to go to a different team.",
    "Dad fell twice in a month and the carers were never told about the first fall.",
    "The mental health team asked me to repeat everything I had told the crisis line.",
    "It felt like nobody was talking to anybody else, and I was the one carrying the file.",
    "I only want someone to read this and understand how tiring it all was.",
)


def trials(full: int) -> range:
    """The trial numbers of a scenario: ``full`` under ``make faults``, one in ``make test``."""
    return range(full if FULL else 1)


def generate(tag: str, first: int, count: int) -> list[bytes]:
    """Messages ``first``.. of mailbox ``tag``: stories from distinct people, every 25th an
    out-of-office reply (which must get no acknowledgement). Seeded, dated now."""
    rng, date = random.Random(f"{tag}:{first}"), formatdate(usegmt=True)
    messages = []
    for n in range(first, first + count):
        sender = f"Person {n} <p{n}.{tag}@example.org>"
        if n % 25 == 24:
            messages.append(story_message(n, message_id=f"<auto-{n}.{tag}@example.org>",
                                          sender=sender, date=date, Auto_Submitted="auto-replied",
                                          body="I am out of the office until Monday."))  # fmt: skip
            continue
        body = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(4, 24)))
        messages.append(story_message(n, message_id=f"<story-{n}.{tag}@example.org>",
                                      sender=sender, date=date, body=body))  # fmt: skip
    return messages


@dataclass(frozen=True)
class Audit:
    messages: int
    lost: int
    duplicates: int
    duplicate_acks: int
    missing_acks: int
    held: int
    to_machines: int  # replies to auto-replies: must always be 0


def header(raw: bytes, name: str) -> str:
    return str(BytesHeaderParser().parsebytes(raw).get(name, "")).strip()


def folder_messages(box: Mailbox, folder: str) -> set[str]:
    """The Message-IDs in ``folder`` right now."""
    with box.server.client(box.user) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
    return {header(item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"], "Message-ID")
            for item in fetched.values()}  # fmt: skip


def audit(box: Mailbox, database: Path, sink: SmtpSink, folder: str = "INBOX") -> Audit:
    """Count lost, duplicated and missing against the mailbox, the store and the SMTP sink."""
    present = folder_messages(box, folder)
    with closing(sqlite3.connect(database)) as db:
        raws = [raw for (raw,) in db.execute("SELECT data FROM raw_messages")]
        quarantined = {header(raw, "Message-ID") for (raw,) in db.execute(
            "SELECT data FROM quarantine")}  # fmt: skip
        states = dict(db.execute("SELECT lower(s.sender_address), o.state FROM outbox o "
                                 "JOIN stories s USING (story_id)").fetchall())  # fmt: skip
    stored = [header(raw, "Message-ID") for raw in raws]
    senders = {header(raw, "Message-ID"): parseaddr(header(raw, "From"))[1].lower() for raw in raws}
    assert all(len(rcpts) == 1 for _, rcpts, _ in sink.messages)  # one person per reply
    replies = Counter(rcpts[0].lower() for _, rcpts, _ in sink.messages)
    people = {a for m, a in senders.items() if m.startswith("<story-")}
    machines = set(senders.values()) - people
    return Audit(
        messages=len(present),
        lost=len(present - set(stored) - quarantined),
        duplicates=len(stored) - len(set(stored)),
        duplicate_acks=sum(count - 1 for count in replies.values() if count > 1),
        missing_acks=sum(1 for a in people
                         if not replies[a] and states.get(a) not in ("held", "failed")),
        held=sum(1 for state in states.values() if state in ("held", "failed")),
        to_machines=sum(replies[a] for a in machines),
    )  # fmt: skip


def record_clean(request: pytest.FixtureRequest, scenario: str, result: Audit) -> None:
    """Add a trial to the table printed at the end of the run (whatever it found), then check
    that nothing was lost, duplicated or missing."""
    tally = request.config.stash.setdefault(FAULT_TALLY, {})
    tally.setdefault(scenario, Counter()).update({"trials": 1, **asdict(result)})
    assert (result.lost, result.duplicates, result.duplicate_acks, result.missing_acks,
            result.to_machines) == (0, 0, 0, 0, 0), result  # fmt: skip


def complete(config: Path) -> str:
    """Run ``once`` to the end, as an operator would after a failure; returns its stderr."""
    process = start_pipeline(config, "once")
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return err


def stored_uids(database: Path) -> set[int]:
    with closing(sqlite3.connect(database)) as db:
        return {uid for (uid,) in db.execute("SELECT uid FROM stories")}


def database_of(settings: Settings) -> Path:
    """The SQLite file of the store ``settings`` name."""
    return Path(settings.store.url.removeprefix("sqlite:///"))


def sink_settings(settings: Settings, sink: SmtpSink, **smtp: Any) -> Settings:
    """``settings`` sending to ``sink`` with no hourly cap."""
    relay = SmtpSettings(host=sink.host, port=sink.port, security="none", pickup_dir="")
    ack = AcknowledgementSettings(max_per_hour=100_000)
    return replace(settings, smtp=replace(relay, **smtp), acknowledgement=ack)


KILL_PHASES = ("starting", "storing", "sending")


@pytest.mark.faults
@pytest.mark.parametrize("trial", range(21 if FULL else 3))
def test_faults_sigkill_at_a_random_moment_then_rerun(
    trial: int, mailbox: Mailbox, smtp_sink: SmtpSink, tmp_path: Path, tagger: Tagger,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    rng, phase = random.Random(trial), KILL_PHASES[trial % 3]
    mailbox.append(*generate("kill", 0, STORIES))
    config = imap_config(tmp_path, mailbox, batch_size=20, smtp_port=smtp_sink.port, extra=ACK)
    process = start_pipeline(config, "once")
    if phase == "sending":  # at the n-th reply, after the server took it, before it is recorded
        target = rng.randint(1, STORIES - 10)
        smtp_sink.on_message = lambda: len(smtp_sink.messages) >= target and process.kill()
    elif phase == "storing":
        target = rng.randint(1, STORIES - 1)
        wait_for(lambda: count_stories(tmp_path / "stories.db") >= target
                 or process.poll() is not None, 120, "stories stored")  # fmt: skip
        process.kill()
    else:  # imports, login, the first fetch
        time.sleep(rng.uniform(0.0, 3.0))
        process.kill()
    process.communicate(timeout=120)
    smtp_sink.on_message = None
    complete(config)
    result = audit(mailbox, tmp_path / "stories.db", smtp_sink)
    record_clean(request, "worker SIGKILLed at a random moment", result)
    assert result.held <= 1  # at most the reply in hand, and only when it may have gone


@pytest.mark.faults
@pytest.mark.parametrize("trial", trials(3))
def test_faults_dovecot_restarted_in_the_middle_of_a_fetch(
    trial: int, own_dovecot: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, tagger: Tagger,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    box = Mailbox(own_dovecot, f"restart{trial}")
    box.append(*generate("restart", 0, STORIES))
    config = imap_config(tmp_path, box, batch_size=10, smtp_port=smtp_sink.port, extra=ACK)
    process = start_pipeline(config, "once")
    target = random.Random(trial).randint(1, STORIES // 2)
    wait_for(lambda: count_stories(tmp_path / "stories.db") >= target
             or process.poll() is not None, 120, "stories stored")  # fmt: skip
    own_dovecot.stop()
    own_dovecot.start()
    _, err = process.communicate(timeout=120)
    assert "Traceback" not in err and (process.returncode == 0 or "error: IMAP" in err), err
    complete(config)
    result = audit(box, tmp_path / "stories.db", smtp_sink)
    record_clean(request, "Dovecot restarted mid-fetch", result)
    assert result.held == 0


@pytest.mark.faults
@pytest.mark.parametrize("trial", trials(3))
def test_faults_smtp_refuses_a_random_fifth_451_and_some_addresses_550(
    trial: int, mailbox: Mailbox, smtp_sink: SmtpSink, imap_settings: Callable[..., Settings],
    tagger: Tagger, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    mailbox.append(*generate("smtp", 0, STORIES))
    refused = {f"p{n}.smtp@example.org" for n in range(3, STORIES, 10)}
    for address in refused:
        smtp_sink.reject(address, 550)
    smtp_sink.fail_randomly(0.2, 451, seed=trial)
    settings, now = sink_settings(imap_settings(mailbox), smtp_sink), datetime.now(UTC)
    for hours in range(0, 6 * 40, 6):  # each run later than every backoff so far
        run_once(settings, now + timedelta(hours=hours), tagger=tagger)
        if not pending(settings):
            break
    result = audit(mailbox, database_of(settings), smtp_sink)
    record_clean(request, "SMTP 451 to a fifth, 550 to some", result)
    assert Counter(a for a in smtp_sink.refused if a in refused) == Counter(refused)  # tried once
    assert result.held >= len(refused)


def pending(settings: Settings) -> int:
    with closing(sqlite3.connect(database_of(settings))) as db:
        query = "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')"
        return int(db.execute(query).fetchone()[0])


@pytest.mark.faults
def test_faults_silent_imap_server_ends_the_run_within_its_timeout_then_the_next_run_works(
    mailbox: Mailbox, smtp_sink: SmtpSink, silent_port: int,
    imap_settings: Callable[..., Settings], tagger: Tagger, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    mailbox.append(*generate("silentimap", 0, STORIES))
    settings = sink_settings(imap_settings(mailbox), smtp_sink)
    dead = replace(settings.mailbox, port=silent_port, connect_timeout=1.0, read_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out|TimeoutError"):
        run_once(replace(settings, mailbox=dead), datetime.now(UTC), tagger=tagger)
    # Not a speed figure: a hang would be minutes, the configured timeouts total 3 s.
    assert time.monotonic() - started < 3 + 10
    run_once(settings, datetime.now(UTC), tagger=tagger)
    result = audit(mailbox, database_of(settings), smtp_sink)
    record_clean(request, "IMAP server that never answers", result)
    assert result.held == 0


@pytest.mark.faults
def test_faults_silent_smtp_server_ends_sending_within_its_timeout_then_the_next_run_sends(
    mailbox: Mailbox, smtp_sink: SmtpSink, silent_port: int,
    imap_settings: Callable[..., Settings], tagger: Tagger, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    mailbox.append(*generate("silentsmtp", 0, STORIES))
    settings = sink_settings(imap_settings(mailbox), smtp_sink)
    silent = sink_settings(settings, smtp_sink, port=silent_port, timeout=2.0)
    now = datetime.now(UTC)
    assert run_once(silent, now, tagger=tagger).stored == STORIES  # intake does not wait on SMTP
    started = time.monotonic()
    assert run_once(silent, now, tagger=tagger).acknowledged == 0
    assert time.monotonic() - started < 2 + 10  # one timeout for the run, not one per reply
    with closing(sqlite3.connect(database_of(settings))) as db:
        rows = db.execute("SELECT state, attempts FROM outbox WHERE state != 'suppressed'")
        assert set(rows.fetchall()) == {("pending", 0)}  # nobody's reply blamed or held
    run_once(settings, now, tagger=tagger)
    result = audit(mailbox, database_of(settings), smtp_sink)
    record_clean(request, "SMTP server that never answers", result)
    assert result.held == 0


@pytest.mark.faults
@pytest.mark.parametrize("trial", trials(2))
def test_faults_uidvalidity_reset_between_runs(
    trial: int, mailbox: Mailbox, smtp_sink: SmtpSink, imap_settings: Callable[..., Settings],
    tagger: Tagger, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    old = generate("uidv", 0, STORIES)
    mailbox.append(*old, folder="Stories")
    settings = sink_settings(imap_settings(mailbox, folder="Stories"), smtp_sink)
    run_once(settings, datetime.now(UTC), tagger=tagger)
    before = mailbox.uidvalidity("Stories")
    mailbox.delete_folder("Stories")  # recreated: same messages, new UIDs, plus new ones
    mailbox.append(*random.Random(trial).sample(old, len(old)), *generate("uidv", STORIES, 30),
                   folder="Stories")  # fmt: skip
    assert mailbox.uidvalidity("Stories") != before
    counts = run_once(settings, datetime.now(UTC), tagger=tagger)
    assert (counts.stored, counts.duplicates) == (30, STORIES)
    result = audit(mailbox, database_of(settings), smtp_sink,
                   "Stories")  # fmt: skip
    record_clean(request, "UIDVALIDITY reset between runs", result)
    assert result.held == 0


def churn(box: Mailbox, process: subprocess.Popen[str], database: Path, seed: int) -> int:
    """Another client moving and expunging messages while the run goes on; returns how many
    it took away."""
    rng, removed = random.Random(seed), 0
    wait_for(lambda: count_stories(database) > 0 or process.poll() is not None, 120, "a batch")
    with box.server.client(box.user) as client:
        client.create_folder("Elsewhere")
        client.select_folder("INBOX")
        while process.poll() is None and removed < STORIES // 3:
            uids = client.search("ALL")
            moved, deleted = rng.sample(uids, 2), rng.sample(uids, 2)
            client.move(moved, "Elsewhere")
            deleted = [uid for uid in deleted if uid not in moved]
            client.delete_messages(deleted)
            client.uid_expunge(deleted)
            removed += len(moved) + len(deleted)
            time.sleep(0.02)
    return removed


@pytest.mark.faults
@pytest.mark.parametrize("trial", trials(3))
def test_faults_another_client_expunges_and_moves_during_a_run(
    trial: int, mailbox: Mailbox, smtp_sink: SmtpSink, tmp_path: Path, tagger: Tagger,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    mailbox.append(*generate("churn", 0, STORIES))
    config = imap_config(tmp_path, mailbox, batch_size=10, smtp_port=smtp_sink.port, extra=ACK)
    process = start_pipeline(config, "once")
    removed = churn(mailbox, process, tmp_path / "stories.db", trial)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    assert removed > 0
    complete(config)
    result = audit(mailbox, tmp_path / "stories.db", smtp_sink)
    record_clean(request, "another client expunging and moving", result)
    assert result.held == 0


def file_size_limit(limit: int) -> Callable[[], None]:
    """For the child: every file it writes stops growing at ``limit`` bytes (EFBIG, as on a
    full disk; SIGXFSZ ignored so the write fails instead of killing the process)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def empty_store_size(folder: Path) -> int:
    """Bytes of a freshly created, empty store, its WAL (not yet checkpointed) included."""
    folder.mkdir()
    with Store(StoreSettings(f"sqlite:///{folder}/stories.db")) as store:
        store.runs.status()  # a connection stays open in the pool: the WAL is still there
        return sum(p.stat().st_size for p in folder.glob("stories.db*"))


@contextmanager
def small_disk(folder: Path, size: int) -> Iterator[Callable[[], None]]:
    """A tmpfs of ``size`` bytes mounted at ``folder`` (ENOSPC when full); yields a function
    that grows it, as an operator freeing space would. Needs root, like the apt installs."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                              str(folder)], capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (run as root): {mounted.stderr.strip()}")
    try:
        yield lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.faults
@pytest.mark.parametrize("disk", ["tmpfs", "file size limit"])
@pytest.mark.parametrize("trial", trials(3))
def test_faults_store_disk_full_stops_cleanly_and_marks_nothing_unstored(
    disk: str, trial: int, mailbox: Mailbox, smtp_sink: SmtpSink, tmp_path: Path,
    tagger: Tagger, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    mailbox.append(*generate("full", 0, STORIES))
    # The empty store and its WAL (measured: both grow with the schema); the limit leaves room
    # for them and a few batches, so the store fills part way.
    empty = empty_store_size(tmp_path / "empty")
    size = (empty + (256 + 256 * trial) * 1024 if disk == "tmpfs"
            else empty + (256 + 128 * trial) * 1024)  # fmt: skip
    with small_disk(tmp_path / "disk", size if disk == "tmpfs" else 64 << 20) as free_space:
        folder = tmp_path / "disk"
        config = imap_config(folder, mailbox, batch_size=10, smtp_port=smtp_sink.port, extra=ACK)
        limit = {"preexec_fn": file_size_limit(size)} if disk != "tmpfs" else {}
        process = start_pipeline(config, "once", **limit)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 1 and "Traceback" not in err, err[-3000:]
        assert "error: store" in err
        database = folder / "stories.db"
        marked = {uid for uid, flags in mailbox.flags().items() if TRIAGED in flags}
        assert 0 < len(stored_uids(database)) < STORIES  # it filled up part way
        assert marked <= stored_uids(database)  # nothing marked on the server that was not stored
        free_space()
        complete(config)
        result = audit(mailbox, database, smtp_sink)
    record_clean(request, f"store's disk full ({disk})", result)
    # Replies go out between batches: a disk that fills after a reply was claimed and sent,
    # before the store could record it, leaves that one held for a person (logged by reference).
    assert result.held <= 1


@pytest.mark.faults
@pytest.mark.parametrize("command", ["once", "run"])
@pytest.mark.parametrize("trial", trials(3))
def test_faults_two_workers_started_at_once_on_one_mailbox(
    trial: int, command: str, mailbox: Mailbox, smtp_sink: SmtpSink, tmp_path: Path, tagger: Tagger,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    mailbox.append(*generate("twins", 0, STORIES))
    extra = ACK + f'[schedule]\npoll_seconds = 1\n[digest]\noutput_dir = "{tmp_path}/digests"\n'
    config = imap_config(tmp_path, mailbox, batch_size=20, smtp_port=smtp_sink.port, extra=extra)
    twins = [start_pipeline(config, command) for _ in range(2)]
    with stopping(twins):
        if command == "run":
            people = STORIES - STORIES // 25
            wait_for(lambda: len(smtp_sink.messages) >= people, 180, "every acknowledgement")
            wait_for(lambda: any(p.poll() is not None for p in twins), 60, "the twin to give up")
            for process in twins:
                process.send_signal(signal.SIGTERM)
        ends = [process.communicate(timeout=120) for process in twins]
    codes = sorted(process.returncode for process in twins)
    # The end of each one's log, so a failure says which exited how (a repr would cut it).
    assert codes in ([0, 0], [0, 1]), [(p.returncode, err[-2000:]) for p, (_, err) in
                                       zip(twins, ends, strict=True)]  # fmt: skip
    for process, (_, err) in zip(twins, ends, strict=True):
        assert process.returncode == 0 or "already polling" in err, err[-3000:]
    complete(config)
    result = audit(mailbox, tmp_path / "stories.db", smtp_sink)
    record_clean(request, f"two workers at once ({command})", result)
    assert result.held == 0


@contextmanager
def stopping(processes: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Kill whatever is still running when the block ends, also when it fails."""
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
