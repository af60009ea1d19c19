"""The delegated OAuth2 token cache file: MSAL's serialized cache (the refresh token) and what
the provider said about when that refresh token expires. Imports only ``intake``.

The file is owner-only (0600) and replaced atomically (a temporary file in the same folder,
fsynced, then renamed over the old one), so a crash or a second writer never leaves half a
cache: a refresh token the provider has already rotated away would be lost for good.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from intake.errors import TokenError

FORMAT = 1  # of the wrapper around MSAL's cache


@dataclass(frozen=True, slots=True)
class CacheFile:
    """What the file holds: MSAL's serialized cache (secret) and the refresh token's expiry."""

    msal_cache: str
    refresh_expires_at: datetime | None = None

    def __repr__(self) -> str:  # the cache holds tokens: never shown
        return f"CacheFile(refresh_expires_at={self.refresh_expires_at!r})"


def read_cache(path: Path) -> CacheFile | None:
    """The cache at ``path``; None when there is none yet. TokenError (naming the file, never
    its contents) when it cannot be read or is not a cache this program wrote."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise TokenError(f"oauth2 token cache {path} cannot be read: {err.strerror}") from None
    try:
        data = json.loads(text)
        expires = data.get("refresh_expires_at")
        return CacheFile(str(data["msal_cache"]),
                         datetime.fromisoformat(expires) if expires else None)  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TokenError(
            f"oauth2 token cache {path} is not a token cache: run `story-intake authorize` again"
        ) from None


def write_cache(path: Path, cache: CacheFile) -> None:
    """Replace the file at ``path`` with ``cache``: 0600, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    expires = cache.refresh_expires_at.isoformat() if cache.refresh_expires_at else None
    body = json.dumps({"format": FORMAT, "refresh_expires_at": expires,
                       "msal_cache": cache.msal_cache})  # fmt: skip
    # mkstemp creates the file 0600 whatever the umask, before any byte is written.
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX: fsync the folder)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # the rename happened; only its durability across a power cut is unknown
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
