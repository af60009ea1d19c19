"""Intake benchmark: the pipeline's fetch -> parse -> store against a real Dovecot, and the limit.

For each mailbox size N it starts a private Dovecot (tests/conftest.py's ``DovecotServer``),
writes a reproducible synthetic mailbox (``bench/mailgen.py``) straight into fresh users'
Maildirs, and measures, each in a fresh subprocess (so peak RSS belongs to that run alone):

- pipeline: ``run_pipeline.run_once`` on a fresh store and a fresh copy of the mailbox;
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


@dataclass(frozen=True, slots=True)
class Row:
    """Medians for one mailbox size."""

    n: int
    pipeline_rate: float
    baseline_rate: float
    pipeline_mib: float
    baseline_mib: float
    idle_ms: float
    repeats: int


# --- measured children: each runs in its own process ------------------------------------------


def _memory_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmHWM = peak RSS, VmRSS = now) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child_settings(spec: dict[str, Any]) -> Any:
    """Settings for the pipeline: the bench user's INBOX and the store named in ``spec``."""
    from config.settings import Settings
    from intake.fetch import ImapSettings
    from intake.store import StoreSettings

    imap = ImapSettings(
        host="127.0.0.1",
        port=spec["port"],
        security="none",
        username=spec["user"],
        password_env="STORY_BENCH_IMAP_PASSWORD",
        password=PASSWORD,
        connect_timeout=10,
        read_timeout=120,
    )
    return Settings(mailbox=imap, store=StoreSettings(f"sqlite:///{spec['db']}"))


