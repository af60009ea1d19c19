"""Housekeeping retrains the tagger when reviewers have corrected stories since the model in
use was trained, and swaps the new model in atomically: a new folder named by a fingerprint
that includes the correction, the old one untouched, the next pass tagging with the new one.

A small training set and few epochs keep training to seconds; everything else is the real
path: the page, the store, housekeeping (training in a child process), the pass."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from conftest import (
    REVIEW_PASSWORD,
    Clock,
    csrf,
    log_in,
    maildir_config,
    seed_maildir,
    story_message,
)
from starlette.testclient import TestClient

from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.jobs import run_housekeeping
from story_intake.learning import corrected_examples, with_corrections
from story_intake.passwords import hash_password
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from story_intake.web.app import build_app
from triage.reply.policy import reference
from triage.tag.examples import load_examples, training_files
from triage.tag.model_cache import POINTER, current_model, model_key
from triage.tag.tagger import load_tagger

DATA = Path(__file__).resolve().parents[1] / "triage" / "tag" / "data"
TEXT = ("The council moved my mother to a new flat and her carers from the agency never "
        "found out, so she went four days without her visits.")  # fmt: skip


def small_site(folder: Path) -> Settings:
    """A Maildir site whose tagger trains on 20 examples from each shipped file, 3 epochs."""
    data = folder / "data"
    data.mkdir(parents=True)
    lines = [line for path in sorted(DATA.glob("train_*.jsonl"))
             for line in path.read_text().splitlines()[:20]]  # fmt: skip
    (data / "train_small.jsonl").write_text("\n".join(lines) + "\n")
    settings = load_settings(maildir_config(folder, extra="[intake]\nworkers = 0\n"), {})
    tagger = dataclasses.replace(settings.tagger, data_dir=str(data), epochs=3,
                                 model_dir=str(folder / "model"))  # fmt: skip
    return dataclasses.replace(settings, tagger=tagger)


def folder_digest(folder: Path) -> str:
    """A hash of every file in ``folder`` (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_retrain_housekeeping_swaps_in_a_model_trained_with_a_page_correction(
    tmp_path: Path, clock: Clock
) -> None:
    settings = small_site(tmp_path / "site")
    tag = settings.tagger
    seed_maildir(settings.mailbox.maildir, story_message(1, message_id="<fix-1@example.org>",  # type: ignore[union-attr]
                                                         body=TEXT))  # fmt: skip
    run_once(settings, clock.now)  # trains and saves the model for the small data
    base = load_examples(training_files(Path(tag.data_dir)), tag.theme_names)
    old = Path(tag.model_dir) / model_key(base, tag)
    assert old.is_dir() and current_model(tag, base) is None
    before = folder_digest(old)
    stale = Path(tag.model_dir) / "0123456789abcdef"  # a model an earlier retraining left
    stale.mkdir()
    with Store(settings.store) as store:
        store.accounts.add_user("rob", "reviewer", hash_password(REVIEW_PASSWORD), clock.now)
        assert run_housekeeping(settings, clock.now)["tagger_retrained"] == 0  # no corrections
        assert not (Path(tag.model_dir) / POINTER).exists()
        ((story, triage),) = store.stories.triaged()
        assert triage is not None
        added = next(t for t in tag.theme_names if t not in triage.themes)
        corrected = sorted({*triage.themes, added})
        client = TestClient(build_app(settings, store, clock), client=("192.0.2.1", 40000),
                            base_url="https://testserver", follow_redirects=False)  # fmt: skip
        assert log_in(client, "rob") == 303
        page = f"/story/{reference(story.story_id)}/themes"
        assert client.post(page, data={"csrf_token": csrf(client), "theme": corrected}
                           ).status_code == 303  # fmt: skip
        examples = with_corrections(base, corrected_examples(store, tag.theme_names))
        assert sorted(examples[0].themes) == corrected and examples[0].text == TEXT
        assert run_housekeeping(settings, clock.now)["tagger_retrained"] == 1
        assert run_housekeeping(settings, clock.now)["tagger_retrained"] == 0  # once per change
    new = Path(tag.model_dir) / model_key(examples, tag)  # the fingerprint has the correction
    assert new != old and new.is_dir()
    assert current_model(tag, base) == new
    assert folder_digest(old) == before  # the old model was never touched
    assert not stale.exists()  # models neither in use nor just replaced are removed
    assert load_tagger(tag).nlp.path == new  # the next pass loads the new one
    seed_maildir(settings.mailbox.maildir, story_message(2, message_id="<fix-2@example.org>",  # type: ignore[union-attr]
                                                         body=TEXT))  # fmt: skip
    run_once(settings, clock.now)
    with Store(settings.store) as store:
        scores = {s.story_id: dict(t.scores) for s, t in store.stories.triaged() if t}
    # The same words, tagged by the model that learnt the reviewer's label, score it higher.
    assert scores["fix-2@example.org"][added] > scores["fix-1@example.org"][added]


def test_retrain_pointer_is_ignored_for_other_data_or_a_path_it_should_not_name(
    tmp_path: Path,
) -> None:
    from triage.tag.model_swap import swap_in

    settings = small_site(tmp_path / "site").tagger
    base = load_examples(training_files(Path(settings.data_dir)), settings.theme_names)
    saved = Path(settings.model_dir) / "0123456789abcdef"
    saved.mkdir(parents=True)
    swap_in(settings, base, saved.name)
    assert current_model(settings, base) == saved
    assert current_model(settings, base[1:]) is None  # trained on top of other data: not used
    pointer = Path(settings.model_dir) / POINTER
    pointer.write_text(json.dumps({"key": "../../elsewhere", "base": model_key(base, settings)}))
    assert current_model(settings, base) is None
    pointer.write_text("not json")
    assert current_model(settings, base) is None


def test_retrain_train_command_swaps_in_its_corrected_model_too(
    tmp_path: Path, clock: Clock
) -> None:
    from story_intake.cli_tagger import train_model

    settings = small_site(tmp_path / "site")
    tag = settings.tagger
    seed_maildir(settings.mailbox.maildir, story_message(1, body=TEXT))  # type: ignore[union-attr]
    run_once(settings, clock.now)
    base = load_examples(training_files(Path(tag.data_dir)), tag.theme_names)
    with Store(settings.store) as store:
        ((story, triage),) = store.stories.triaged()
        assert triage is not None
        assert store.review.correct(story.story_id, "rob", "kind", "request:press", clock.now)
        examples = with_corrections(base, corrected_examples(store, tag.theme_names))
    train_model(tag, settings.store)
    assert current_model(tag, base) == Path(tag.model_dir) / model_key(examples, tag)
