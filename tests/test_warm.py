"""The worker keeps its parse+tag processes (and their tagger) loaded between passes (issue
19): the real worker process against Dovecot and aiosmtpd, woken by IMAP IDLE, with a poll
interval so long that only IDLE explains a pass; a pool process killed between passes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conftest import Mailbox, SmtpSink, start_pipeline, story_message, wait_for
from test_idle import acks, idle_worker, listening_since, stop_worker

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger  # trained once (the worker's processes load it)

LOADING = "tagger loading in 1 parse worker process(es)"


def pool_children(parent: int) -> list[int]:
    """The parse worker processes of ``parent`` (spawned, not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def loads(err: str) -> int:
    return sum(LOADING in json.loads(line).get("message", "") for line in err.splitlines()
               if line.startswith("{"))  # fmt: skip


def warm_worker(tmp_path: Path, box: Mailbox, sink: SmtpSink) -> subprocess.Popen[str]:
    """``run`` with one parse worker process, once IDLE listens and its first pass is done."""
    config = idle_worker(tmp_path, box, sink, "[intake]\nworkers = 1\n")
    worker = start_pipeline(config, "--log-format", "json", "run")
    wait_for(lambda: bool(listening_since(tmp_path / "stories.db")), 60, "IDLE listening")
    return worker


def status(tmp_path: Path) -> dict[str, Any]:
    shown = start_pipeline(tmp_path / "pipeline.toml", "status")
    out, err = shown.communicate(timeout=60)
    assert shown.returncode == 0, err
    return dict(json.loads(out))


def test_warm_worker_keeps_its_parse_process_and_tagger_between_passes(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger
) -> None:
    worker = warm_worker(tmp_path, mailbox, smtp_sink)
    try:
        mailbox.append(story_message(1, sender="Sam Example <sam@example.org>"))
        wait_for(lambda: acks(smtp_sink) == 1, 90, "the first acknowledgement")
        (child,) = pool_children(worker.pid)  # still there after its pass
        mailbox.append(story_message(2, sender="Alex Example <alex@example.net>"))
        wait_for(lambda: acks(smtp_sink) == 2, 60, "the second acknowledgement")
        assert pool_children(worker.pid) == [child]  # the same process did the second pass
        code, err = stop_worker(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, err[-2000:]
    assert loads(err) == 1, err[-2000:]
    assert not pool_children(worker.pid)  # the pool is shut down with the worker


def test_warm_worker_replaces_a_parse_process_killed_between_passes(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger
) -> None:
    worker = warm_worker(tmp_path, mailbox, smtp_sink)
    try:
        mailbox.append(story_message(3))
        wait_for(lambda: acks(smtp_sink) == 1, 90, "the first acknowledgement")
        (child,) = pool_children(worker.pid)
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: not pool_children(worker.pid), 10, "the killed process gone")
        mailbox.append(story_message(4))
        wait_for(lambda: acks(smtp_sink) == 2, 90, "the acknowledgement from a new process")
        (replacement,) = pool_children(worker.pid)
        assert replacement != child
        mailbox.append(story_message(5))  # and the new process is kept in turn
        wait_for(lambda: acks(smtp_sink) == 3, 60, "the third acknowledgement")
        assert pool_children(worker.pid) == [replacement]
        code, err = stop_worker(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, err[-2000:]
    assert loads(err) == 2, err[-2000:]
    shown = status(tmp_path)  # the killed process cost no message
    assert shown["stories"] == 3 and shown["quarantined"] == 0


def test_warm_worker_without_worker_processes_loads_the_tagger_once(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink, tagger: Tagger
) -> None:
    config = idle_worker(tmp_path, mailbox, smtp_sink, "[intake]\nworkers = 0\n")
    worker = start_pipeline(config, "--log-format", "json", "run")
    try:
        wait_for(lambda: bool(listening_since(tmp_path / "stories.db")), 60, "IDLE listening")
        mailbox.append(story_message(6))
        wait_for(lambda: acks(smtp_sink) == 1, 60, "the first acknowledgement")
        mailbox.append(story_message(7))  # a second pass, after the first has acknowledged
        wait_for(lambda: acks(smtp_sink) == 2, 60, "the second acknowledgement")
        code, err = stop_worker(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, err[-2000:]
    loaded = [line for line in err.splitlines() if "tagger loaded in this process" in line]
    assert len(loaded) == 1, err[-2000:]
    assert not pool_children(worker.pid)


def test_warm_lets_go_of_the_kept_tagger_when_a_retrained_model_is_swapped_in(
    tmp_path: Path,
) -> None:
    """Housekeeping swaps a retrained model in by replacing model_dir/current.json: the
    worker's kept tagger must not outlive it (the next batch loads the new model)."""
    import dataclasses

    from story_intake.warm import Warm
    from triage.tag.model_cache import POINTER
    from triage.tag.rules import TagSettings

    settings = dataclasses.replace(TagSettings(themes=()), model_dir=str(tmp_path))
    warm = Warm(settings, workers=0)
    kept = object()
    warm.tagger = kept  # type: ignore[assignment]  # stands for a loaded tagger
    assert not warm.follow_swaps() and warm.tagger is kept  # nothing swapped: kept
    (tmp_path / POINTER).write_text('{"key": "0123456789abcdef"}')
    assert warm.follow_swaps() and warm.tagger is None  # swapped in: let go
    warm.tagger = kept  # type: ignore[assignment]
    assert not warm.follow_swaps() and warm.tagger is kept  # loaded under the new pointer
