"""Tag stage, the trained model shipped inside the package: the first pass after installing
loads it instead of training for half a minute (cold start).

The model is a spaCy model folder packed as ``model/<key>.tar.gz`` beside this module, where
``key`` is ``model_cache.model_key`` of the repository's training data and the shipped
themes.toml. It is used only when the key matches the data and settings in use; otherwise the
tagger trains as before. The archive is byte-stable (sorted entries, no times, owners or
modes, gzip without a timestamp), so rebuilding it from the same data gives the same bytes.
Stdlib only: ``model_cache`` asks about it before spaCy loads.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "model"
# The one command that rebuilds the shipped model from the repository's data (tests name it).
REBUILD = "make model"


def shipped_archive(key: str, folder: Path = SHIPPED) -> Path | None:
    """The shipped archive of the model for ``key``, or None when none ships."""
    archive = folder / f"{key}.tar.gz"
    return archive if archive.is_file() else None


def pack(model_dir: Path, key: str, folder: Path = SHIPPED) -> Path:
    """Pack the model folder ``model_dir`` into ``folder/<key>.tar.gz``, replacing any other
    shipped model (only one ships: the one for the repository's data). Returns the archive."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(model_dir).as_posix())
            info.size, info.mode = path.stat().st_size, 0o600  # times and owners left at 0
            with path.open("rb") as data:
                tar.addfile(info, data)
    archive = folder / f"{key}.tar.gz"
    # mtime=0: the gzip header carries no time, so the same model packs to the same bytes.
    archive.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))
    for stale in folder.glob("*.tar.gz"):
        if stale != archive:
            stale.unlink()
    return archive


def unpack(archive: Path, path: Path) -> None:
    """Unpack the shipped ``archive`` into the new model folder ``path``, written aside and
    renamed into place like a trained model, so a killed run leaves nothing half written
    where the next would load it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial_dir = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=path.parent))
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            tar.extractall(partial_dir, filter="data")  # no links, no paths outside it
        partial_dir.rename(path)
    except OSError:  # another run unpacked it first: keep theirs
        shutil.rmtree(partial_dir, ignore_errors=True)
