"""The embedded default's way out: each outgoing message becomes one ``.eml`` file in a folder.

Imports the standard library and ``intake.errors`` only (``Outgoing`` for annotations): the
pickup folder is read by whatever delivers or shows the mail, or by a person.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from intake.errors import SendError

if TYPE_CHECKING:
    from triage.outbox import Outgoing

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._@-]")


def write_pickup(outgoing: Outgoing, pickup_dir: Path) -> Path:
    """Write ``outgoing`` as ``<message id>.eml`` in ``pickup_dir`` (created 0700), mode 0600.

    The file appears whole or not at all: it is written under a ``.tmp`` name (which pickup
    readers looking for ``*.eml`` ignore), synced, then hard-linked into place, which, unlike
    ``os.replace``, fails instead of overwriting. The same bytes already there mean an earlier
    attempt got this far; a different message under the name is never overwritten. The
    sender does the same steps for a page of messages at once, with one folder sync.
    """
    staged = stage_pickup(outgoing, pickup_dir)
    try:
        path = link_staged(staged, pickup_dir)
    finally:
        discard(staged)
    sync_folder(pickup_dir)
    return path


@dataclass(frozen=True, slots=True)
class Staged:
    """A message written and synced under a temporary name, not yet visible to readers."""

    outgoing: Outgoing
    temporary: str


def stage_pickup(outgoing: Outgoing, pickup_dir: Path) -> Staged:
    """Write ``outgoing`` under a private ``.tmp`` name in ``pickup_dir`` and sync it."""
    try:
        pickup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=pickup_dir, prefix=".", suffix=".tmp")
        with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates it 0600
            try:
                handle.write(outgoing.data)
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                os.unlink(temporary)
                raise
    except OSError as err:
        raise SendError(f"pickup: {type(err).__name__}") from err
    return Staged(outgoing, temporary)


def link_staged(staged: Staged, pickup_dir: Path) -> Path:
    """Make a staged message visible as ``<message id>.eml``: the hand-over itself."""
    path = pickup_dir / pickup_name(staged.outgoing.message_id)
    try:
        os.link(staged.temporary, path)
    except FileExistsError:
        if path.read_bytes() != staged.outgoing.data:
            raise SendError("pickup: another message already has this file name",
                            permanent=True) from None  # fmt: skip
    except OSError as err:
        raise SendError(f"pickup: {type(err).__name__}") from err
    return path


def discard(staged: Staged) -> None:
    """Remove the temporary name (linked or not: the .eml, if any, stays)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staged.temporary)


def sync_folder(pickup_dir: Path) -> None:
    """Make the new names survive a crash too, not only the files' bytes."""
    try:
        descriptor = os.open(pickup_dir, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as err:
        raise SendError(f"pickup: {type(err).__name__}") from err


def pickup_name(message_id: str) -> str:
    """The file name a message gets in the pickup folder: its Message-ID, made safe."""
    return _UNSAFE_FILE_CHARS.sub("_", message_id.strip("<>"))[:200] + ".eml"
