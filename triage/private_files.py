"""Files of personal data written where someone else may have prepared the ground.

``subject-access --out DIR`` writes a person's stories into a folder named on the command
line. A planted symlink must not redirect a story elsewhere, and a file left there must not
lend the story its (world-readable) mode: the folder is new or empty and becomes owner-only
(0700), and every file is created fresh (``O_EXCL``), never through a symlink
(``O_NOFOLLOW``), owner-only (0600). Stdlib only; imports nothing of the pipeline but errors.
"""

from __future__ import annotations

import os
from pathlib import Path

from intake.errors import UsageError

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_private_folder(path: Path) -> int:
    """Create ``path`` (0700), or take it when it is an empty folder of ours, and return an
    open descriptor of it for ``write_private``; UsageError naming the path otherwise.

    Files are then created relative to the descriptor, so swapping the folder for a symlink
    after this check changes nothing.
    """
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass  # an existing folder is checked below: empty, ours, not a symlink
    except OSError as err:
        raise UsageError(f"cannot create {path}: {err.strerror}") from err
    try:
        descriptor = os.open(path, _FOLDER_FLAGS)
    except OSError as err:  # ELOOP: a symlink; ENOTDIR: a file
        raise UsageError(f"{path} is not a folder of its own: {err.strerror}") from err
    try:
        if os.listdir(descriptor):
            raise UsageError(f"{path} is not empty: name a new or empty folder")
        if os.fstat(descriptor).st_uid != os.geteuid():
            raise UsageError(f"{path} belongs to another user: name a new or empty folder")
        os.fchmod(descriptor, 0o700)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def write_private(folder: int, name: str, data: bytes) -> None:
    """Create the file ``name`` in the open ``folder`` (owner-only) holding ``data``; a file
    or symlink already there is a UsageError, never overwritten or followed."""
    try:
        descriptor = os.open(name, _FILE_FLAGS, 0o600, dir_fd=folder)
    except FileExistsError as err:
        raise UsageError(f"{name} appeared in the output folder while writing it") from err
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
