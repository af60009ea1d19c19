"""The per-message stages, parse then tag, run in this process or in worker processes.

Part of the composition root with ``story_intake.pipeline`` (which wires it in): the only other
module that imports both ``intake`` and ``triage``. Parsing and tagging are pure CPU work on
one message at a time, so they can run in worker processes (``[intake] workers``) while this
process fetches the next batch, stores the last one and sends acknowledgements. Results come
back in batch order, so the store still commits batch after batch, checkpoint by checkpoint.
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
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from intake.records import Batch, Quarantined, RawMessage, Story, Triage
from intake.timing import StageTimer
from triage.tag.limit import fit_for_tagging
from triage.tag.model_cache import TRAINING_TIME, untrained
from triage.tag.rules import TagSettings

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger

# The parser (mail-parser, lxml) and the tagger (spaCy) are imported where they are used, not
# here: with [intake] workers they live in the worker processes alone, and this process, which
# fetches, stores and sends, stays about 90 MiB smaller and starts a second sooner.

log = logging.getLogger("story_intake")
In = TypeVar("In")
Out = TypeVar("Out")
Done = list[tuple[RawMessage, Story, Triage]]
Processed = tuple[Done, list[Quarantined]]
# What a worker sends back: indexes into its batch instead of the raw bytes (they stay here),
# for the quarantined messages too: (index, stage, reason, detail).
WorkerResult = tuple[
    list[tuple[int, Story, Triage]], list[tuple[int, str, str, str]], dict[str, float],
    dict[str, int],
]  # fmt: skip


def process(
    raws: Sequence[RawMessage], tagger: Tagger, timer: StageTimer | None = None
) -> Processed:
    """The per-message stages in order, parse then tag; a failure quarantines that message."""
    from triage.tag.tagger import tag_many

    timer = timer or StageTimer()
    with timer.stage("parse", len(raws)):
        stories, unparsed = run_stage("parse", [(raw, raw) for raw in raws],
                                      partial(_parse_each, timer=timer))  # fmt: skip
    # The stored story says when the tagger read only part of it.
    stories = [(raw, fit_for_tagging(story)) for raw, story in stories]
    with timer.stage("tag", len(stories)):
        triages, untagged = run_stage("tag", stories, partial(tag_many, tagger=tagger))
    story_of = {raw.key: story for raw, story in stories}
    done = [(raw, story_of[raw.key], triage) for raw, triage in triages]
    return done, unparsed + untagged


def _parse_each(raws: Sequence[RawMessage], timer: StageTimer) -> list[Story]:
    from intake.parse import parse

    return [parse(raw, timer) for raw in raws]


def run_stage(
    stage: str, items: Sequence[tuple[RawMessage, In]], handler: Callable[[list[In]], Sequence[Out]]
) -> tuple[list[tuple[RawMessage, Out]], list[Quarantined]]:
    """Apply a stage to a whole batch (spaCy is much faster on batches); if it fails, again item
    by item, so that only the message that breaks it is quarantined and the rest go on."""
    done: list[tuple[RawMessage, Out]] = []
    failed: list[Quarantined] = []
    pending = deque([list(items)] if items else [])
    while pending:
        group = pending.popleft()
        try:
            outputs = handler([item for _, item in group])
        except Exception as err:  # the one broad except: quarantine, never lose, never crash
            if len(group) > 1:
                pending.extendleft(reversed([[one] for one in group]))
                continue
            reason = f"{type(err).__name__}: {err}"[:500]
            failed.append(Quarantined(group[0][0], stage, reason, traceback.format_exc(limit=20)))
            continue
        done.extend((raw, out) for (raw, _), out in zip(group, outputs, strict=True))
    return done, failed


class InProcess:
    """Parse and tag here, batch by batch; the tagger is loaded with the first batch, so a
    poll that finds nothing new stays cheap."""

    def __init__(self, settings: TagSettings, tagger: Tagger | None, timer: StageTimer) -> None:
        self._settings, self._tagger, self._timer = settings, tagger, timer

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, batches: Iterator[Batch]) -> Iterator[tuple[Batch, Processed]]:
        """Each batch with its parsed and tagged messages, in order."""
        from triage.tag.tagger import load_tagger

        for batch in batches:
            if self._tagger is None:
                announce_training(self._settings)
                self._tagger = load_tagger(self._settings)
            yield batch, process(batch.messages, self._tagger, self._timer)
            del batch  # its raw bytes go before the next batch is fetched, not after


class WorkerPool:
    """Parse and tag in ``workers`` processes, each loading the tagger once; batches are
    handed out as they are fetched and come back in order."""

    def __init__(
        self, settings: TagSettings, workers: int, timer: StageTimer, max_bytes: int
    ) -> None:
        self._settings, self._workers, self._timer = settings, workers, timer
        self._max_bytes = max_bytes
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._discard(self._pool)

    def map(self, batches: Iterator[Batch]) -> Iterator[tuple[Batch, Processed]]:
        """Each batch with its parsed and tagged messages, in order. Two batches more than
        there are workers are in flight, so that a worker finishing one finds the next already
        waiting while this process stores and sends: one more would only hold more memory.
        And no more than ``max_bytes`` of raw mail: a batch that would take the batches in
        flight past it waits until the oldest are back, so this process holds at most two
        batches' bytes (those just back, the next just fetched). It is handed to the workers
        before those are stored, so the worker parses while this process stores."""
        in_flight: deque[tuple[Batch, ProcessPoolExecutor, Future[WorkerResult]]] = deque()
        for batch in batches:
            ready = []
            while in_flight and _bytes(batch) + sum(_bytes(b) for b, *_ in in_flight) > (
                self._max_bytes
            ):  # fmt: skip
                ready.append(self._collect(*in_flight.popleft()))
            in_flight.append((batch, *self._submit(batch.messages)))
            del batch  # held by in_flight alone: gone as soon as it is collected
            if len(in_flight) > self._workers + 1:
                ready.append(self._collect(*in_flight.popleft()))
            while ready:  # popped, not iterated: each is let go once it is stored
                yield ready.pop(0)
        while in_flight:
            yield self._collect(*in_flight.popleft())

    def _submit(
        self, raws: tuple[RawMessage, ...]
    ) -> tuple[ProcessPoolExecutor, Future[WorkerResult]]:
        pool = self._start()
        try:
            return pool, pool.submit(_work, raws)
        except BrokenProcessPool:  # a batch in flight killed a worker (see _collect)
            self._discard(pool)
            pool = self._start()
            return pool, pool.submit(_work, raws)

    def _start(self) -> ProcessPoolExecutor:
        # Started with the first batch (an idle poll starts nothing). "spawn": a fork would
        # copy this process's open IMAP and SQLite connections into the workers.
        if self._pool is None:
            announce_training(self._settings)
            context = multiprocessing.get_context("spawn")
            started = (self._settings, os.getpid())
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=context, initializer=_load, initargs=started
            )
        return self._pool

    def _collect(
        self, batch: Batch, pool: ProcessPoolExecutor, future: Future[WorkerResult]
    ) -> tuple[Batch, Processed]:
        began = time.perf_counter()
        try:
            result = future.result()
        except (BrokenProcessPool, CancelledError):
            # A worker died outright (a crash below Python, the kernel's out-of-memory killer)
            # and took its pool with every batch in it. Each such batch is done again, one
            # message at a time in a new pool: only a message that kills a worker on its own
            # is quarantined, and the run goes on instead of failing on it every time.
            self._discard(pool)
            return batch, self._one_at_a_time(batch)
        finally:
            self._timer.add("wait", time.perf_counter() - began)
        return batch, self._unpack(batch.messages, result)

    def _unpack(self, raws: Sequence[RawMessage], result: WorkerResult) -> Processed:
        indexed, failed, seconds, items = result
        self._timer.merge(seconds, items)
        return [(raws[i], story, triage) for i, story, triage in indexed], [
            Quarantined(raws[i], *why) for i, *why in failed]  # fmt: skip

    def _one_at_a_time(self, batch: Batch) -> Processed:
        done: Done = []
        failed: list[Quarantined] = []
        for raw in batch.messages:
            pool, future = self._submit((raw,))
            try:
                result = future.result()
            except BrokenProcessPool:
                self._discard(pool)
                failed.append(Quarantined(raw, "worker", WORKER_DIED, ""))
                continue
            one_done, one_failed = self._unpack((raw,), result)
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
# The worker process's tagger, loaded once by the pool's initializer: the one piece of state
# a worker keeps between batches (loading the model takes seconds).
_worker_tagger: list[Tagger] = []


def _load(settings: TagSettings, parent: int) -> None:
    from triage.tag.tagger import load_tagger

    _die_with(parent)
    _worker_tagger.append(load_tagger(settings))


def _die_with(parent: int) -> None:
    """End this worker when the process that started it dies, even by SIGKILL: an orphan
    would hold the model in memory and the parent's output pipes open."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(0)


def _work(raws: tuple[RawMessage, ...]) -> WorkerResult:
    timer = StageTimer()
    done, failed = process(raws, _worker_tagger[0], timer)
    index = {raw.key: i for i, raw in enumerate(raws)}
    return ([(index[raw.key], story, triage) for raw, story, triage in done],
            [(index[q.raw.key], q.stage, q.reason, q.detail) for q in failed],
            timer.seconds, timer.items)  # fmt: skip


def _bytes(batch: Batch) -> int:
    return sum(len(raw.data) for raw in batch.messages)


def open_stages(
    settings: TagSettings, workers: int, tagger: Tagger | None, timer: StageTimer,
    max_bytes: int,
) -> InProcess | WorkerPool:  # fmt: skip
    """Worker processes when ``workers`` > 0 and no tagger was handed in, else this process;
    ``max_bytes`` bounds the raw mail in the workers' hands at once (``[mailbox] batch_bytes``)."""
    if workers > 0 and tagger is None:
        return WorkerPool(settings, workers, timer, max_bytes)
    return InProcess(settings, tagger, timer)
