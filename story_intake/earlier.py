"""The texts of the earlier messages a reply names, for the clean stage (`intake.clean.earlier`
sets them aside when they are pasted without quote marks): the application's side, since
`intake` renders no templates and its parse stage has no store.

Two kinds of earlier message are known:
- one of our replies (`<ack-<digest>@our domain>`, see `triage.reply.render.message_id_for`):
  each reply template rendered with the parts that differ per story (name, reference, team
  address) left empty, so its fixed lines are what a pasted copy is matched against;
- the sender's own earlier story, by its Message-ID (the story_id): looked up here, in the
  process that fetches, before a batch goes to the parse workers (`Batch.earlier`). The lookup
  has a store connection of its own: the run's store belongs to the reply thread meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache

from intake.records import Batch
from intake.references import header_block, referenced_ids
from intake.store.engine import Store, StoreSettings
from triage.reply.render import SUBJECTS, TEMPLATES, make_environment, render_template
from triage.reply.settings import AcknowledgementSettings

# Our replies' Message-IDs: "ack-" and 24 hex digits of the story's digest (`our_message_id`).
_OUR_REPLY = re.compile(r"ack-[0-9a-f]{24}@")
_MAX_NAMED = 20  # Message-IDs looked up per message: the nearest of a long References chain


@dataclass(frozen=True, slots=True)
class Earlier:
    """The parse stage's `earlier`: given a sender and the Message-IDs their mail names, the
    texts of those earlier messages known here. Picklable: it goes to the parse workers."""

    stored: tuple[tuple[str, str, str], ...] = ()  # (story_id, sender address, text)

    def __call__(self, sender: str, message_ids: Sequence[str]) -> tuple[str, ...]:
        named = set(message_ids)
        # Only the sender's own stories: a Message-ID alone must not pull in someone else's.
        texts = [text for sid, who, text in self.stored if sid in named and who == sender]
        if any(_OUR_REPLY.match(message_id) for message_id in named):
            texts += reply_texts()
        return tuple(texts)


@cache
def reply_texts() -> tuple[str, ...]:
    """Every reply template's plain text with the per-story parts empty (rendered once per
    process: the templates ship with the program and do not change while it runs)."""
    env = make_environment(TEMPLATES)
    context = {"first_name": "", "reference": "", "team_name": "", "team_address": "",
               "help_text": AcknowledgementSettings().help_text, "urgent": True}  # fmt: skip
    return tuple(render_template(env, f"{name}.txt", context) for name in SUBJECTS)


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
        named -= {mid for mid in named if _OUR_REPLY.match(mid)}
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
