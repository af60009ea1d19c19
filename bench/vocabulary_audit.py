"""How often each theme phrase of config/themes.toml is right, on the training stories.

    .venv/bin/python bench/vocabulary_audit.py duplication [--below 0.55] [--min-stories 4]

For each term or pattern of the theme: in how many training stories it fires, and the share of
those that carry the theme by the second reading (``second_reading``, an independent reader's
labels) and by the writer's. A phrase whose share is near the theme's base rate is no evidence.
Never part of the test run.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from story_intake.themes import DEFAULT_THEMES, load_themes  # noqa: E402
from triage.tag.examples import load_examples, training_files  # noqa: E402
from triage.tag.rules import STORY  # noqa: E402
from triage.tag.tagger import load_tagger  # noqa: E402


def audit(theme: str) -> list[tuple[str, int, float, float]]:
    """(phrase or pattern, stories it fires in, share by second reading, share by writer)."""
    settings = load_themes(DEFAULT_THEMES)
    settings = replace(settings, data_dir=str(ROOT / settings.data_dir),
                       model_dir=str(ROOT / settings.model_dir))  # fmt: skip
    tagger = load_tagger(settings)
    examples = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    stories = [e for e in examples if e.kind == STORY]
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for story, doc in zip(stories, tagger.pipe([s.text for s in stories]), strict=True):
        reading = tagger.read(doc, story.text)
        keys = {h.rule if "pattern" in h.rule else f"{h.rule}:{' '.join(h.text.lower().split())}"
                for h in reading.hits if h.section == "themes" and h.name == theme}  # fmt: skip
        second = set(story.themes) ^ story.unsure  # the themes the second reader gave
        for key in keys:
            counts[key][0] += 1
            counts[key][1] += theme in second
            counts[key][2] += theme in story.themes
    return sorted(
        ((k, n, a / n, b / n) for k, (n, a, b) in counts.items()), key=lambda r: (r[2], r[0])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("theme")
    parser.add_argument("--below", type=float, default=1.01)
    parser.add_argument("--min-stories", type=int, default=4)
    args = parser.parse_args()
    print("second  writer  stories  phrase")
    for key, fired, second, writer in audit(args.theme):
        if fired >= args.min_stories and second < args.below:
            print(f"{second:6.2f} {writer:7.2f} {fired:8}  {key}")


if __name__ == "__main__":
    main()
