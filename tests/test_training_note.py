"""The first pass with new training data trains the tagger: the person running it is told."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import TESTS, maildir_config, seed_maildir, start_pipeline, story_message

THEMES = TESTS.parent / "config" / "themes.toml"


def _small_tagger(folder: Path, config: Path) -> None:
    """themes.toml beside ``config``: its own model folder, and 40 examples to train on (a
    few seconds, not the shipped data's half a minute)."""
    data = folder / "data"
    data.mkdir()
    lines = (TESTS.parent / "triage" / "tag" / "data" / "train_a.jsonl").read_text().splitlines()
    (data / "train_small.jsonl").write_text("\n".join(lines[:40]) + "\n")
    text = THEMES.read_text()
    text = re.sub(r"(?m)^data_dir = .*$", f'data_dir = "{data}"', text)
    text = re.sub(r"(?m)^model_dir = .*$", f'model_dir = "{folder / "model"}"', text)
    (config.parent / "themes.toml").write_text(text)


def _once(config: Path) -> str:
    process = start_pipeline(config, "once")
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    return err


def test_stages_first_pass_says_it_is_training(tmp_path: Path) -> None:
    config = maildir_config(tmp_path / "run", extra="[intake]\nworkers = 1\n")
    _small_tagger(tmp_path, config)
    seed_maildir(tmp_path / "run" / "mailbox", story_message(1))
    first = _once(config)
    said = [line for line in first.splitlines() if "training the tagger" in line]
    assert len(said) == 1, first[-2000:]
    assert "40 examples" in said[0] and "usually 30 to 60 seconds" in said[0]
    assert str(tmp_path / "model") in said[0]
    # Trained and saved: the next pass with something to tag loads it and says nothing.
    seed_maildir(tmp_path / "run" / "mailbox", story_message(2))
    assert "training the tagger" not in _once(config)


def test_stages_in_process_tagger_says_it_is_training_too(tmp_path: Path) -> None:
    config = maildir_config(tmp_path / "run", extra="[intake]\nworkers = 0\n")
    _small_tagger(tmp_path, config)
    seed_maildir(tmp_path / "run" / "mailbox", story_message(1))
    assert _once(config).count("training the tagger") == 1
