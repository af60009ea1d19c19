"""Intake benchmark: the pipeline's fetch -> parse -> store against a real Dovecot, and the limit.

For each mailbox size N it starts a private Dovecot (tests/conftest.py's ``DovecotServer``),
writes a reproducible synthetic mailbox (``bench/mailgen.py``) straight into fresh users'
Maildirs, and measures, each in a fresh subprocess (so peak RSS belongs to that run alone):

- pipeline: ``story_intake.pipeline.run_once`` on a fresh store and a fresh copy of the mailbox;
- baseline: imapclient ``FETCH BODY.PEEK[]`` in batches of 100 plus the stdlib email parser and
  ``get_body().get_content()``: no store, no cleaning, the most the pipeline could hope for;
- idle poll: a second ``run_once`` on the already-processed mailbox and store.

Medians of ``--repeat`` runs are printed and written to ``bench/RESULTS.md``. ``--profile`` runs
the pipeline once per size under cProfile instead and prints where the time goes.

    .venv/bin/python bench/intake_bench.py [--sizes 1000 10000] [--repeat 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import email
import email.policy
import hashlib
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import mailgen  # noqa: E402  (bench/, the script's own folder)
from conftest import PASSWORD, DovecotServer, Mailbox  # noqa: E402

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
BASELINE_BATCH = 100
RESULTS = BENCH / "RESULTS.md"


@dataclass(frozen=True, slots=True)
class ChildResult:
    """What one measured subprocess reports."""

    seconds: float
    fetched: int
    peak_mib: float
    start_mib: float
    counts: dict[str, int]
    extra: dict[str, float]


@dataclass(frozen=True, slots=True)
class Row:
    """Medians for one mailbox size."""

    n: int
    pickup_rate: float
    smtp_rate: float
    limit_rate: float
    fetch_parse_rate: float
    tokenizer_rate: float
    pipeline_mib: float
    limit_mib: float
    idle_ms: float
    idle_round_trips: float
    stages: dict[str, float]
    repeats: int


# --- measured children: each runs in its own process ------------------------------------------


def _memory_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmHWM = peak RSS, VmRSS = now) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child_settings(spec: dict[str, Any]) -> Any:
    """Settings for the pipeline: the bench user's INBOX, the store named in ``spec``, and
    acknowledgements to the pickup folder or to the SMTP sink (no hourly cap: all are sent)."""
    from intake.sources.imap import ImapSettings
    from intake.store.engine import StoreSettings
    from story_intake.app_settings import IntakeSettings, Settings
    from triage.reply.settings import AcknowledgementSettings, SmtpSettings

    imap = ImapSettings(
        host="127.0.0.1",
        port=spec["port"],
        security="none",
        username=spec["user"],
        password_env="STORY_BENCH_IMAP_PASSWORD",
        password=PASSWORD,
        connect_timeout=10,
        read_timeout=300,
        batch_size=spec.get("batch_size", 100),
        # bench/memory_bench.py sets it; the rest run with the shipped default.
        **({"batch_bytes": spec["batch_bytes"]} if "batch_bytes" in spec else {}),
    )
    smtp = SmtpSettings(pickup_dir=spec["outbox"])
    if spec.get("smtp_port"):
        smtp = SmtpSettings(host="127.0.0.1", port=spec["smtp_port"], security="none")
    return Settings(
        mailbox=imap,
        store=StoreSettings(f"sqlite:///{spec['db']}"),
        smtp=smtp,
        intake=IntakeSettings(workers=spec.get("workers", 1)),
        acknowledgement=AcknowledgementSettings(max_per_hour=10**9),
    )


class TreeMemory:
    """Peak of the summed RSS of this process and its children (the parse/tag workers),
    sampled every 50 ms in a thread: VmHWM alone would leave the workers out."""

    def __init__(self) -> None:
        import threading

        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mib = max(self.peak_mib, _tree_rss_mib())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak_mib, _memory_mib("VmHWM"))


def _tree_rss_mib() -> float:
    pids = [str(os.getpid())]
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    with contextlib.suppress(OSError):
        pids += children.read_text().split()
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0]) / 1024
    return total


def _count_imap_commands() -> dict[str, int]:
    """Count the IMAP commands sent after LOGIN (each is one round trip)."""
    import imaplib

    seen = {"after_login": 0, "logged_in": 0}
    original = imaplib.IMAP4._command

    def counting(self: Any, name: str, *args: Any) -> Any:
        if seen["logged_in"]:
            seen["after_login"] += 1
        if name == "LOGIN":
            seen["logged_in"] = 1
        return original(self, name, *args)

    imaplib.IMAP4._command = counting  # type: ignore[method-assign]
    return seen


def child_pipeline(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``run_once`` (optionally under cProfile); imports happen before the clock starts."""
    from intake.timing import StageTimer
    from story_intake.pipeline import run_once

    settings = _child_settings(spec)
    commands = _count_imap_commands()
    start_mib = _memory_mib("VmRSS")
    memory = TreeMemory()
    timer = StageTimer()
    profiler = cProfile.Profile() if spec.get("profile") else None
    began = time.perf_counter()
    if profiler is not None:
        counts = profiler.runcall(run_once, settings, NOW, timer=timer)
    else:
        counts = run_once(settings, NOW, timer=timer)
    seconds = time.perf_counter() - began
    if profiler is not None:
        profiler.dump_stats(spec["profile"])
    extra = {"imap_commands": commands["after_login"]}
    extra |= {f"s_{k}": v for k, v in timer.seconds.items()}
    extra |= {f"n_{k}": v for k, v in timer.items.items()}
    result = ChildResult(seconds, counts.fetched, memory.stop(), start_mib, asdict(counts), extra)
    return asdict(result)


