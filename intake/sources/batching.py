"""Fetch stage, batch limits: where a batch closes, by count and by bytes. Stdlib only.

A batch is what one process holds of raw mail at a time, so it is bounded by the bytes it
holds as well as by its count: 100 messages with 20 MB attachments, each under
``max_message_bytes``, were 2 GB in one batch. A batch closes when the next message would take
it past ``batch_size`` messages or ``batch_bytes`` bytes; a message bigger than ``batch_bytes``
on its own is a batch of one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from intake.errors import ConfigError


def check_batch_limits(batch_size: int, batch_bytes: int) -> None:
    """ConfigError naming the ``[mailbox]`` key when a batch limit could never be met."""
    if batch_size < 1:
        raise ConfigError("mailbox.batch_size must be at least 1")
    if batch_bytes < 1:
        raise ConfigError("mailbox.batch_bytes must be at least 1")


@dataclass(slots=True)
class BatchLimit:
    """The batch being filled: how many messages and bytes it holds, and whether one more fits."""

    max_count: int
    max_bytes: int
    count: int = 0
    bytes: int = 0

    def fits(self, size: int) -> bool:
        """Whether a message of ``size`` bytes may join (an empty batch takes any message)."""
        if self.count == 0:
            return True
        return self.count < self.max_count and self.bytes + size <= self.max_bytes

    def add(self, size: int) -> None:
        """Count one more message of ``size`` bytes in."""
        self.count += 1
        self.bytes += size

    def restart(self) -> None:
        """Start an empty batch."""
        self.count = self.bytes = 0


def plan_batches(
    uids: Sequence[int], sizes: Mapping[int, int], default: int, limit: BatchLimit
) -> Iterator[list[int]]:
    """``uids`` cut into batches within ``limit``; a UID missing from ``sizes`` counts as
    ``default`` bytes (an upper bound the caller knows it is under)."""
    batch: list[int] = []
    limit.restart()
    for uid in uids:
        size = sizes.get(uid, default)
        if not limit.fits(size):
            yield batch
            batch = []
            limit.restart()
        batch.append(uid)
        limit.add(size)
    if batch:
        yield batch
