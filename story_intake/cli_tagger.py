"""The tagger's commands: ``train`` (and ``train --ship``, which rebuilds the model shipped
inside the package) and ``evaluate``.

The tagger's modules (spaCy) are imported inside these functions: the other commands never
load them (``once`` and ``run`` leave them to the worker processes, see ``story_intake.pool``).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from intake.store.engine import Store, StoreSettings
from story_intake.app_settings import Settings
from story_intake.learning import corrected_examples, with_corrections
from triage.tag.rules import TagSettings


def train_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``train [--ship]``."""
    shipping = args.ship  # what ships is trained from the shipped data alone, never corrections
    print(ship_model(settings.tagger) if shipping else train_model(settings.tagger, settings.store))
    return 0


def evaluate_command(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    """``evaluate``."""
    print(evaluate_model(settings.tagger))
    return 0


def train_model(settings: TagSettings, store: StoreSettings | None = None) -> str:
    """Train (or find cached or shipped) the tagger's model; returns where it is. With
    ``store``, the stories reviewers corrected come first, ahead of shipped examples of the
    same story."""
    from triage.tag.examples import load_examples, training_files
    from triage.tag.model_cache import model_path
    from triage.tag.model_swap import swap_in, swap_out
    from triage.tag.tagger import load_or_train

    base = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    corrected, examples = [], base
    if store is not None:
        with Store(store) as opened:
            corrected = corrected_examples(opened, settings.theme_names)
        examples = with_corrections(base, corrected)
    load_or_train(examples, settings)
    if corrected:  # the worker's next pass loads it, as after housekeeping's retraining
        swap_in(settings, base, model_path(examples, settings).name)
    elif store is not None:
        swap_out(settings)
    return (
        f"model for {len(examples)} training examples ({len(corrected)} corrected by "
        f"reviewers): {model_path(examples, settings)}"
    )


def ship_model(settings: TagSettings, folder: Path | None = None) -> str:
    """Train the model afresh from ``data_dir`` and pack it into the package (or ``folder``),
    replacing the one shipped before, so a new install starts without training; returns where
    and how big.

    Run from a checkout (``make model``): the package folder is then the repository's.
    """
    from triage.tag.examples import load_examples, training_files
    from triage.tag.model_cache import model_key
    from triage.tag.shipped_model import SHIPPED, pack
    from triage.tag.tagger import shipped_members, train

    examples = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    nlp = train(examples, settings)  # never the cache: what ships is what this data trains
    archive = pack(shipped_members(nlp), model_key(examples, settings), folder or SHIPPED)
    size = archive.stat().st_size
    return f"shipped model for {len(examples)} training examples: {archive} ({size} bytes)"


def evaluate_model(settings: TagSettings) -> str:
    """Tag each held-out evaluation set (``eval*.jsonl``) and report how the tags compare with
    its labels."""
    from triage.tag.evaluate import evaluate, format_report
    from triage.tag.examples import load_examples, story_from_text
    from triage.tag.tagger import load_tagger, tag_many

    tagger, reports = load_tagger(settings), []
    for path in sorted(Path(settings.data_dir).glob("eval*.jsonl")):
        gold = load_examples([path], settings.theme_names)
        predicted = tag_many([story_from_text(e.id, e.text) for e in gold], tagger)
        report = format_report(evaluate(gold, predicted, settings.theme_names))
        reports.append(f"== {path.name} ({len(gold)} examples)\n{report}")
    return "\n\n".join(reports)