def child_pipeline(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``run_once`` (optionally under cProfile); imports happen before the clock starts."""
    from run_pipeline import run_once

    settings = _child_settings(spec)
    start_mib = _memory_mib("VmRSS")
    profiler = cProfile.Profile() if spec.get("profile") else None
    began = time.perf_counter()
    if profiler is not None:
        counts = profiler.runcall(run_once, settings, NOW)
    else:
        counts = run_once(settings, NOW)
    seconds = time.perf_counter() - began
    if profiler is not None:
        profiler.dump_stats(spec["profile"])
    result = ChildResult(seconds, counts.fetched, _memory_mib("VmHWM"), start_mib, asdict(counts))
    return asdict(result)


def child_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """The limit: FETCH BODY.PEEK[] in batches, stdlib parse, text body; nothing else."""
    from imapclient import IMAPClient

    start_mib = _memory_mib("VmRSS")
    began = time.perf_counter()
    chars = fetched = 0
    with IMAPClient("127.0.0.1", port=spec["port"], ssl=False, timeout=120) as client:
        client.login(spec["user"], PASSWORD)
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        for at in range(0, len(uids), BASELINE_BATCH):
            rows = client.fetch(uids[at : at + BASELINE_BATCH], ["BODY.PEEK[]"])
            for row in rows.values():
                msg = email.message_from_bytes(row[b"BODY[]"], policy=email.policy.default)
                body = msg.get_body(("plain", "html"))
                chars += len(body.get_content()) if body is not None else 0
                fetched += 1
        client.logout()
    seconds = time.perf_counter() - began
    counts = {"fetched": fetched, "text_chars": chars}
    return asdict(ChildResult(seconds, fetched, _memory_mib("VmHWM"), start_mib, counts))


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


def write_template(base: Path, n: int, seed: int) -> tuple[Path, str]:
    """Write N messages (LF line endings) once; returns the folder and a SHA-256 of the mail."""
    folder = base / "bench-templates" / f"n{n}"
    folder.mkdir(parents=True)
    digest = hashlib.sha256()
    for i in range(n):
        data = mailgen.message(seed, i).replace(b"\r\n", b"\n")
        digest.update(data)
        path = folder / _maildir_name(i, data)
        path.write_bytes(data)
        if os.geteuid() == 0:  # Dovecot's mail processes run as the dovecot user
            shutil.chown(path, "dovecot", "dovecot")
    return folder, digest.hexdigest()


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


def drop_user(server: DovecotServer, user: str) -> None:
    """Delete a user's mail and home once its measurements are done."""
    shutil.rmtree(server.base / "mail" / user, ignore_errors=True)
    shutil.rmtree(server.base / "home" / user, ignore_errors=True)


def append_rate(server: DovecotServer, seed: int, count: int = 300) -> float:
    """Messages/s of plain IMAP APPEND, one message per command (for the README's choice)."""
    messages = [mailgen.message(seed, i) for i in range(count)]
    began = time.perf_counter()
    Mailbox(server, "append-probe").append(*messages)
    rate = count / (time.perf_counter() - began)
    drop_user(server, "append-probe")
    return rate


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


def measure_pipeline(
    server: DovecotServer, template: Path, n: int, rep: int
) -> tuple[ChildResult, ChildResult]:
    """The first pass over a fresh copy of the mailbox, then the idle poll right after it."""
    user = f"pipe-n{n}-r{rep}"
    load_user(server, template, user)
    spec = {"port": server.port, "user": user, "db": str(server.base / "stores" / f"{user}.db")}
    try:
        first = run_child("pipeline", spec)
        idle = run_child("pipeline", spec)
    finally:
        drop_user(server, user)
    c = first.counts
    print(
        f"  rep {rep} pipeline: {first.fetched} in {first.seconds:.2f} s "
        f"({first.fetched / first.seconds:.0f}/s), peak {first.peak_mib:.0f} MiB "
        f"(at start {first.start_mib:.0f}); stored {c['stored']} duplicates "
        f"{c['duplicates']} quarantined {c['quarantined']} too_large {c['too_large']}: "
        f"{check_counts(first, n)}"
    )
    print(f"  rep {rep} idle poll: {idle.seconds * 1000:.0f} ms, fetched {idle.fetched}")
    return first, idle


def measure_baseline(server: DovecotServer, template: Path, n: int, rep: int) -> ChildResult:
    """The limit, on its own fresh copy of the mailbox."""
    user = f"base-n{n}-r{rep}"
    load_user(server, template, user)
    try:
        result = run_child("baseline", {"port": server.port, "user": user})
    finally:
        drop_user(server, user)
    print(
        f"  rep {rep} baseline: {result.fetched} in {result.seconds:.2f} s "
        f"({result.fetched / result.seconds:.0f}/s), peak {result.peak_mib:.0f} MiB "
        f"(at start {result.start_mib:.0f})"
    )
    return result


def measure_size(server: DovecotServer, n: int, seed: int, repeat: int) -> tuple[Row, list[str]]:
    """Medians over ``repeat`` runs at size N, and any count mismatches seen."""
    began = time.perf_counter()
    template, digest = write_template(server.base, n, seed)
    print(
        f"N={n}: mailbox written in {time.perf_counter() - began:.1f} s "
        f"(sha256 {digest[:16]}, {_folder_mib(template):.1f} MiB)"
    )
    pipes, idles, bases, problems = [], [], [], []
    for rep in range(1, repeat + 1):
        first, idle = measure_pipeline(server, template, n, rep)
        pipes.append(first)
        idles.append(idle)
        bases.append(measure_baseline(server, template, n, rep))
        problems += [f"N={n} rep {rep}: {v}" for v in [check_counts(first, n)] if v != "ok"]
        problems += [
            f"N={n} rep {rep}: baseline fetched {b.fetched}" for b in bases[-1:] if b.fetched != n
        ]
    shutil.rmtree(template)
    med = statistics.median
    row = Row(
        n,
        med(r.fetched / r.seconds for r in pipes),
        med(r.fetched / r.seconds for r in bases),
        med(r.peak_mib for r in pipes),
        med(r.peak_mib for r in bases),
        med(r.seconds * 1000 for r in idles),
        repeat,
    )
    return row, problems


def _folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir()) / 2**20


