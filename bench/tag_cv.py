"""Cross-validation of the tagger on the training files, and scores on named labelled sets.

    .venv/bin/python bench/tag_cv.py --folds 5            # k-fold CV over train_*.jsonl
    .venv/bin/python bench/tag_cv.py --sets triage/tag/data/dev_requests.jsonl ...

Folds are by a seeded shuffle of the examples; each fold trains on the rest (same settings and
seed as ``train``) and tags the held-out fold. Prints per-theme figures, kind accuracy, and how
many stories were read as a request (as a withdrawal). Never part of the test run.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from story_intake.themes import DEFAULT_THEMES, load_themes  # noqa: E402
from triage.tag.evaluate import evaluate, format_report  # noqa: E402
from triage.tag.examples import (  # noqa: E402
    LabelledText,
    load_examples,
    story_from_text,
    training_files,
)
from triage.tag.rules import STORY, WEAK_HIT, WITHDRAWAL, combine  # noqa: E402
from triage.tag.tagger import build_tagger, load_tagger, tag_many, train  # noqa: E402


def summary(gold: Sequence[LabelledText], predicted: Sequence[object], show: bool) -> str:
    """The report, plus stories read as requests / withdrawals."""
    themes = load_themes(DEFAULT_THEMES).theme_names
    report = evaluate(gold, predicted, themes)  # type: ignore[arg-type]
    stories = [(g, p) for g, p in zip(gold, predicted, strict=True) if g.kind == STORY]
    as_request = [(g, p) for g, p in stories if p.kind.startswith("request:")]  # type: ignore[attr-defined]
    as_withdrawal = [(g, p) for g, p in as_request if p.kind == WITHDRAWAL]  # type: ignore[attr-defined]
    lines = [
        format_report(report, show_mistakes=show),
        f"stories read as requests: {len(as_request)}/{len(stories)} "
        f"(as withdrawals: {len(as_withdrawal)})",
    ]
    lines += [f"  {g.id}: {p.kind} {p.review_reasons}" for g, p in as_request]  # type: ignore[attr-defined]
    return "\n".join(lines)


def cross_validate(folds: int, seed: int, show: bool) -> str:
    settings = load_themes(DEFAULT_THEMES)
    examples = load_examples(training_files(ROOT / settings.data_dir), settings.theme_names)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    predicted: list[object] = [None] * len(examples)
    readings: list[Any] = [None] * len(examples)
    for fold in range(folds):
        held = set(order[fold::folds])
        nlp = train([e for i, e in enumerate(examples) if i not in held], settings)
        tagger = build_tagger(nlp, settings)
        idx = sorted(held)
        out = tag_many([story_from_text(examples[i].id, examples[i].text) for i in idx], tagger)
        for i, t in zip(idx, out, strict=True):
            predicted[i] = t
        texts = [examples[i].text for i in idx]
        for i, doc, text in zip(idx, tagger.pipe(texts), texts, strict=True):
            readings[i] = _parts(tagger.read(doc, text), settings.theme_names)
    text = f"== {folds}-fold CV on {len(examples)} training examples\n" + summary(
        examples, predicted, show
    )
    text += "\n" + sweep(examples, predicted, settings.theme_names)
    return text + "\n" + weight_sweep(examples, predicted, readings, settings)


def _parts(reading: Any, themes: Sequence[str]) -> dict[str, tuple[float | None, float]]:
    """Per theme: the classifier's probability and the weighted count of distinct hits."""
    out = {}
    for theme in themes:
        mine = [h for h in reading.hits if h.section == "themes" and h.name == theme]
        strong = {h.text.lower() for h in mine if not h.rule.startswith("weak-")}
        weak = {h.text.lower() for h in mine if h.rule.startswith("weak-")} - strong
        out[theme] = (reading.cats.get(theme), len(strong) + WEAK_HIT * len(weak))
    return out


def weight_sweep(
    gold: Sequence[LabelledText], predicted: Sequence[Any], readings: Sequence[Any], settings: Any
) -> str:
    """Out-of-fold macro-F1 for model_weight x evidence_saturation, each theme at its best
    threshold (and at the current ones), on gold stories read as stories."""
    rows = [
        (g, r)
        for g, p, r in zip(gold, predicted, readings, strict=True)
        if g.kind == STORY and p.kind == STORY
    ]
    current = {t.name: t.threshold for t in settings.themes}
    lines = ["model_weight saturation  macroF1@current  macroF1@best-per-theme  best thresholds"]
    for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
        for saturation in (2.0, 3.0, 4.0, 6.0):
            now, best, cuts = [], [], []
            for theme in settings.theme_names:
                scored = [
                    (theme in g.themes, combine(r[theme][0], r[theme][1], weight, saturation))
                    for g, r in rows
                    if theme not in g.unsure
                ]
                now.append(_f1(scored, current[theme]))
                top = max((_f1(scored, c / 100), c / 100) for c in range(15, 61, 5))
                best.append(top[0])
                cuts.append(top[1])
            lines.append(
                f"{weight:>12} {saturation:>10} {sum(now) / len(now):>16.3f} "
                f"{sum(best) / len(best):>23.3f}  {cuts}"
            )
    return "\n".join(lines)


def _f1(scored: Sequence[tuple[bool, float]], cut: float) -> float:
    tp = sum(gold and score >= cut for gold, score in scored)
    wrong = sum(gold != (score >= cut) for gold, score in scored)
    return 2 * tp / (2 * tp + wrong) if tp else 0.0


def sweep(gold: Sequence[LabelledText], predicted: Sequence[object], themes: Sequence[str]) -> str:
    """Each theme's out-of-fold F1 (on gold stories read as stories) at a range of thresholds."""
    pairs = [
        (g, dict(p.scores))  # type: ignore[attr-defined]
        for g, p in zip(gold, predicted, strict=True)
        if g.kind == STORY and p.kind == STORY
    ]  # type: ignore[attr-defined]
    cuts = " ".join(f"{t / 100:.2f}" for t in range(15, 61, 5))
    lines = [f"threshold sweep (out-of-fold F1): {cuts}"]
    for theme in themes:
        cells = []
        sure = [(g, s) for g, s in pairs if theme not in g.unsure]  # two readers agreed
        for cut in range(15, 61, 5):
            tp = sum(theme in g.themes and s[theme] >= cut / 100 for g, s in sure)
            fp = sum(theme not in g.themes and s[theme] >= cut / 100 for g, s in sure)
            fn = sum(theme in g.themes and s[theme] < cut / 100 for g, s in sure)
            cells.append(f"{2 * tp / (2 * tp + fp + fn) if tp else 0.0:.3f}")
        lines.append(f"{theme:<14} " + " ".join(cells))
    return "\n".join(lines)


def score_sets(paths: Sequence[str], show: bool) -> str:
    settings = load_themes(DEFAULT_THEMES)
    settings = replace(
        settings, data_dir=str(ROOT / settings.data_dir), model_dir=str(ROOT / settings.model_dir)
    )
    tagger = load_tagger(settings)
    parts = []
    for path in paths:
        gold = load_examples([Path(path)], settings.theme_names)
        out = tag_many([story_from_text(e.id, e.text) for e in gold], tagger)
        parts.append(f"== {Path(path).name} ({len(gold)})\n" + summary(gold, out, show))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sets", nargs="*", default=[])
    parser.add_argument("--mistakes", action="store_true")
    args = parser.parse_args()
    if args.folds:
        print(cross_validate(args.folds, args.seed, args.mistakes))
    if args.sets:
        print(score_sets(args.sets, args.mistakes))


if __name__ == "__main__":
    main()
