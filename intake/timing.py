"""Where a pass spends its time: seconds and messages per stage. Stdlib only.

Only durations and counts, never anything about a message: the figures go to the benchmark
and to the per-batch log line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

STAGES = ("fetch", "parse", "clean", "tag", "store", "mark", "acknowledge")


class StageTimer:
    """Seconds spent in each stage and how many items went through it, added up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.items: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str, items: int = 0) -> Iterator[None]:
        """Time the block as (part of) stage ``name``, which handled ``items`` items."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - began, items)

    def add(self, name: str, seconds: float, items: int = 0) -> None:
        """Count ``seconds`` and ``items`` towards stage ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.items[name] = self.items.get(name, 0) + items

    def merge(self, seconds: Mapping[str, float], items: Mapping[str, int]) -> None:
        """Add figures measured elsewhere (a worker process)."""
        for name, value in seconds.items():
            self.add(name, value, items.get(name, 0))
