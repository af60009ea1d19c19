"""themes.toml: the shipped file loads; every mistake names its key."""

from __future__ import annotations

import re
from typing import Any

import pytest

from intake.errors import ConfigError
from story_intake.themes import DEFAULT_THEMES, load_themes, themes_from
from triage.tag.tagger import blank_nlp, build_tagger

HEALTH = {"description": "Health.", "terms": ["gp"]}


def test_themes_shipped_file_has_the_four_themes_and_compiles() -> None:
    settings = load_themes(DEFAULT_THEMES)
    assert settings.theme_names == ("health", "policing", "elderly_care", "duplication")
    assert all(0 < t.threshold < 1 and t.terms for t in settings.themes)
    assert [r.name for r in settings.requests] == ["withdrawal", "consent"]
    assert len(settings.agencies) == 15 and all(a.terms for a in settings.agencies)
    build_tagger(blank_nlp(), settings)  # every term and pattern compiles


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"themes": {"health": {**HEALTH, "colour": "red"}}}, "themes.health.colour"),
        ({"themes": {"health": {**HEALTH, "threshold": "high"}}}, "themes.health.threshold"),
        ({"themes": {"health": {**HEALTH, "threshold": 1.5}}}, "themes.health.threshold"),
        ({"themes": {"health": {**HEALTH, "terms": "gp"}}}, "themes.health.terms"),
        ({"themes": {"health": {**HEALTH, "terms": ["gp", " "]}}}, "themes.health.terms[1]"),
        ({"themes": {"health": {**HEALTH, "patterns": [[]]}}}, "themes.health.patterns[0]"),
        ({"themes": {"health": {**HEALTH, "patterns": ["gp"]}}}, "themes.health.patterns[0]"),
        ({"themes": {"health": {"terms": ["gp"]}}}, "themes.health.description"),
        ({"themes": {"Health": HEALTH}}, "themes.Health"),
        ({"themes": {}}, "themes"),
        ({"themes": {"health": HEALTH}, "tagger": {"epoch": 3}}, "tagger.epoch"),
        ({"themes": {"health": HEALTH}, "tagger": {"min_words": "x"}}, "tagger.min_words"),
        ({"themes": {"health": HEALTH}, "colours": {}}, "[colours]"),
        ({"themes": {"health": HEALTH}, "requests": {"withdrawal": {"terms": []}}},
         "requests.withdrawal.description"),
    ],
)  # fmt: skip
def test_themes_bad_document_names_the_key(document: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        themes_from(document)


def test_themes_invalid_token_pattern_names_the_key() -> None:
    bad = {"themes": {"health": {**HEALTH, "weak_patterns": [[{"LEMMA": {"NOT_AN_OP": 1}}]]}}}
    with pytest.raises(ConfigError, match=re.escape("themes.health.weak_patterns[0]")):
        build_tagger(blank_nlp(), themes_from(bad))


def test_themes_relative_data_dir_is_read_from_the_repository() -> None:
    settings = themes_from({"themes": {"health": HEALTH}})
    assert settings.data_dir.endswith("triage/tag/data") and settings.data_dir.startswith("/")
