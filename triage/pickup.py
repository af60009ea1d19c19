"""The embedded default's way out: each outgoing message becomes one ``.eml`` file in a folder.

Imports the standard library and ``intake.errors`` only (``Outgoing`` for annotations): the
pickup folder is read by whatever delivers or shows the mail, or by a person.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
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
    attempt got this far; a different message under the name is never overwritten.
    """
    path = pickup_dir / pickup_name(outgoing.message_id)
    try:
        pickup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=pickup_dir, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates it 0600
                handle.write(outgoing.data)
                handle.flush()
                os.fsync(handle.fileno())
            _link_new(temporary, path, outgoing.data)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        _fsync_directory(pickup_dir)
    except OSError as err:
        raise SendError(f"pickup: {type(err).__name__}") from err
    return path


def pickup_name(message_id: str) -> str:
    """The file name a message gets in the pickup folder: its Message-ID, made safe."""
    return _UNSAFE_FILE_CHARS.sub("_", message_id.strip("<>"))[:200] + ".eml"


def _link_new(temporary: str, path: Path, data: bytes) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError:
        if path.read_bytes() != data:
            raise SendError("pickup: another message already has this file name",
                            permanent=True) from None  # fmt: skip


def _fsync_directory(directory: Path) -> None:
    # The new name must survive a crash too, not only the file's bytes.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
