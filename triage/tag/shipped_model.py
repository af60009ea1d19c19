"""Tag stage, the trained model shipped inside the package: the first pass after installing
loads it instead of training for half a minute (cold start).

The model is packed as ``model/<key>.tar.gz`` beside this module, where ``key`` is
``model_cache.model_key`` of the repository's training data and the shipped themes.toml: its
spaCy config (``config.cfg``) and its weights and vocabulary (``model.bin``, spaCy's
``to_bytes``). It is read into memory, never unpacked to disk, so a read-only install or a
small file-size limit does not stop it; it is used only when the key matches the data and
settings in use, otherwise the tagger trains as before. The archive is byte-stable (sorted
entries, no times, owners or modes, gzip without a timestamp), so rebuilding it from the same
data gives the same bytes. Stdlib only: ``model_cache`` asks about it before spaCy loads.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "model"
# The one command that rebuilds the shipped model from the repository's data (tests name it).
REBUILD = "make model"
CONFIG, WEIGHTS = "config.cfg", "model.bin"


def shipped_archive(key: str, folder: Path = SHIPPED) -> Path | None:
    """The shipped archive of the model for ``key``, or None when none ships."""
    archive = folder / f"{key}.tar.gz"
    return archive if archive.is_file() else None


def pack(members: Mapping[str, bytes], key: str, folder: Path = SHIPPED) -> Path:
    """Pack ``members`` (name: bytes) into ``folder/<key>.tar.gz``, replacing any other
    shipped model (only one ships: the one for the repository's data). Returns the archive."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(members[name]), 0o600  # times and owners left at 0
            tar.addfile(info, io.BytesIO(members[name]))
    archive = folder / f"{key}.tar.gz"
    # mtime=0: the gzip header carries no time, so the same model packs to the same bytes.
    archive.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))
    for stale in folder.glob("*.tar.gz"):
        if stale != archive:
            stale.unlink()
    return archive


def read(archive: Path) -> dict[str, bytes]:
    """The members of a shipped ``archive``, read into memory."""
    members = {}
    with tarfile.open(archive, mode="r:gz") as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info) if info.isfile() else None
            if data is not None:
                members[info.name] = data.read()
    return members
