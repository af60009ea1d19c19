"""Where the per-message stages run: in this process, or in parse worker processes.

Part of the composition root with ``story_intake.pipeline`` (which wires it in). Parsing and
tagging are pure CPU work on one message at a time, so they can run in worker processes
(``[intake] workers``) while this process fetches the next batch, stores the last one and sends
acknowledgements. Results come back in batch order, so the store still commits batch after
batch, checkpoint by checkpoint.

Raw mail, at most one batch in any process (issue 17). With workers, each batch's bytes go to the
store's staging folder as soon as it is fetched (``intake.store.staging``) and this process lets
go of them before it fetches the next; a worker reads its batch from there by key, and the
batch commit reads each message back as it stores it. (Handing the bytes to the workers
instead kept two batches here, and ProcessPoolExecutor keeps every argument until its result
is back.) Without workers this process parses what it just fetched and commits it before the
next fetch: one batch too, without the extra write.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from intake.records import Batch, BatchOutcome, Processed, Quarantined, Staged, Story, Triage
from intake.store.engine import Store
from intake.store.staging import Staging
from intake.timing import StageTimer
from story_intake.stages import Results, process
from triage.tag.model_cache import TRAINING_TIME, untrained
from triage.tag.rules import TagSettings

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger

# The parser (mail-parser, lxml) and the tagger (spaCy) are imported where they are used, not
# here: with [intake] workers they live in the worker processes alone, and this process, which
# fetches, stores and sends, stays about 90 MiB smaller and starts a second sooner.

log = logging.getLogger("story_intake")
# What a worker sends back: indexes into its batch instead of the messages, for the quarantined
# messages too: (index, stage, reason, detail).
WorkerResult = tuple[
    list[tuple[int, Story, Triage]], list[tuple[int, str, str, str]], dict[str, float],
    dict[str, int],
]  # fmt: skip


def outcome(batch: Batch, results: Results) -> BatchOutcome:
    """A batch's checkpoint with what became of its messages."""
    done, failed = results
    return BatchOutcome(batch.last_uid, batch.remaining, tuple(done), tuple(failed))


class InProcess:
    """Parse and tag here, batch by batch; the tagger is loaded with the first batch, so a
    poll that finds nothing new stays cheap."""

    def __init__(self, settings: TagSettings, tagger: Tagger | None, timer: StageTimer) -> None:
        self._settings, self._tagger, self._timer = settings, tagger, timer

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, batches: Iterator[Batch]) -> Iterator[BatchOutcome]:
        """Each batch's outcome, in order."""
        from triage.tag.tagger import load_tagger

        for batch in batches:
            if self._tagger is None:
                announce_training(self._settings)
                self._tagger = load_tagger(self._settings)
            done = outcome(batch, process(batch.messages, self._tagger, self._timer))
            del batch  # only the outcome holds the raw bytes now: gone once it is committed
            yield done
            del done  # before the next batch is fetched, not after


