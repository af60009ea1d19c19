"""Learning from the review page: stories a reviewer corrected become labelled examples.

``train`` puts them ahead of the shipped examples: a shipped example of the same story (same
id or the same text) gives way to the reviewer's labels. Application layer: it reads the store
and hands the tagger plain ``LabelledText``.
"""

from __future__ import annotations

from collections.abc import Sequence

from intake.store.engine import Store
from triage.tag.examples import LabelledText


def corrected_examples(store: Store, themes: Sequence[str]) -> list[LabelledText]:
    """Every story with a stored correction, labelled as its triage now stands (after the
    corrections), text still kept (retention may have purged it); in the order received."""
    corrected = {c.story_id for c in store.review.corrections()}
    known = set(themes)
    return [LabelledText(story.story_id, story.text,
                         tuple(t for t in triage.themes if t in known), triage.kind)
            for story, triage in store.stories.triaged()
            if story.story_id in corrected and triage is not None and story.text.strip()
            ]  # fmt: skip


def with_corrections(shipped: Sequence[LabelledText], corrected: Sequence[LabelledText]
                     ) -> list[LabelledText]:  # fmt: skip
    """The corrected examples first, then the shipped ones that are not the same story."""
    ids = {e.id for e in corrected}
    texts = {e.text.strip() for e in corrected}
    return [*corrected, *(e for e in shipped if e.id not in ids and e.text.strip() not in texts)]
