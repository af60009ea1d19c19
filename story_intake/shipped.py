"""Where the files shipped with the program are: the default ``config/*.toml`` and the demo's
``samples/stories``.

An installed distribution carries them inside this package (``story_intake/config``); a
checkout (and the editable install ``make`` uses) has them at the repository root.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent  # the repository root when run from a clone


def shipped(name: str) -> Path:
    """The shipped folder ``name``: inside the package when installed, else the checkout's."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else CHECKOUT / name


CONFIG = shipped("config")
