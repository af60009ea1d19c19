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

The processes (or the tagger in this process) last one pass, or, in ``run``, the worker's
life (``story_intake.warm``): a pass then only hands them its batches.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import TYPE_CHECKING

from intake.records import Batch, BatchOutcome, Processed, Quarantined, Staged
from intake.store.engine import Store
from intake.timing import StageTimer
from story_intake.earlier import Earlier
from story_intake.pool_worker import WorkerResult, work
from story_intake.stages import Results, process
from story_intake.warm import Processes, Warm, announce_training
from triage.tag.rules import TagSettings

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger

# The parser (mail-parser, lxml) and the tagger (spaCy) are imported where they are used, not
# here: with [intake] workers they live in the worker processes alone, and this process, which
# fetches, stores and sends, stays about 90 MiB smaller and starts a second sooner.

log = logging.getLogger("story_intake")
# A batch handed to the worker processes: the batch without its bytes, their handles in the
# staging folder, the pool it went to and its result to come.
InFlight = tuple[Batch, Sequence[Staged], ProcessPoolExecutor, Future[WorkerResult]]


def outcome(batch: Batch, results: Results) -> BatchOutcome:
    """A batch's checkpoint with what became of its messages."""
    done, failed = results
    return BatchOutcome(batch.last_uid, batch.remaining, tuple(done), tuple(failed))


class InProcess:
    """Parse and tag here, batch by batch; the tagger is loaded with the first batch, so a
    poll that finds nothing new stays cheap. With ``kept`` (``run``), the tagger loaded by an
    earlier pass is used, and the one this pass loads is kept for the next."""

    def __init__(
        self, settings: TagSettings, tagger: Tagger | None, timer: StageTimer,
        kept: Warm | None = None,
    ) -> None:  # fmt: skip
        self._settings, self._timer, self._kept = settings, timer, kept
        self._tagger = tagger or (kept.tagger if kept is not None else None)

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
                log.info("tagger loaded in this process")
                if self._kept is not None:
                    self._kept.tagger = self._tagger
            earlier = Earlier(batch.earlier)
            done = outcome(batch, process(batch.messages, self._tagger, self._timer, earlier))
            del batch  # only the outcome holds the raw bytes now: gone once it is committed
            yield done
            del done  # before the next batch is fetched, not after


class WorkerPool:
    """Parse and tag in ``workers`` processes, each loading the tagger once; batches are
    staged in ``store`` and handed out by key as they are fetched, and come back in order.
    With ``kept`` (``run``: the processes of ``Warm``), the processes outlive this pass."""

    def __init__(
        self, settings: TagSettings, workers: int, timer: StageTimer, store: Store,
        kept: Processes | None = None,
    ) -> None:  # fmt: skip
        self._processes, self._owned = kept or Processes(settings, workers), kept is None
        self._timer, self._staging = timer, store.staging
        self._in_flight: deque[InFlight] = deque()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owned:
            self._processes.close()
            return
        # A pass that stopped (a signal, an error) with batches in flight: what has not started
        # is dropped, what has is waited for, so the next pass finds the processes free.
        futures = [future for *_, future in self._in_flight]
        for future in futures:
            future.cancel()
        wait(futures)
        self._in_flight.clear()

    def map(self, batches: Iterator[Batch]) -> Iterator[BatchOutcome]:
        """Each batch's outcome, in order. Two batches more than there are workers are in
        flight, so that a worker finishing one finds the next already waiting while this
        process stores and sends: one more would only hold more of the disk. Each is staged
        and let go of here before the next is fetched."""
        in_flight = self._in_flight
        for batch in batches:
            with self._timer.stage("store"):
                handles = self._staging.stage(batch.messages)
            # The same batch without its bytes: the store has them now.
            batch = Batch((), batch.last_uid, batch.remaining, batch.earlier)
            in_flight.append((batch, handles, *self._submit(handles, Earlier(batch.earlier))))
            del batch, handles
            if len(in_flight) > self._processes.workers + 1:
                yield self._collect(*in_flight.popleft())
        while in_flight:
            yield self._collect(*in_flight.popleft())

    def _submit(
        self, handles: Sequence[Staged], earlier: Earlier
    ) -> tuple[ProcessPoolExecutor, Future[WorkerResult]]:
        folder = str(self._staging.folder)
        pool = self._processes.start()
        try:
            return pool, pool.submit(work, folder, tuple(handles), earlier)
        except BrokenProcessPool:  # a worker died: on a batch in flight, or between passes
            self._processes.discard(pool)
            pool = self._processes.start()
            return pool, pool.submit(work, folder, tuple(handles), earlier)

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
            self._processes.discard(pool)
            return outcome(batch, self._one_at_a_time(handles, Earlier(batch.earlier)))
        finally:
            self._timer.add("wait", time.perf_counter() - began)
        return outcome(batch, self._unpack(handles, result))

    def _unpack(self, handles: Sequence[Staged], result: WorkerResult) -> Results:
        indexed, failed, seconds, items = result
        self._timer.merge(seconds, items)
        return [Processed(handles[i], story, triage) for i, story, triage in indexed], [
            Quarantined(handles[i], *why) for i, *why in failed]  # fmt: skip

    def _one_at_a_time(self, handles: Sequence[Staged], earlier: Earlier) -> Results:
        done: list[Processed] = []
        failed: list[Quarantined] = []
        for handle in handles:
            pool, future = self._submit((handle,), earlier)
            try:
                result = future.result()
            except BrokenProcessPool:
                self._processes.discard(pool)
                failed.append(Quarantined(handle, "worker", WORKER_DIED, ""))
                continue
            one_done, one_failed = self._unpack((handle,), result)
            done += one_done
            failed += one_failed
        return done, failed


WORKER_DIED = "a worker process died on this message (a crash below Python, or out of memory)"


def open_stages(
    settings: TagSettings, workers: int, tagger: Tagger | None, timer: StageTimer, store: Store,
    warm: Warm | None = None,
) -> InProcess | WorkerPool:  # fmt: skip
    """Worker processes when ``workers`` > 0 and no tagger was handed in, else this process;
    with ``warm`` (``run``), the processes or the tagger kept from earlier passes."""
    if tagger is not None:
        return InProcess(settings, tagger, timer)
    if warm is not None:
        if warm.processes is not None:
            return WorkerPool(settings, workers, timer, store, warm.processes)
        return InProcess(settings, None, timer, warm)
    if workers > 0:
        return WorkerPool(settings, workers, timer, store)
    return InProcess(settings, tagger, timer)
