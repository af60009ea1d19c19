"""Training the tagger's classifiers, and saving and loading the trained pipeline.

The same examples, settings and seed give the same model (``train`` is deterministic); the model
is cached by a key of both (``triage.tag.model_cache``) and a copy ships inside the package.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import spacy
from spacy.language import Language
from spacy.pipeline import TextCategorizer
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Adam, Config, fix_random_seed

from triage.tag.examples import LabelledText
from triage.tag.model_cache import model_path
from triage.tag.rules import TagSettings
from triage.tag.shipped_model import CONFIG, WEIGHTS, read, shipped_archive
from triage.tag.spacy_parts import KIND, THEMES, blank_nlp

MIN_POSITIVES = 5  # a theme with fewer labelled examples is scored on evidence alone


def _classifier(exclusive: bool) -> dict[str, Any]:
    return {"model": {"@architectures": "story.LemmaBOW.v1", "exclusive_classes": exclusive,
                      "ngram_size": 2}}  # fmt: skip


def train(examples: Sequence[LabelledText], settings: TagSettings) -> Language:
    """Train both classifiers from labelled texts; the same data and seed give the same model."""
    fix_random_seed(settings.seed)
    nlp = blank_nlp()
    themes = [t for t in settings.theme_names
              if sum(t in e.themes for e in examples) >= MIN_POSITIVES]  # fmt: skip
    kinds = sorted({e.kind for e in examples})
    theme_pipe = cast(TextCategorizer, nlp.add_pipe(THEMES, config=_classifier(False)))
    kind_pipe = cast(TextCategorizer, nlp.add_pipe("textcat", name=KIND, config=_classifier(True)))
    docs = list(nlp.pipe((e.text for e in examples), disable=[THEMES, KIND]))
    pairs = [(_example(d, theme_cats(e, themes)),
              _example(d, {k: float(k == e.kind) for k in kinds}))
             for d, e in zip(docs, examples, strict=True)]  # fmt: skip
    # Separately: the exclusive kind classifier rejects examples with several positive cats.
    theme_pipe.initialize(lambda: [p[0] for p in pairs], nlp=nlp, labels=themes)
    kind_pipe.initialize(lambda: [p[1] for p in pairs], nlp=nlp, labels=kinds)
    optimizer = Adam(0.001)
    order = random.Random(settings.seed)
    # The theme classifier stops early (theme_epochs): trained on, it grows sure of its own
    # examples and its probabilities mix badly with the rule evidence. The kind classifier's
    # confidence is read as it is (uncertain_kind, the withdrawal rules), so it trains on.
    for epoch in range(max(settings.epochs, settings.theme_epochs)):
        order.shuffle(pairs)
        for start in range(0, len(pairs), 16):
            batch = pairs[start : start + 16]
            if epoch < settings.theme_epochs:
                theme_pipe.update([p[0] for p in batch], drop=0.2, sgd=optimizer)
            if epoch < settings.epochs:
                kind_pipe.update([p[1] for p in batch], drop=0.2, sgd=optimizer)
    return nlp


def theme_cats(example: LabelledText, themes: Sequence[str]) -> dict[str, float]:
    """The example's theme labels for the classifier. A theme two readers disagreed on is left
    out: spaCy's multi-label loss skips a missing label instead of teaching either answer."""
    return {t: float(t in example.themes) for t in themes if t not in example.unsure}


def _example(doc: Doc, cats: dict[str, float]) -> Example:
    return Example.from_dict(doc, {"cats": cats})


def load_or_train(examples: Sequence[LabelledText], settings: TagSettings) -> Language:
    """The cached model for this data and settings; else the shipped one when its key
    matches (read into memory: nothing is written, so a read-only install starts at once);
    else trained and saved on first use."""
    path = model_path(examples, settings)
    if path.is_dir():
        return spacy.load(path)
    archive = shipped_archive(path.name)
    if archive:
        return load_shipped(archive)
    nlp = train(examples, settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written aside and renamed into place: a run killed while saving, or two runs training at
    # once, never leave a half-written model where the next run would load it.
    partial_dir = Path(tempfile.mkdtemp(prefix=".training-", dir=path.parent))
    nlp.to_disk(partial_dir)
    try:
        partial_dir.rename(path)
    except OSError:  # another run finished first: keep its model, drop ours
        shutil.rmtree(partial_dir, ignore_errors=True)
    return nlp


def load_shipped(archive: Path) -> Language:
    """The model in a shipped archive: the pipeline built from its config, then its weights
    and vocabulary loaded from bytes (spaCy's documented way to load without a folder)."""
    members = read(archive)
    config = Config().from_str(members[CONFIG].decode("utf-8"))
    nlp = spacy.util.get_lang_class(config["nlp"]["lang"]).from_config(config)
    return nlp.from_bytes(members[WEIGHTS])


def shipped_members(nlp: Language) -> dict[str, bytes]:
    """What ``load_shipped`` reads back: the config and the pipeline's bytes."""
    return {CONFIG: nlp.config.to_str().encode("utf-8"), WEIGHTS: nlp.to_bytes()}
