"""Load ``themes.toml`` into TagSettings: the tagger's vocabulary is data, not code.

Adding a ``[themes.NAME]`` table adds a theme. Every error names the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import triage
from intake.errors import ConfigError
from story_intake.shipped import CONFIG
from story_intake.toml_schema import build, read_toml
from triage.tag.rules import AgencySpec, RequestSpec, TagSettings, ThemeSpec

# A relative data_dir is read beside the installed code (triage/tag/data ships inside it).
ROOT = Path(triage.__file__).resolve().parents[1]
DEFAULT_THEMES = CONFIG / "themes.toml"
# [tagger] holds TagSettings' knobs; the vocabulary comes from the other sections.
_TAGGER_KEYS = {f.name for f in fields(TagSettings)} - {
    "themes",
    "requests",
    "agencies",
    "automated_terms",
}


def load_themes(path: Path) -> TagSettings:
    """Read and validate the themes file at ``path``."""
    return themes_from(read_toml(path, "themes"))


def themes_from(document: Mapping[str, Any]) -> TagSettings:
    """Validate an already-parsed themes document (tests use this directly)."""
    for section in document:
        if section not in ("tagger", "themes", "requests", "agencies", "automated"):
            raise ConfigError(f"unknown section [{section}] in themes")
    knobs = dict(document.get("tagger", {}))
    for key in knobs:
        if key not in _TAGGER_KEYS:
            raise ConfigError(f"unknown key tagger.{key}")
    themes = tuple(_spec(ThemeSpec, name, table, "themes")
                   for name, table in _tables(document, "themes"))  # fmt: skip
    if not themes:
        raise ConfigError("themes: at least one [themes.NAME] table is needed")
    requests = tuple(_spec(RequestSpec, name, table, "requests")
                     for name, table in _tables(document, "requests"))  # fmt: skip
    agencies = tuple(_spec(AgencySpec, name, table, "agencies")
                     for name, table in _tables(document, "agencies"))  # fmt: skip
    automated = build(_Automated, document.get("automated", {}), "automated")
    settings = build(TagSettings, {**knobs, "themes": [], "requests": [], "agencies": []}, "tagger")
    for theme in themes:
        if not 0.0 < theme.threshold < 1.0:
            raise ConfigError(f"themes.{theme.name}.threshold must be between 0 and 1")
    # The labelled data ships with the code: a relative data_dir is read from the repository.
    data_dir = ROOT / settings.data_dir  # an absolute data_dir stays as it is
    return TagSettings(**{**_fields(settings), "data_dir": str(data_dir), "themes": themes,
                          "requests": requests, "agencies": agencies,
                          "automated_terms": automated.terms})  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Automated:
    """``[automated]``: phrases that mark an automatically generated message."""

    terms: tuple[str, ...] = ()


def _tables(document: Mapping[str, Any], section: str) -> list[tuple[str, Mapping[str, Any]]]:
    tables = document.get(section, {})
    if not isinstance(tables, Mapping):
        raise ConfigError(f"[{section}] must be a table of tables")
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"{section}.{name} must be a table")
        if not name.replace("_", "").isalnum() or not name.islower():
            raise ConfigError(f"{section}.{name}: names are lower_snake_case")
    return list(tables.items())


def _spec(cls: Any, name: str, table: Mapping[str, Any], section: str) -> Any:
    key = f"{section}.{name}"
    pattern_keys = [k for k in ("patterns", "weak_patterns") if k in cls.__slots__]
    patterns = {k: _patterns(table.get(k, []), f"{key}.{k}") for k in pattern_keys}
    plain = {k: v for k, v in table.items() if k not in pattern_keys}
    spec = build(cls, {**plain, "name": name}, key)
    for field_name in ("terms", "weak_terms"):
        for index, term in enumerate(getattr(spec, field_name, ())):
            if not term.strip():
                raise ConfigError(f"{key}.{field_name}[{index}] is empty")
    return cls(**{**_fields(spec), **patterns})


def _patterns(value: Any, key: str) -> tuple[tuple[Mapping[str, Any], ...], ...]:
    """Token patterns in spaCy Matcher syntax: a list of lists of tables."""
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list of token patterns")
    for index, pattern in enumerate(value):
        if not isinstance(pattern, list) or not pattern:
            raise ConfigError(f"{key}[{index}] must be a non-empty list of token tables")
        if not all(isinstance(token, Mapping) for token in pattern):
            raise ConfigError(f"{key}[{index}] must hold only token tables")
    return tuple(tuple(dict(token) for token in pattern) for pattern in value)


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}
