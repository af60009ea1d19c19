"""Tagging throughput on one core, beside spaCy's blank tokenizer alone over the same texts.

    .venv/bin/python bench/tag_bench.py [--stories 2000] [--words 400] [--repeat 3]

Stories of about ``--words`` words are stitched from the repository's training texts (seeded),
so the vocabulary is realistic. The process is pinned to one CPU. Prints stories per second
for the tokenizer alone and for the whole tag stage (pipeline, rule matchers, judgement), the
ratio between them, and the medians of ``--repeat`` runs. Never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from story_intake.themes import DEFAULT_THEMES, load_themes  # noqa: E402
from triage.tag.examples import load_examples, story_from_text, training_files  # noqa: E402
from triage.tag.tagger import load_tagger, tag_many  # noqa: E402


def make_texts(count: int, words: int, seed: int) -> list[str]:
    """``count`` texts of about ``words`` words, stitched from the training examples."""
    settings = load_themes(DEFAULT_THEMES)
    pool = [e.text for e in load_examples(training_files(Path(settings.data_dir)),
                                          settings.theme_names)]  # fmt: skip
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(rng.choice(pool))
        texts.append(" ".join(" ".join(parts).split()[:words]))
    return texts


def rate(count: int, seconds: float) -> float:
    """Items per second."""
    return count / seconds if seconds else float("inf")


def measure(texts: list[str], repeat: int) -> tuple[float, float]:
    """Median stories/s of the tokenizer alone and of the whole tag stage."""
    tagger = load_tagger(load_themes(DEFAULT_THEMES))
    stories = [story_from_text(str(i), t) for i, t in enumerate(texts)]
    tag_many(stories[:50], tagger)  # warm caches (lemma cache, matcher vocab)
    tokenizer, tagged = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            tagger.nlp.make_doc(text)
        tokenizer.append(rate(len(texts), time.perf_counter() - start))
        start = time.perf_counter()
        tag_many(stories, tagger)
        tagged.append(rate(len(texts), time.perf_counter() - start))
    return statistics.median(tokenizer), statistics.median(tagged)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=2000)
    parser.add_argument("--words", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    texts = make_texts(args.stories, args.words, args.seed)
    tokens, tagged = measure(texts, args.repeat)
    print(f"python {platform.python_version()}, one core, {args.stories} stories of "
          f"{args.words} words, median of {args.repeat}")  # fmt: skip
    print(f"tokenizer only : {tokens:8.0f} stories/s")
    print(f"tag stage      : {tagged:8.0f} stories/s  ({tagged / tokens:.2f} of the tokenizer)")


if __name__ == "__main__":
    main()
