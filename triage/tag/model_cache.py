"""Tag stage, the trained model's cache: where the model for this data lives, and whether it is
there yet. Stdlib and ``triage.tag.examples`` only, no spaCy: the application asks before the
tagger loads (in a worker process, where nothing it logs would be seen), so it can say that
the first pass with new training data stops to train, and for how long.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from triage.tag.examples import LabelledText, load_examples, training_files
from triage.tag.rules import TagSettings
from triage.tag.shipped_model import shipped_archive

MODEL_VERSION = "2"  # bump when training code changes, so cached models are rebuilt
# What training took on the shipped data (about 2,000 examples, 20 epochs) on one core of the
# development machine: 38 s. Said to the user as a range, since machines differ.
TRAINING_TIME = "usually 30 to 60 seconds"


def model_key(examples: Sequence[LabelledText], settings: TagSettings) -> str:
    """What the trained model depends on: data, theme names, seed, epochs and code version."""
    digest = hashlib.sha256(MODEL_VERSION.encode())
    for part in (settings.theme_names, settings.seed, settings.epochs, settings.theme_epochs):
        digest.update(repr(part).encode())
    for example in examples:
        digest.update(
            repr((example.text, example.themes, example.kind, sorted(example.unsure))).encode()
        )
    return digest.hexdigest()[:16]


def model_path(examples: Sequence[LabelledText], settings: TagSettings) -> Path:
    """Where the model for this data and these settings is cached."""
    return Path(settings.model_dir) / model_key(examples, settings)


def untrained(settings: TagSettings) -> tuple[int, Path] | None:
    """``(examples, model path)`` when loading the tagger will train it first; None when the
    model for this data is already saved or ships with the package (or there is no data:
    loading says so itself)."""
    examples = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    if not examples:
        return None
    path = model_path(examples, settings)
    if path.is_dir() or shipped_archive(path.name) or current_model(settings, examples):
        return None
    return len(examples), path


# The model housekeeping retrained with corrections and swapped in (triage.tag.model_swap).
POINTER = "current.json"
KEY = re.compile(r"[0-9a-f]{16}")  # what model_key gives: a pointer never names another path


def current_model(settings: TagSettings, base: Sequence[LabelledText]) -> Path | None:
    """The model folder swapped in for these settings and this (shipped) training data, or
    None: no pointer, a pointer for other data or settings, or a folder that is not there."""
    try:
        found = json.loads((Path(settings.model_dir) / POINTER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # unreadable or not JSON: the model for the data is used
        return None
    if not isinstance(found, dict) or found.get("base") != model_key(base, settings):
        return None
    key = str(found.get("key", ""))
    path = Path(settings.model_dir) / key
    return path if KEY.fullmatch(key) and path.is_dir() else None
