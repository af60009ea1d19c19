"""Which config file is read, and where its relative paths point: the config file's folder,
whatever the current directory; without --config, ./pipeline.toml, else the shipped defaults
with data under ./var."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from story_intake.cli import main
from story_intake.settings import load_settings

RELATIVE = """\
[mailbox]
maildir = "data/mailbox"
[smtp]
pickup_dir = "data/outbox"
[store]
url = "sqlite:///data/stories.db"
[digest]
output_dir = "data/digests"
"""


def test_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "pipeline.toml").write_text(RELATIVE)
    (folder / "themes.toml").write_text(
        (Path(__file__).parents[1] / "config/themes.toml").read_text()
        .replace('model_dir = "var/model"', 'model_dir = "models"'))  # fmt: skip
    settings = load_settings(folder / "pipeline.toml", {})
    assert settings.mailbox.maildir == str(folder / "data/mailbox")  # type: ignore[union-attr]
    assert settings.smtp.pickup_dir == str(folder / "data/outbox")
    assert settings.store.url == f"sqlite:///{folder}/data/stories.db"
    assert settings.digest.output_dir == str(folder / "data/digests")
    assert settings.tagger.model_dir == str(folder / "models")
    # Absolute paths and server URLs stay as they are.
    absolute = RELATIVE.replace("data/outbox", "/srv/outbox").replace(
        "sqlite:///data/stories.db", "postgresql://db.example.org/stories"
    )
    (folder / "pipeline.toml").write_text(absolute)
    settings = load_settings(folder / "pipeline.toml", {})
    assert settings.smtp.pickup_dir == "/srv/outbox"
    assert settings.store.url == "postgresql://db.example.org/stories"


def test_paths_config_in_another_folder_run_from_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, elsewhere = tmp_path / "etc" / "pipeline.toml", tmp_path / "elsewhere"
    config.parent.mkdir()
    elsewhere.mkdir()
    config.write_text(RELATIVE)
    monkeypatch.chdir(elsewhere)
    assert main(["--config", str(config), "status"]) == 0
    assert (config.parent / "data/stories.db").is_file()
    assert os.listdir(elsewhere) == []  # nothing written where the command was run


def test_paths_without_config_local_pipeline_toml_else_shipped_defaults_under_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 0  # no pipeline.toml here: the shipped defaults, data in ./var
    assert (tmp_path / "var/stories.db").is_file()
    (tmp_path / "pipeline.toml").write_text(RELATIVE)
    assert main(["status"]) == 0  # now ./pipeline.toml is the config
    assert (tmp_path / "data/stories.db").is_file()
    # A pipeline.toml in a parent folder is not looked for.
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["status"]) == 0
    assert (tmp_path / "sub/var/stories.db").is_file()
