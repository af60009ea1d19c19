"""Passwords of the review page's accounts: argon2id (argon2-cffi), wrapped here only."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from intake.errors import UsageError

MIN_LENGTH = 12
# One hash to check against when the account does not exist, so a wrong name takes as long
# as a wrong password and the timing says nothing about which names exist.
_HASHER = PasswordHasher()  # argon2id with the library's current (RFC 9106 low-memory) defaults
_DUMMY = _HASHER.hash("no such account: a fixed dummy password")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``; UsageError when it is too short to keep."""
    if len(password) < MIN_LENGTH:
        raise UsageError(f"the password must be at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored_hash`` (None: no such account, always False
    after the same work)."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
