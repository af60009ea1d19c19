"""The parse+tag stages kept loaded between passes: the worker processes of ``[intake]
workers`` (each with its tagger), or the tagger in this process when ``workers = 0``.

Loading the tagger takes seconds (about 8 s for a worker process that imports spaCy on a busy
machine, 2 s in a process that has it imported), and with IMAP IDLE a pass starts
within milliseconds of an arrival: loading again on every pass was most of the time from
arrival to acknowledgement (issue 19). ``run`` opens one ``Warm`` for the worker's life and
hands it to every pass; ``once`` opens nothing and keeps today's behaviour (a pool for the pass).

What is kept is the model and the processes, never mail: each batch's raw bytes still go
through the staging folder and are let go of batch by batch (``story_intake.pool``). A worker
process that died between passes (killed, out of memory) leaves a broken pool, which the next
batch replaces. A model swapped in by housekeeping or ``train`` (``model_dir/current.json``,
``triage.tag.model_swap``) is seen at the next pass: what was kept is let go and loads again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from story_intake.pool_worker import load
from triage.tag.model_cache import POINTER, TRAINING_TIME, untrained
from triage.tag.rules import TagSettings

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger

log = logging.getLogger("story_intake")


class Processes:
    """The parse worker processes, started with the first batch and replaced when broken;
    shut down by ``close``. Used by one pass at a time."""

    def __init__(self, settings: TagSettings, workers: int) -> None:
        self.settings, self.workers = settings, workers
        self.starts = 0  # how many times the processes (and their taggers) were started
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> ProcessPoolExecutor:
        """The running pool, started if there is none (an idle poll starts nothing)."""
        # "spawn": a fork would copy this process's open IMAP and SQLite connections into
        # the workers.
        if self._pool is None:
            announce_training(self.settings)
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=load,
                                             initargs=(self.settings, os.getpid()))  # fmt: skip
            self.starts += 1
            log.info("tagger loading in %d parse worker process(es) (start %d)", self.workers,
                     self.starts)  # fmt: skip
        return self._pool

    def discard(self, pool: ProcessPoolExecutor) -> None:
        """Shut a broken pool down; the next ``start`` makes a new one (once per breakage: a
        pool already replaced is left alone)."""
        if pool is self._pool:
            self.close()

    def close(self) -> None:
        """Shut the processes down, dropping what has not started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class Warm:
    """What ``run`` keeps from one pass to the next: ``processes`` when ``workers`` > 0,
    else ``tagger`` once the first batch has loaded it."""

    def __init__(self, settings: TagSettings, workers: int) -> None:
        self.settings = settings
        self.processes = Processes(settings, workers) if workers > 0 else None
        self.tagger: Tagger | None = None
        self._swapped = swapped_model(settings)  # the pointer the kept tagger was loaded under

    def follow_swaps(self) -> bool:
        """Let go of the kept tagger (and its processes) when another model was swapped in
        since it was loaded; the next batch loads the new one. Returns whether it let go."""
        now = swapped_model(self.settings)
        if now == self._swapped:
            return False
        self._swapped = now
        if self.processes is not None:
            self.processes.close()
        self.tagger = None
        log.info("a retrained tagger was swapped in: loading it for the next batch")
        return True

    def __enter__(self) -> Warm:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.processes is not None:
            self.processes.close()
        self.tagger = None


def swapped_model(settings: TagSettings) -> bytes | None:
    """The model pointer's bytes (``model_dir/current.json``), or None without one: a
    different value means a different model is to be loaded."""
    try:
        return (Path(settings.model_dir) / POINTER).read_bytes()
    except OSError:
        return None


def announce_training(settings: TagSettings) -> None:
    """Say so when loading the tagger will train it first: the first pass with new training
    data otherwise sits silent for half a minute. Asked here, in the process that logs, not in
    a worker process, which has no log handlers (and each worker would say it again)."""
    pending = untrained(settings)
    if pending is not None:
        examples, path = pending
        log.info("training the tagger on %d examples before the first batch is tagged (once "
                 "for new training data, %s); later passes load it from %s",
                 examples, TRAINING_TIME, path)  # fmt: skip