class WorkerPool:
    """Parse and tag in ``workers`` processes, each loading the tagger once; batches are
    staged in ``store`` and handed out by key as they are fetched, and come back in order."""

    def __init__(
        self, settings: TagSettings, workers: int, timer: StageTimer, store: Store
    ) -> None:
        self._settings, self._workers, self._timer = settings, workers, timer
        self._staging = store.staging
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._discard(self._pool)

    def map(self, batches: Iterator[Batch]) -> Iterator[BatchOutcome]:
        """Each batch's outcome, in order. Two batches more than there are workers are in
        flight, so that a worker finishing one finds the next already waiting while this
        process stores and sends: one more would only hold more of the disk. Each is staged
        and let go of here before the next is fetched."""
        in_flight: deque[tuple[Batch, Sequence[Staged], ProcessPoolExecutor,
                               Future[WorkerResult]]] = deque()  # fmt: skip
        for batch in batches:
            with self._timer.stage("store"):
                handles = self._staging.stage(batch.messages)
            # The same batch without its bytes: the store has them now.
            batch = Batch((), batch.last_uid, batch.remaining)
            in_flight.append((batch, handles, *self._submit(handles)))
            del batch, handles
            if len(in_flight) > self._workers + 1:
                yield self._collect(*in_flight.popleft())
        while in_flight:
            yield self._collect(*in_flight.popleft())

    def _submit(
        self, handles: Sequence[Staged]
    ) -> tuple[ProcessPoolExecutor, Future[WorkerResult]]:
        pool = self._start()
        try:
            return pool, pool.submit(_work, tuple(handles))
        except BrokenProcessPool:  # a batch in flight killed a worker (see _collect)
            self._discard(pool)
            pool = self._start()
            return pool, pool.submit(_work, tuple(handles))

    def _start(self) -> ProcessPoolExecutor:
        # Started with the first batch (an idle poll starts nothing). "spawn": a fork would
        # copy this process's open IMAP and SQLite connections into the workers.
        if self._pool is None:
            announce_training(self._settings)
            context = multiprocessing.get_context("spawn")
            started = (self._settings, os.getpid(), str(self._staging.folder))
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=context, initializer=_load, initargs=started
            )
        return self._pool

    def _collect(
        self, batch: Batch, handles: Sequence[Staged], pool: ProcessPoolExecutor,
        future: Future[WorkerResult],
    ) -> BatchOutcome:  # fmt: skip
        began = time.perf_counter()
        try:
            result = future.result()
        except (BrokenProcessPool, CancelledError):
            # A worker died outright (a crash below Python, the kernel's out-of-memory killer)
            # and took its pool with every batch in it. Each such batch is done again, one
            # message at a time in a new pool: only a message that kills a worker on its own
            # is quarantined, and the run goes on instead of failing on it every time.
            self._discard(pool)
            return outcome(batch, self._one_at_a_time(handles))
        finally:
            self._timer.add("wait", time.perf_counter() - began)
        return outcome(batch, self._unpack(handles, result))

    def _unpack(self, handles: Sequence[Staged], result: WorkerResult) -> Results:
        indexed, failed, seconds, items = result
        self._timer.merge(seconds, items)
        return [Processed(handles[i], story, triage) for i, story, triage in indexed], [
            Quarantined(handles[i], *why) for i, *why in failed]  # fmt: skip

    def _one_at_a_time(self, handles: Sequence[Staged]) -> Results:
        done: list[Processed] = []
        failed: list[Quarantined] = []
        for handle in handles:
            pool, future = self._submit((handle,))
            try:
                result = future.result()
            except BrokenProcessPool:
                self._discard(pool)
                failed.append(Quarantined(handle, "worker", WORKER_DIED, ""))
                continue
            one_done, one_failed = self._unpack((handle,), result)
            done += one_done
            failed += one_failed
        return done, failed

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        """Shut a broken pool down; the next ``_start`` makes a new one (once per breakage:
        a pool already replaced is left alone)."""
        if pool is self._pool:
            pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


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


WORKER_DIED = "a worker process died on this message (a crash below Python, or out of memory)"
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
# The worker process's tagger and where its batches wait, set once by the pool's initializer:
# the state a worker keeps between batches (loading the model takes seconds).
_worker_tagger: list[Tagger] = []
_worker_staging: list[Staging] = []


def _load(settings: TagSettings, parent: int, folder: str) -> None:
    from triage.tag.tagger import load_tagger

    _die_with(parent)
    _worker_staging.append(Staging(Path(folder)))
    _worker_tagger.append(load_tagger(settings))


def _die_with(parent: int) -> None:
    """End this worker when the process that started it dies, even by SIGKILL: an orphan
    would hold the model in memory and the parent's output pipes open."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(0)


def _work(handles: tuple[Staged, ...]) -> WorkerResult:
    timer = StageTimer()
    raws = _worker_staging[0].read(handles)
    done, failed = process(raws, _worker_tagger[0], timer)
    del raws  # this worker's one batch: gone before the next is read
    index = {handle.key: i for i, handle in enumerate(handles)}
    return ([(index[p.raw.key], p.story, p.triage) for p in done],
            [(index[q.raw.key], q.stage, q.reason, q.detail) for q in failed],
            timer.seconds, timer.items)  # fmt: skip


def open_stages(
    settings: TagSettings, workers: int, tagger: Tagger | None, timer: StageTimer, store: Store
) -> InProcess | WorkerPool:
    """Worker processes when ``workers`` > 0 and no tagger was handed in, else this process."""
    if workers > 0 and tagger is None:
        return WorkerPool(settings, workers, timer, store)
    return InProcess(settings, tagger, timer)
