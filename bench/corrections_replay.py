"""How much reviewers' corrections teach the tagger: replay a labelled set the tagger never
trained on (``eval_fresh.jsonl``) as "corrections" in folds.

For each of K folds: train with that fold's stories as corrected examples (ahead of the
shipped data, as ``train`` does), evaluate on the other folds, and compare with the shipped
model on exactly the same stories. Prints macro-F1 and per-theme F1, before and after.
Reproducible (fixed folds, fixed seed); models are cached under a temporary folder.

    .venv/bin/python bench/corrections_replay.py [K]
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from story_intake.learning import with_corrections
from story_intake.themes import DEFAULT_THEMES, load_themes
from triage.tag.evaluate import Report, evaluate
from triage.tag.examples import LabelledText, load_examples, story_from_text, training_files
from triage.tag.tagger import build_tagger, load_or_train, tag_many


def scored(examples: list[LabelledText], held: list[LabelledText], settings: object) -> Report:
    tagger = build_tagger(load_or_train(examples, settings), settings)  # type: ignore[arg-type]
    predicted = tag_many([story_from_text(e.id, e.text) for e in held], tagger)
    return evaluate(held, predicted, settings.theme_names)  # type: ignore[attr-defined]


def main(k: int) -> None:
    base = load_themes(DEFAULT_THEMES)
    data = Path(base.data_dir)
    with tempfile.TemporaryDirectory() as models:
        settings = dataclasses.replace(base, model_dir=models)
        shipped = load_examples(training_files(data), settings.theme_names)
        fresh = load_examples([data / "eval_fresh.jsonl"], settings.theme_names)
        folds = [fresh[i::k] for i in range(k)]
        rows = []
        for i, fold in enumerate(folds):
            held = [e for j, f in enumerate(folds) if j != i for e in f]
            before = scored(shipped, held, settings)
            after = scored(with_corrections(shipped, fold), held, settings)
            rows.append((before, after))
            print(
                f"fold {i + 1}/{k}: {len(fold)} corrections, {len(held)} evaluated: "
                f"macro-F1 {before.macro_f1:.3f} -> {after.macro_f1:.3f}",
                flush=True,
            )
        print("\ntheme           F1 before  F1 after   (mean over folds)")
        for n, theme in enumerate(settings.theme_names):
            b = sum(r[0].themes[n].f1 for r in rows) / k
            a = sum(r[1].themes[n].f1 for r in rows) / k
            print(f"{theme:<15} {b:>9.3f} {a:>9.3f}")
        b = sum(r[0].macro_f1 for r in rows) / k
        a = sum(r[1].macro_f1 for r in rows) / k
        print(f"{'macro':<15} {b:>9.3f} {a:>9.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
