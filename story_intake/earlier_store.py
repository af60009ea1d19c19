"""The stored stories a batch's messages answer, looked up in the process that fetches before the
batch goes to the parse workers (`Batch.earlier`, read by `story_intake.earlier.Earlier`).

Apart from `story_intake.earlier` so that the parse workers do not import the store. The
lookup has a store connection of its own: the run's store belongs to the reply thread while
the next batch is fetched (`triage.reply.sender`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from intake.records import Batch
from intake.references import header_block, referenced_ids
from intake.store.engine import Store, StoreSettings
from story_intake.earlier import OUR_REPLY

_MAX_NAMED = 20  # Message-IDs looked up per message: the nearest of a long References chain


class StoredStories:
    """Finds the stored stories each batch's messages answer and hands the batch on with them.
    Its store is opened on the first batch that names any Message-ID, and closed by `close`."""

    def __init__(self, settings: StoreSettings) -> None:
        self._settings = settings
        self._store: Store | None = None

    def attach(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """Each batch with ``earlier`` filled in."""
        for batch in batches:
            found = self._stored(batch)
            yield replace(batch, earlier=found) if found else batch
            del batch  # its raw bytes are not held here while the next batch is fetched

    def _stored(self, batch: Batch) -> tuple[tuple[str, str, str], ...]:
        named = {mid for raw in batch.messages for mid in _named(raw.data)}
        named -= {mid for mid in named if OUR_REPLY.match(mid)}
        if not named:
            return ()
        if self._store is None:
            self._store = Store(self._settings)
        return tuple(self._store.stories.texts_of(sorted(named)))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _named(data: bytes) -> list[str]:
    return referenced_ids(header_block(data))[-_MAX_NAMED:]