def child_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """The limit: FETCH BODY.PEEK[] in batches, stdlib parse, text body; then spaCy's blank
    tokenizer alone over the same texts. Nothing else."""
    import spacy
    from imapclient import IMAPClient

    nlp = spacy.blank("en")
    start_mib = _memory_mib("VmRSS")
    began = time.perf_counter()
    texts: list[str] = []
    with IMAPClient("127.0.0.1", port=spec["port"], ssl=False, timeout=300) as client:
        client.login(spec["user"], PASSWORD)
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        for at in range(0, len(uids), BASELINE_BATCH):
            rows = client.fetch(uids[at : at + BASELINE_BATCH], ["BODY.PEEK[]"])
            for row in rows.values():
                msg = email.message_from_bytes(row[b"BODY[]"], policy=email.policy.default)
                body = msg.get_body(("plain", "html"))
                texts.append(body.get_content() if body is not None else "")
        client.logout()
    fetched_at = time.perf_counter()
    for text in texts:
        nlp.make_doc(text)
    seconds = time.perf_counter() - began
    extra = {"s_fetch_parse": fetched_at - began, "s_tokenize": seconds - (fetched_at - began)}
    counts = {"fetched": len(texts), "text_chars": sum(len(t) for t in texts)}
    peak = _memory_mib("VmHWM")
    return asdict(ChildResult(seconds, len(texts), peak, start_mib, counts, extra))


CHILDREN = {"pipeline": child_pipeline, "baseline": child_baseline}


def run_child(kind: str, spec: dict[str, Any]) -> ChildResult:
    """Run one measurement in a fresh interpreter and read back its JSON line."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, json.dumps(spec)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return ChildResult(**json.loads(done.stdout.strip().splitlines()[-1]))


# --- the mailbox --------------------------------------------------------------------------------


def _maildir_name(i: int, data: bytes) -> str:
    """A Maildir file name carrying the physical (S=) and CRLF (W=) sizes Dovecot trusts."""
    virtual = len(data) + data.count(b"\n")
    return f"{1_764_000_000 + i}.M{i:06d}P1.bench,S={len(data)},W={virtual}:2,"


def _write_range(folder: str, seed: int, start: int, stop: int) -> str:
    """Write messages [start, stop) into ``folder``; returns their SHA-256 (run in a pool)."""
    digest = hashlib.sha256()
    stamp = NOW.timestamp() - 3600  # INTERNALDATE: an hour before the run, every time
    for i in range(start, stop):
        data = mailgen.message(seed, i).replace(b"\r\n", b"\n")
        digest.update(data)
        path = Path(folder) / _maildir_name(i, data)
        path.write_bytes(data)
        os.utime(path, (stamp, stamp))
        if os.geteuid() == 0:  # Dovecot's mail processes run as the dovecot user
            shutil.chown(path, "dovecot", "dovecot")
    return digest.hexdigest()


def write_template(base: Path, n: int, seed: int) -> tuple[Path, str]:
    """Write N messages (LF line endings) once, on every core; returns the folder and a
    SHA-256 over the chunks' digests (the same for the same N and seed)."""
    from concurrent.futures import ProcessPoolExecutor

    folder = base / "bench-templates" / f"n{n}"
    folder.mkdir(parents=True)
    step = 2000
    starts = range(0, n, step)
    with ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        parts = pool.map(_write_range, [str(folder)] * len(starts), [seed] * len(starts),
                         starts, [min(n, a + step) for a in starts])  # fmt: skip
        digest = hashlib.sha256("".join(parts).encode()).hexdigest()
    return folder, digest