def profile_size(server: DovecotServer, n: int, seed: int) -> None:
    """One pipeline pass under cProfile; prints the top entries by cumulative and own time."""
    template, _ = write_template(server.base, n, seed)
    user = f"prof-n{n}"
    load_user(server, template, user)
    out = server.base / "stores" / f"{user}.prof"
    spec = {
        "port": server.port,
        "user": user,
        "db": str(server.base / "stores" / f"{user}.db"),
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
    drop_user(server, user)
    shutil.rmtree(template)


# --- reporting ----------------------------------------------------------------------------------


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
    """The results as a Markdown table."""
    lines = [
        "| N | pipeline msg/s | baseline msg/s | pipeline/baseline | pipeline peak RSS MiB "
        "| baseline peak RSS MiB | idle poll ms | runs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.n:,} | {r.pipeline_rate:,.0f} | {r.baseline_rate:,.0f} "
            f"| {r.pipeline_rate / r.baseline_rate:.2f} | {r.pipeline_mib:.0f} "
            f"| {r.baseline_mib:.0f} | {r.idle_ms:.0f} | {r.repeats} |"
        )
    return "\n".join(lines)


def markdown(rows: Sequence[Row], info: dict[str, str], command: str, notes: Sequence[str]) -> str:
    """The section written to ``bench/RESULTS.md``."""
    head = [f"## Intake benchmark, {info['date']}", ""]
    head += [f"- **{key}**: {value}" for key, value in info.items() if key != "date"]
    head += [f"- **command**: `{command}`", "", table(rows), ""]
    return "\n".join(head + list(notes)) + "\n"


NOTES = (
    "Medians of the runs. Each figure comes from a fresh subprocess; msg/s is messages fetched "
    "over the wall time of the measured call (imports and mailbox loading excluded); peak RSS "
    "is the child's VmHWM, interpreter and imports included.",
    "",
    "- **pipeline**: `run_pipeline.run_once` against a fresh Dovecot user (same mail) and a "
    "fresh SQLite store: fetch, parse, clean, store, mark `$Triaged`.",
    "- **baseline**: imapclient `FETCH BODY.PEEK[]` in batches of 100, stdlib "
    "`email.message_from_bytes(policy=default)`, `get_body(('plain', 'html')).get_content()`.",
    "- **idle poll**: a second `run_once` straight after the first, in a fresh process: "
    "connect, log in, select, search, nothing new.",
    "- Mailbox: `bench/mailgen.py`, seeded; 40 % plain, 20 % plain+HTML, 10 % "
    "quoted-printable, 10 % with a 1-16 KiB attachment, 15 % replies with quoted history, "
    "5 % auto-replies and bounces; 200-800 words per story.",
)


# --- command line -------------------------------------------------------------------------------


@contextlib.contextmanager
def dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot on a free loopback port, stopped and deleted whatever happens."""
    server = DovecotServer()
    try:
        server.start()
        (server.base / "stores").mkdir()
        yield server
    finally:
        server.remove()


def benchmark(args: argparse.Namespace, command: str) -> int:
    """Measure every size, print the table, write RESULTS.md; 1 when counts did not add up."""
    info = machine()
    print("\n".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    rows, problems = [], []
    with dovecot() as server:
        rate = append_rate(server, args.seed)
        print(f"IMAP APPEND (one per command): {rate:.0f} msg/s; loading writes Maildir files")
        for n in args.sizes:
            row, found = measure_size(server, n, args.seed, args.repeat)
            rows.append(row)
            problems += found
    notes = [
        *NOTES,
        f"- Loading by IMAP APPEND would run at {rate:.0f} msg/s here, so the "
        "mailbox is written straight into each user's Maildir (not timed).",
    ]
    notes += [f"- **count check failed**: {p}" for p in problems]
    print("\n" + table(rows))
    RESULTS.write_text(markdown(rows, info, command, notes))
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    for problem in problems:
        print(f"count check failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], metavar="N")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median reported)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic mailbox")
    parser.add_argument(
        "--profile", action="store_true", help="instead: one pipeline run per size under cProfile"
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
                profile_size(server, n, args.seed)
        return 0
    return benchmark(args, command.strip())


if __name__ == "__main__":
    sys.exit(main())
