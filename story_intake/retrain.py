"""Housekeeping's retraining: when reviewers' corrections have changed the training data since
the model in use was trained, train on the corrected data and swap the new model in.

The model's key (``model_cache.model_key``) is a fingerprint of everything it was trained on,
the corrected examples included: a new correction (or one whose story retention has since
purged) gives a new key, and only then does anything train. Training runs in a child process
(spaCy is never loaded into the worker's own process, which stays small), writes the model to
a new folder renamed into place, and only then is the pointer to the model in use replaced
(``triage.tag.model_swap``): the next pass loads the new model, a pass already running keeps
the old one, and a training that fails leaves the old one in use.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from intake.store.engine import Store
from story_intake.learning import corrected_examples, with_corrections
from triage.tag.examples import LabelledText, load_examples, training_files
from triage.tag.model_cache import current_model, model_key
from triage.tag.model_swap import prune, swap_in, swap_out
from triage.tag.rules import TagSettings

log = logging.getLogger("story_intake")


def retrain_if_corrected(settings: TagSettings, store: Store) -> str | None:
    """Retrain and swap in when the corrected training data differs from what the model in
    use was trained on; returns the new model's key, None when nothing changed."""
    base = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    if not base:
        return None  # loading the tagger says so itself
    corrected = corrected_examples(store, settings.theme_names)
    examples = with_corrections(base, corrected)
    key, base_key = model_key(examples, settings), model_key(base, settings)
    in_use = current_model(settings, base)
    if key == (in_use.name if in_use else base_key):
        return None
    if key == base_key:  # no correction is left (erased or purged): back to the shipped data
        swap_out(settings)
        log.info("tagger: no corrections left, back to the model for the shipped data")
        return key
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as child:
        child.submit(train_saved, examples, settings).result()
    swap_in(settings, base, key)
    prune(settings, keep=(key, base_key, in_use.name if in_use else base_key))
    log.info("tagger retrained on %d examples (%d corrected by reviewers): model %s in use "
             "from the next pass", len(examples), len(corrected), key)  # fmt: skip
    return key


def train_saved(examples: Sequence[LabelledText], settings: TagSettings) -> None:
    """Train (or find) the model for ``examples`` and save it under its key (in the child)."""
    from triage.tag.tagger import load_or_train  # spaCy: in the child process only

    load_or_train(examples, settings)
