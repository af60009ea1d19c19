"""Arrival-to-acknowledgement latency of the worker (`story-intake run`) waiting with IMAP IDLE.

A private Dovecot (tests/conftest.py's ``DovecotServer``) and the real worker as a subprocess,
with ``poll_seconds = 300`` so that only IDLE explains a prompt reply. Messages are APPENDed one
at a time; each one's latency is from the end of its APPEND to its acknowledgement being
written: the .eml file's modification time in the pickup folder, or the moment the aiosmtpd
server accepted it (SMTP). One warm-up message first (the tagger's model is loaded on the
first batch). Prints p50, p95 and max per mode; never part of the test run.

    .venv/bin/python bench/idle_latency.py --messages 50 --modes pickup smtp --workers 1 0
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import (  # noqa: E402
    DovecotServer,
    Mailbox,
    SmtpSink,
    imap_config,
    start_pipeline,
    story_message,
)

POLL = 300
WAIT = 60.0  # seconds one acknowledgement may take before the run is called failed


class TimedSink(SmtpSink):
    """The test sink, noting when each message was accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted_at: list[float] = []
        self.on_message = lambda: self.accepted_at.append(time.time())


def listening(database: Path) -> bool:
    """Whether IDLE has started listening and the pass its start caused has finished."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT value FROM worker_state WHERE name = 'poll'").fetchone()
    except sqlite3.OperationalError:
        return False
    health = json.loads(row[0]) if row else {}
    woken = health.get("woken_at") or ""
    return bool(woken) and (health.get("last_attempt_at") or "") > woken


def wait(condition: Any, what: str, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


def measure(mode: str, messages: int, workers: int, server: DovecotServer) -> list[float]:
    """Latencies in seconds of ``messages`` acknowledgements in ``mode`` (pickup or smtp)."""
    folder = Path(tempfile.mkdtemp(prefix=f"idle-bench-{mode}-"))
    box = Mailbox(server, f"bench-{mode}-{workers}-{int(time.time())}")
    sink, controller = None, None
    if mode == "smtp":
        from aiosmtpd.controller import Controller

        sink = TimedSink()
        controller = Controller(sink, hostname=sink.host, port=sink.port)
        controller.start()
    config = imap_config(folder, box, smtp_port=sink.port if sink else 0, extra=(
        f'[intake]\nworkers = {workers}\n[acknowledgement]\nmax_per_hour = 100000\n'
        f'[digest]\noutput_dir = "{folder}/digests"\n'
        f'[schedule]\npoll_seconds = {POLL}\n'))  # fmt: skip
    worker = start_pipeline(config, "run")
    try:
        wait(lambda: listening(folder / "stories.db"), "IDLE listening")
        latencies = [_one(box, folder, sink, n) for n in range(messages + 1)][1:]  # warm-up
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
        if controller is not None:
            controller.stop()
    return latencies


def _one(box: Mailbox, folder: Path, sink: TimedSink | None, n: int) -> float:
    """APPEND message ``n`` and wait for its acknowledgement; the latency."""
    outbox = folder / "outbox"
    before = len(sink.accepted_at) if sink else len(list(outbox.glob("*.eml")))
    box.append(story_message(n, sender=f"Person {n} <person{n}@example.org>"))
    appended = time.time()
    if sink is not None:
        wait(lambda: len(sink.accepted_at) > before, f"acknowledgement {n}")
        return sink.accepted_at[before] - appended
    wait(lambda: len(list(outbox.glob("*.eml"))) > before, f"acknowledgement {n}")
    newest = max(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    return newest.stat().st_mtime - appended


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--modes", nargs="+", default=["pickup", "smtp"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    server = DovecotServer()
    server.start()
    try:
        print("| mode | [intake] workers | messages | p50 s | p95 s | max s |")
        print("|---|---:|---:|---:|---:|---:|")
        for mode in args.modes:
            for workers in args.workers:
                got = measure(mode, args.messages, workers, server)
                print(f"| {mode} | {workers} | {len(got)} | {statistics.median(got):.2f} | "
                      f"{percentile(got, 95):.2f} | {max(got):.2f} |", flush=True)  # fmt: skip
    finally:
        server.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
