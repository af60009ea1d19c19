"""The review page, how often reviewers agreed with the tagger, per theme, over 30 days.

A story counts once a reviewer looked at it (marked it reviewed, or corrected its themes)
in the window. For each theme: agreed when the tagger's decision (the themes before the
first correction) is the one the story has now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from intake.store.engine import Store

WINDOW = timedelta(days=30)


def agreement(store: Store, themes: Sequence[str], now: datetime
              ) -> dict[str, tuple[int, int]]:  # fmt: skip
    """theme -> (agreed, looked at) over the last 30 days."""
    review = store.review
    since = now - WINDOW
    first: dict[str, list[str]] = {}
    looked = {story_id for story_id, at in review.reviewed_at().items() if at >= since}
    for c in review.corrections():
        if c.field == "themes" and c.at >= since:
            first.setdefault(c.story_id, list(c.before))
            looked.add(c.story_id)
    now_themes = {s.story_id: t.themes for s, t in store.stories.triaged()
                  if t is not None and s.story_id in looked}  # fmt: skip
    return tally(themes, now_themes, first)


def tally(themes: Sequence[str], final: Mapping[str, Sequence[str]],
          original: Mapping[str, Sequence[str]]) -> dict[str, tuple[int, int]]:  # fmt: skip
    """Per theme: stories whose tagger decision stands, of all the stories looked at."""
    counts = {}
    for theme in themes:
        agreed = sum((theme in original.get(story_id, chosen)) == (theme in chosen)
                     for story_id, chosen in final.items())  # fmt: skip
        counts[theme] = (agreed, len(final))
    return counts
