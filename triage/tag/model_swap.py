"""Tag stage, the model in use when housekeeping has retrained with reviewers' corrections.

The retrained model is saved like any other (``model_dir/<key>``, written aside and renamed
into place by ``tagger.load_or_train``); then ``model_dir/current.json`` is replaced, in one
rename, by a pointer to it. Loading the tagger (each pass, in the worker processes) follows
the pointer (``model_cache.current_model``), so a pass loads either the old model or the new
one, never half of one. The pointer also records the key of the shipped data it was trained
on top of: when the training data or the settings change (an upgrade), a model trained on
the old data is no longer used. Stdlib and ``model_cache`` only, no spaCy.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from triage.tag.examples import LabelledText
from triage.tag.model_cache import KEY, POINTER, model_key
from triage.tag.rules import TagSettings


def swap_in(settings: TagSettings, base: Sequence[LabelledText], key: str) -> None:
    """Make the saved model ``model_dir/<key>`` the one loaded from now on: the pointer is
    written aside, flushed to disk and renamed over the old one."""
    if not KEY.fullmatch(key) or not (Path(settings.model_dir) / key).is_dir():
        raise ValueError(f"no saved model {key!r} to swap in")
    folder = Path(settings.model_dir)
    pointer = json.dumps({"key": key, "base": model_key(base, settings)})
    handle, partial = tempfile.mkstemp(prefix=".current-", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(pointer)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, folder / POINTER)


def swap_out(settings: TagSettings) -> None:
    """Go back to the model for the shipped data alone (no corrections are left)."""
    (Path(settings.model_dir) / POINTER).unlink(missing_ok=True)


def prune(settings: TagSettings, keep: Sequence[str]) -> int:
    """Remove saved models other than ``keep`` (keys) from ``model_dir``: each retraining
    saves a new one (tens of MB). Called after a swap, keeping the new model, the one it
    replaced (a pass may still be loading it) and the model for the shipped data. Returns how
    many were removed."""
    removed = 0
    for path in Path(settings.model_dir).iterdir():
        if KEY.fullmatch(path.name) and path.name not in keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
