"""What runs inside a parse worker process of ``story_intake.pool``: loading the tagger once
when the process starts, and parsing and tagging one staged batch at a time.

Part of the composition root (it imports ``intake`` and ``triage`` through ``stages``). A worker
process has no log handlers: what it has to say comes back in its results.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from intake.records import Staged, Story, Triage
from intake.store.staging import Staging
from intake.timing import StageTimer
from story_intake.earlier import Earlier
from story_intake.stages import process
from triage.tag.rules import TagSettings

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger

# What a worker sends back: indexes into its batch instead of the messages, for the quarantined
# messages too: (index, stage, reason, detail).
WorkerResult = tuple[
    list[tuple[int, Story, Triage]], list[tuple[int, str, str, str]], dict[str, float],
    dict[str, int],
]  # fmt: skip
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
# The worker process's tagger, set once by the pool's initializer: the state a worker keeps
# between batches, and between passes when ``run`` keeps the pool (loading takes seconds).
_worker_tagger: list[Tagger] = []


def load(settings: TagSettings, parent: int) -> None:
    """The pool's initializer: tie this process to its parent, then load the tagger."""
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


def work(folder: str, handles: tuple[Staged, ...], earlier: Earlier | None = None) -> WorkerResult:
    """Parse and tag the batch staged in ``folder`` under ``handles``. The folder comes with
    each batch, not once per process: a pool kept across passes outlives any one store.
    ``earlier``: the stored stories the batch answers (``Batch.earlier``)."""
    timer = StageTimer()
    raws = Staging(Path(folder)).read(handles)
    done, failed = process(raws, _worker_tagger[0], timer, earlier)
    del raws  # this worker's one batch: gone before the next is read
    index = {handle.key: i for i, handle in enumerate(handles)}
    return ([(index[p.raw.key], p.story, p.triage) for p in done],
            [(index[q.raw.key], q.stage, q.reason, q.detail) for q in failed],
            timer.seconds, timer.items)  # fmt: skip