def load_user(server: DovecotServer, template: Path, user: str) -> Mailbox:
    """A fresh user whose INBOX holds hard links to the template's files, indexed once.

    Dovecot never rewrites a Maildir file (flags live in the name), so links are a faithful,
    instant copy. The SELECT before the clock starts builds the index, as delivery would have.
    """
    owner = ("dovecot", "dovecot") if os.geteuid() == 0 else None
    home = server.base / "mail" / user
    for sub in ("", "cur", "new", "tmp"):
        (home / sub).mkdir(exist_ok=True)
        if owner:
            shutil.chown(home / sub, *owner)
    for path in template.iterdir():
        os.link(path, home / "cur" / path.name)
    with server.client(user) as client:
        client.select_folder("INBOX")
    return Mailbox(server, user)


# --- measuring ----------------------------------------------------------------------------------


def check_counts(result: ChildResult, n: int) -> str:
    """'ok', or what is wrong: all N fetched, each stored, a duplicate or quarantined.

    The synthetic mailbox holds only well-formed, distinct mail, so any quarantined message is
    reported too: it means a stage raised, and the rate then measures a failure path.
    """
    c = result.counts
    handled = c.get("stored", 0) + c.get("duplicates", 0) + c.get("quarantined", 0)
    if result.fetched != n or handled != n:
        return (
            f"MISMATCH (fetched {result.fetched}, stored+duplicates+quarantined {handled}, N {n})"
        )
    if c.get("quarantined", 0):
        return f"UNEXPECTED quarantined {c['quarantined']} (expected 0 on this mailbox)"
    return "ok"


MODES = ("pickup", "smtp")


def measure_pipeline(
    server: DovecotServer, template: Path, n: int, rep: int, mode: str, sink: Any, workers: int
) -> tuple[ChildResult, ChildResult]:
    """The first pass over a fresh copy of the mailbox, then the idle poll right after it."""
    user = f"pipe-{mode}-n{n}-r{rep}"
    load_user(server, template, user)
    spec = {"port": server.port, "user": user, "db": str(server.base / "stores" / f"{user}.db"),
            "outbox": str(server.base / "stores" / f"{user}-outbox"), "workers": workers,
            "smtp_port": sink.port if mode == "smtp" else 0}  # fmt: skip
    # Nothing is deleted until the benchmark ends (see dovecot()).
    first = run_child("pipeline", spec)
    idle = run_child("pipeline", spec)
    c = first.counts
    print(
        f"  rep {rep} {mode}: {first.fetched} in {first.seconds:.2f} s "
        f"({first.fetched / first.seconds:.0f}/s), peak {first.peak_mib:.0f} MiB "
        f"(at start {first.start_mib:.0f}); stored {c['stored']} acknowledged "
        f"{c['acknowledged']} suppressed {c['suppressed']} quarantined {c['quarantined']}: "
        f"{check_counts(first, n)}; stages {_stage_text(first)}"
    )
    print(f"  rep {rep} idle poll: {idle.seconds * 1000:.0f} ms, "
          f"{idle.extra['imap_commands']:.0f} IMAP commands after login")  # fmt: skip
    return first, idle


def _stage_text(result: ChildResult) -> str:
    return " ".join(f"{k}={v:,.0f}/s" for k, v in stage_rates(result).items())


def stage_rates(result: ChildResult) -> dict[str, float]:
    """Messages per second of each stage on its own (its seconds, summed over workers)."""
    e, c = result.extra, result.counts
    rates = {}
    for stage in ("fetch", "parse", "clean", "tag", "store"):
        if e.get(f"s_{stage}"):
            rates[stage] = e.get(f"n_{stage}", 0) / e[f"s_{stage}"]
    if e.get("s_acknowledge"):
        rates["acknowledge"] = (c["acknowledged"] + c["suppressed"]) / e["s_acknowledge"]
    return rates


