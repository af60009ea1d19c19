"""The per-message stages, parse then tag, on a batch of raw messages in whichever process runs
them (this one, or a parse worker of ``story_intake.pool``).

Part of the composition root: it imports both ``intake`` and ``triage``. A stage that fails on a
message quarantines that message alone; the rest go on.
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from intake.records import Processed, Quarantined, RawMessage, Story
from intake.timing import StageTimer
from story_intake.earlier import Earlier
from triage.tag.limit import fit_for_tagging

if TYPE_CHECKING:
    from triage.tag.tagger import Tagger

In = TypeVar("In")
Out = TypeVar("Out")
# What the stages make of a batch: the messages that went through, those quarantined.
Results = tuple[list[Processed], list[Quarantined]]


def process(
    raws: Sequence[RawMessage], tagger: Tagger, timer: StageTimer | None = None,
    earlier: Earlier | None = None,
) -> Results:  # fmt: skip
    """The per-message stages in order, parse then tag; a failure quarantines that message.
    ``earlier``: the stored stories the batch answers (``story_intake.earlier``)."""
    from triage.tag.tagger import tag_many

    timer = timer or StageTimer()
    parse_each = partial(_parse_each, timer=timer, earlier=earlier or Earlier())
    with timer.stage("parse", len(raws)):
        stories, unparsed = run_stage("parse", [(raw, raw) for raw in raws], parse_each)
    # The stored story says when the tagger read only part of it.
    fitted = [(raw, fit_for_tagging(story)) for raw, story in stories]
    with timer.stage("tag", len(fitted)):
        triages, untagged = run_stage("tag", fitted, partial(tag_many, tagger=tagger))
    story_of = {raw.key: story for raw, story in fitted}
    done = [Processed(raw, story_of[raw.key], triage) for raw, triage in triages]
    return done, unparsed + untagged


def _parse_each(raws: Sequence[RawMessage], timer: StageTimer, earlier: Earlier) -> list[Story]:
    from intake.parse import parse

    return [parse(raw, timer, earlier) for raw in raws]


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
