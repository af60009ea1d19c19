"""Paths in a config file are relative to that file's folder, not the current directory: a
worker started from anywhere (systemd, cron, a shell in another folder) finds the same store,
Maildir, pickup folder, digests and model. Without a config file the shipped defaults' paths
(``var/...``) are anchored to the current folder instead (``cli_parser.config_location``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from intake.store.location import anchored_url
from story_intake.app_settings import Settings

# Every settings field that names a file or folder, in whichever part has it. The tagger's
# data_dir is not here: a relative one names the training data shipped with the code
# (story_intake.themes).
PATH_FIELDS = frozenset(
    {"maildir", "pickup_dir", "output_dir", "model_dir", "ca_file", "oauth2_token_cache"}
)
Part = TypeVar("Part")


def anchored(settings: Settings, base: Path) -> Settings:
    """``settings`` with every relative path made absolute from the folder ``base``."""
    base = base.absolute()
    parts = {f.name: _anchor_part(getattr(settings, f.name), base)
             for f in dataclasses.fields(settings)}  # fmt: skip
    store = parts["store"]
    parts["store"] = dataclasses.replace(store, url=anchored_url(store.url, base))
    return dataclasses.replace(settings, **parts)


def _anchor_part(part: Part, base: Path) -> Part:
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(part):  # type: ignore[arg-type]
        value = getattr(part, field.name)
        if field.name in PATH_FIELDS and isinstance(value, str) and value:
            path = Path(value).expanduser()
            changes[field.name] = str(path if path.is_absolute() else base / path)
    return dataclasses.replace(part, **changes) if changes else part  # type: ignore[type-var]