def measure_baseline(server: DovecotServer, template: Path, n: int, rep: int) -> ChildResult:
    """The limit, on its own fresh copy of the mailbox."""
    user = f"base-n{n}-r{rep}"
    load_user(server, template, user)
    result = run_child("baseline", {"port": server.port, "user": user})
    e = result.extra
    print(
        f"  rep {rep} limit: {result.fetched} in {result.seconds:.2f} s "
        f"({result.fetched / result.seconds:.0f}/s; fetch+parse "
        f"{result.fetched / e['s_fetch_parse']:.0f}/s, tokenizer "
        f"{result.fetched / e['s_tokenize']:.0f}/s), peak {result.peak_mib:.0f} MiB"
    )
    return result


def measure_size(
    server: DovecotServer, n: int, args: argparse.Namespace, sink: Any
) -> tuple[Row, list[str]]:
    """Medians over ``repeat`` runs at size N (one run from ``--single-from`` up), and problems."""
    began = time.perf_counter()
    template, digest = write_template(server.base, n, args.seed)
    print(f"N={n}: mailbox written in {time.perf_counter() - began:.1f} s "
          f"(sha256 {digest[:16]}, {_folder_mib(template):.1f} MiB)", flush=True)  # fmt: skip
    repeat = 1 if 0 < args.single_from <= n else args.repeat
    runs: dict[str, list[tuple[ChildResult, ChildResult]]] = {m: [] for m in MODES}
    bases, problems = [], []
    for rep in range(1, repeat + 1):
        for mode in MODES:
            runs[mode].append(measure_pipeline(server, template, n, rep, mode, sink, args.workers))
            problems += [f"N={n} {mode} rep {rep}: {v}"
                         for v in [check_counts(runs[mode][-1][0], n)] if v != "ok"]  # fmt: skip
        bases.append(measure_baseline(server, template, n, rep))
    return summarise(n, runs, bases, repeat), problems


def _folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir()) / 2**20


def summarise(
    n: int, runs: dict[str, list[tuple[ChildResult, ChildResult]]], bases: list[ChildResult],
    repeat: int,
) -> Row:  # fmt: skip
    """The medians of one size's runs."""
    med = statistics.median
    pickup = [first for first, _ in runs["pickup"]]
    idles = [idle for _, idle in runs["pickup"] + runs["smtp"]]
    stages = {k: med(stage_rates(r).get(k, 0.0) for r in pickup) for k in stage_rates(pickup[0])}
    return Row(
        n=n,
        pickup_rate=med(r.fetched / r.seconds for r in pickup),
        smtp_rate=med(r.fetched / r.seconds for r, _ in runs["smtp"]),
        limit_rate=med(r.fetched / r.seconds for r in bases),
        fetch_parse_rate=med(r.fetched / r.extra["s_fetch_parse"] for r in bases),
        tokenizer_rate=med(r.fetched / r.extra["s_tokenize"] for r in bases),
        pipeline_mib=med(r.peak_mib for r, _ in runs["pickup"] + runs["smtp"]),
        limit_mib=med(r.peak_mib for r in bases),
        idle_ms=med(r.seconds * 1000 for r in idles),
        idle_round_trips=med(r.extra["imap_commands"] for r in idles),
        stages=stages,
        repeats=repeat,
    )


def profile_size(server: DovecotServer, n: int, seed: int, workers: int) -> None:
    """One pipeline pass under cProfile; prints the top entries by cumulative and own time.

    cProfile sees only the pipeline's own process: ``workers`` 0 profiles everything in it,
    1 or more only what stays there (fetching, storing, sending).
    """
    template, _ = write_template(server.base, n, seed)
    user = f"prof-n{n}"
    load_user(server, template, user)
    out = server.base / "stores" / f"{user}.prof"
    spec = {
        "port": server.port,
        "user": user,
        "db": str(server.base / "stores" / f"{user}.db"),
        "outbox": str(server.base / "stores" / f"{user}-outbox"),
        "workers": workers,
        "profile": str(out),
    }
    result = run_child("pipeline", spec)
    print(
        f"N={n}: {result.fetched} messages in {result.seconds:.2f} s under cProfile "
        f"({result.fetched / result.seconds:.0f}/s; profiling slows it down); "
        f"counts {check_counts(result, n)}\n"
    )
    stats = pstats.Stats(str(out), stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)


