"""``story-intake check``'s vocabulary: a check, what it shares with the others as they run
(``Probe``), how it fails (``Failed``: what was found and the fix) and its outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from intake.errors import FetchError
from intake.sources.imap_probe import FolderInfo, ImapProbe
from story_intake.app_settings import Settings
from triage.reply.smtp import ProbeStep

T = TypeVar("T")


class Failed(Exception):
    """A check that did not pass: what was found, and what to do about it."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


@dataclass(frozen=True, slots=True)
class Outcome:
    """One line of the report."""

    name: str
    status: Literal["pass", "fail", "skip"]
    detail: str
    fix: str = ""


@dataclass
class Probe:
    """What the checks share as they go: the settings, the environment, the open IMAP
    connection and the SMTP steps once taken."""

    settings: Settings
    environ: Mapping[str, str]
    now: datetime
    imap: ImapProbe | None = None
    folder: FolderInfo | None = None
    smtp: list[ProbeStep] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Check:
    """One step: its name, the check that must have passed first, and the function."""

    name: str
    needs: str | None
    run: Callable[[Probe], str]


def asked(question: Callable[[], T]) -> T:
    """The answer to a read-only question to the server; Failed when it is refused."""
    try:
        return question()
    except FetchError as err:
        raise Failed(str(err), "the server refused a read-only command the pipeline needs; "
                     "see its log") from err  # fmt: skip
