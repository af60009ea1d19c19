"""The embedded default's way out: each outgoing message becomes one ``.eml`` file in a folder.

Imports the standard library and ``intake.errors`` only (``Outgoing`` for annotations): the
pickup folder is read by whatever delivers or shows the mail, or by a person.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from intake.errors import SendError

if TYPE_CHECKING:
    from triage.reply.render import Outgoing

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
        sync_staged([staged])
        path = link_staged(staged, pickup_dir)
    finally:
        discard(staged)
    sync_folder(pickup_dir)
    return path


@dataclass(slots=True)
class Staged:
    """A message written under a temporary name, not yet visible to readers; its file stays
    open until ``sync_staged`` (or ``discard``) closes it."""

    outgoing: Outgoing
    temporary: str
    descriptor: int | None


def stage_pickup(outgoing: Outgoing, pickup_dir: Path) -> Staged:
    """Write ``outgoing`` under a private ``.tmp`` name in ``pickup_dir``; not yet synced."""
    try:
        try:
            descriptor, temporary = _create_staging(outgoing, pickup_dir)
        except FileNotFoundError:  # the first message: made here, not looked for every time
            pickup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor, temporary = _create_staging(outgoing, pickup_dir)
    except OSError as err:
        raise SendError(f"pickup: {type(err).__name__}") from err
    staged = Staged(outgoing, temporary, descriptor)  # created 0600 (see _create_staging)
    try:
        view = memoryview(outgoing.data)
        while view:
            view = view[os.write(descriptor, view) :]
    except OSError as err:
        discard(staged)
        raise SendError(f"pickup: {type(err).__name__}") from err
    return staged


def _create_staging(outgoing: Outgoing, pickup_dir: Path) -> tuple[int, str]:
    """A new 0600 file for ``outgoing`` under a hidden temporary name: the message's own name
    with this process's id, which no other message or running process uses (``mkstemp``'s
    random names cost more than writing the file), or a random one if a crash left it."""
    name = os.path.join(pickup_dir, f".{os.getpid()}.{pickup_name(outgoing.message_id)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(name, flags, 0o600), name
    except FileExistsError:
        return tempfile.mkstemp(dir=pickup_dir, prefix=".", suffix=".tmp")


def sync_staged(staged: Sequence[Staged]) -> None:
    """Sync the staged files and close them. Written first and synced after, a page costs
    about one journal commit instead of one each (0.36 -> 0.17 ms a file here)."""
    for one in staged:
        descriptor, one.descriptor = one.descriptor, None
        if descriptor is None:
            continue
        try:
            os.fsync(descriptor)
        except OSError as err:
            raise SendError(f"pickup: {type(err).__name__}") from err
        finally:
            os.close(descriptor)


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
    """Close the file if still open and remove the temporary name (linked or not: the .eml,
    if any, stays)."""
    descriptor, staged.descriptor = staged.descriptor, None
    if descriptor is not None:
        os.close(descriptor)
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