# --- reporting ----------------------------------------------------------------------------------


def file_creation(folder: Path, count: int = 500) -> str:
    """What creating a small file costs here, in the folder the pickup folders share: the
    pickup figures depend on it, and on some machines it varies tenfold from minute to minute.
    The files stay until the end, like everything else (deleting is what slows it down)."""
    folder.mkdir()
    began = time.perf_counter()
    for i in range(count):
        descriptor = os.open(folder / f"{i}.eml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(descriptor, b"x" * 3000)
        os.close(descriptor)
    return f"{(time.perf_counter() - began) / count * 1000:.3f} ms a 3 KB file (of {count})"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    from importlib.metadata import version

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    dovecot = subprocess.run(
        [shutil.which("dovecot") or "/usr/sbin/dovecot", "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    libs = ", ".join(
        f"{name} {version(name)}"
        for name in ("imapclient", "mail-parser", "inscriptis", "SQLAlchemy")
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, nproc {len(os.sched_getaffinity(0))}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "system": f"{platform.system()} {platform.release()}, Dovecot {dovecot}",
        "libraries": libs,
    }


def table(rows: Sequence[Row]) -> str:
    """The results as Markdown tables: end to end, then each stage on its own."""
    lines = [
        "| N | pickup msg/s | SMTP msg/s | limit msg/s | pickup/limit | peak RSS MiB "
        "| idle poll ms | idle round trips | runs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.n:,} | {r.pickup_rate:,.0f} | {r.smtp_rate:,.0f} | {r.limit_rate:,.0f} "
            f"| {r.pickup_rate / r.limit_rate:.2f} | {r.pipeline_mib:.0f} | {r.idle_ms:.0f} "
            f"| {r.idle_round_trips:.0f} | {r.repeats} |"
        )
    names = ("fetch", "parse", "clean", "tag", "store", "acknowledge")
    lines += ["", "| N | " + " | ".join(names) + " | limit: fetch+parse | limit: tokenizer |",
              "|---:|" + "---:|" * (len(names) + 2)]  # fmt: skip
    for r in rows:
        cells = " | ".join(f"{r.stages.get(k, 0):,.0f}" for k in names)
        lines.append(f"| {r.n:,} | {cells} | {r.fetch_parse_rate:,.0f} "
                     f"| {r.tokenizer_rate:,.0f} |")  # fmt: skip
    return "\n".join(lines)


def markdown(rows: Sequence[Row], info: dict[str, str], command: str, notes: Sequence[str]) -> str:
    """The section written to ``bench/RESULTS.md``."""
    head = [f"## Pipeline benchmark, {info['date']}", ""]
    head += [f"- **{key}**: {value}" for key, value in info.items() if key != "date"]
    head += [f"- **command**: `{command}`", "", table(rows), ""]
    return "\n".join(head + list(notes)) + "\n"


NOTES = (
    "Medians of the runs (the runs column says how many). Each figure comes from a fresh "
    "subprocess; "
    "msg/s is messages fetched over the wall time of `run_once` (imports and mailbox loading "
    "excluded, starting the parse/tag worker included); peak RSS is the highest sum of the "
    "resident memory of the pipeline process and its worker processes, sampled every 50 ms.",
    "",
    "- **pickup**: `story_intake.pipeline.run_once` against a fresh Dovecot user (same mail) and a "
    "fresh SQLite store: fetch, parse, clean, tag, store, mark `$Triaged`, decide and write "
    "every acknowledgement to the pickup folder (hourly cap lifted for the benchmark).",
    "- **SMTP**: the same, acknowledgements sent to an aiosmtpd server on loopback over one "
    "connection.",
    "- **stages**: messages per second of each stage on its own: its seconds summed (parse, "
    "clean and tag in the worker processes), not the wall time. parse includes clean; fetch is "
    "the time the run loop waited for the next batch; acknowledge is deciding and sending, "
    "per message stored (replies go out after each batch while the worker tags the next).",
    "- **limit**: imapclient `FETCH BODY.PEEK[]` in batches of 100, stdlib "
    "`email.message_from_bytes(policy=default)`, `get_body(('plain', 'html')).get_content()`, "
    "then `spacy.blank('en')`'s tokenizer over those texts; one process, nothing stored (it "
    "keeps the texts to time the tokenizer apart, so its own memory grows with N).",
    "- **idle poll**: a second `run_once` straight after the first, in a fresh process: "
    "connect, log in, select, nothing new, log out. Round trips are IMAP commands sent after "
    "LOGIN.",
    "- Files: Dovecot's under /tmp, the store and pickup folder under the project's var/ "
    "(the defaults' place); nothing is deleted until the benchmark ends: on this machine's ext4 "
    "(no journal) creating a file costs ten times as much for one to five minutes after "
    "thousands near it were deleted (the file creation line above measures it at the start).",
    "- Mailbox: `bench/mailgen.py`, seeded; 40 % plain, 20 % plain+HTML, 10 % "
    "quoted-printable, 10 % with a 1-16 KiB attachment, 15 % replies with quoted history, "
    "5 % auto-replies and bounces; 200-800 words per story.",
)


# --- command line -------------------------------------------------------------------------------


@contextlib.contextmanager
def dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot on a free loopback port, stopped and deleted whatever happens."""
    server = DovecotServer()
    # Mailboxes, stores and pickup folders are all deleted here, at the end, never between
    # runs: on the machine in bench/RESULTS.md (ext4 without a journal), for one to five
    # minutes after thousands of files are deleted, creating a file near them costs 0.2-0.8 ms
    # of kernel time instead of 0.02-0.05: the inode allocator steps over every recently
    # deleted inode (ext4's recently_deleted(), no-journal mode only), and the next run's
    # pickup folder would pay for the last run's clean-up. The stores and pickup folders live
    # where the pipeline's defaults put them, under the project's var/.
    (ROOT / "var").mkdir(exist_ok=True)
    stores = Path(tempfile.mkdtemp(prefix="bench-", dir=ROOT / "var"))
    try:
        server.start()
        (server.base / "stores").symlink_to(stores, target_is_directory=True)
        yield server
    finally:
        server.remove()
        shutil.rmtree(stores, ignore_errors=True)


class CountingSink:
    """An aiosmtpd handler that accepts every message and only counts them."""

    def __init__(self) -> None:
        self.port = 0
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 2.0.0 Message accepted"


@contextlib.contextmanager
def smtp_sink() -> Iterator[CountingSink]:
    """A counting SMTP server on a free loopback port."""
    from aiosmtpd.controller import Controller
    from conftest import free_port

    sink = CountingSink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def benchmark(args: argparse.Namespace, command: str) -> int:
    """Measure every size, print the table, write RESULTS.md; 1 when counts did not add up."""
    info = machine()
    print("\n".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    rows, problems = [], []
    with dovecot() as server, smtp_sink() as sink:
        info["file creation"] = file_creation(server.base / "stores" / "probe")
        print(f"file creation: {info['file creation']}", flush=True)
        for n in args.sizes:
            row, found = measure_size(server, n, args, sink)
            rows.append(row)
            problems += found
            print("\n" + table(rows), flush=True)
    notes = [*NOTES, f"- Worker processes for parsing and tagging: {args.workers}."]
    notes += [f"- **count check failed**: {p}" for p in problems]
    print("\n" + table(rows))
    RESULTS.write_text(markdown(rows, info, command, notes))
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    for problem in problems:
        print(f"count check failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000],
                        metavar="N")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median reported)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic mailbox")
    parser.add_argument("--single-from", type=int, default=0, metavar="N",
                        help="sizes from N up run once, not --repeat times (0: none; the "
                             "issue asks for medians of three runs at every size)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="[intake] workers for the runs")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: one pipeline run per size under cProfile (--workers 0: parse and tag too)",
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    return parser


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the finally blocks: Dovecot and temp dirs go


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden ``--child``, one measurement)."""
    args = _parser().parse_args(argv)
    if args.child:
        kind, spec = args.child
        print(json.dumps(CHILDREN[kind](json.loads(spec))))
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    command = "python bench/intake_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.profile:
        with dovecot() as server:
            for n in args.sizes:
                profile_size(server, n, args.seed, args.workers)
        return 0
    return benchmark(args, command.strip())


if __name__ == "__main__":
    sys.exit(main())
