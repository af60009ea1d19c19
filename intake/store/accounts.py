"""Store stage, the review page's accounts and sessions. SQLAlchemy Core only.

A table group composed beside ``Store`` (``store.accounts``). Passwords arrive here
already hashed (``story_intake.passwords``); a session is found by the sha256 of its id, so
the table alone opens no session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from intake.store import schema
from intake.store.group import TableGroup

ROLES = ("reviewer", "admin")


@dataclass(frozen=True, slots=True)
class User:
    """One account of the review page."""

    name: str
    role: str
    password_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session, as stored (the id itself is only ever in the cookie)."""

    id_hash: str
    user: User
    csrf_token: str
    created_at: datetime
    seen_at: datetime


def hash_session_id(session_id: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class Accounts(TableGroup):
    """Users and their sessions."""

    def add_user(self, name: str, role: str, password_hash: str, now: datetime) -> bool:
        """Add an account; False when the name is taken."""
        if self.user(name) is not None:
            return False
        row = {"name": name, "role": role, "password_hash": password_hash, "created_at": now}
        with self._begin() as conn:
            conn.execute(insert(schema.users), [row])
        return True

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace a password hash and end the user's sessions; False when no such user."""
        u = schema.users
        with self._begin() as conn:
            done = conn.execute(update(u).where(u.c.name == name)
                                .values(password_hash=password_hash)).rowcount  # fmt: skip
            conn.execute(delete(schema.sessions).where(schema.sessions.c.user_name == name))
        return bool(done)

    def remove_user(self, name: str) -> bool:
        """Remove an account and its sessions; False when no such user."""
        u = schema.users
        with self._begin() as conn:
            conn.execute(delete(schema.sessions).where(schema.sessions.c.user_name == name))
            return bool(conn.execute(delete(u).where(u.c.name == name)).rowcount)

    def user(self, name: str) -> User | None:
        """The account called ``name``, if any."""
        with self._connect() as conn:
            row = conn.execute(select(schema.users).where(schema.users.c.name == name)).first()
        return None if row is None else User(row.name, row.role, row.password_hash, row.created_at)

    def users(self) -> list[User]:
        """Every account, by name."""
        with self._connect() as conn:
            found = conn.execute(select(schema.users).order_by(schema.users.c.name)).all()
        return [User(r.name, r.role, r.password_hash, r.created_at) for r in found]

    def start_session(self, session_id: str, user: str, csrf_token: str, now: datetime) -> None:
        """Record a new session (its id hashed)."""
        row = {"id_hash": hash_session_id(session_id), "user_name": user,
               "csrf_token": csrf_token, "created_at": now, "seen_at": now}  # fmt: skip
        with self._begin() as conn:
            conn.execute(insert(schema.sessions), [row])

    def session(self, session_id: str) -> Session | None:
        """The session with this id and its user, if both exist."""
        s, u = schema.sessions, schema.users
        query = (select(s, u.c.role, u.c.password_hash, u.c.created_at.label("user_at"))
                 .join(u, u.c.name == s.c.user_name)
                 .where(s.c.id_hash == hash_session_id(session_id)))  # fmt: skip
        with self._connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        user = User(row.user_name, row.role, row.password_hash, row.user_at)
        return Session(row.id_hash, user, row.csrf_token, row.created_at, row.seen_at)

    def touch_session(self, id_hash: str, now: datetime) -> None:
        """The session was used now (the idle timeout counts from here)."""
        s = schema.sessions
        with self._begin() as conn:
            conn.execute(update(s).where(s.c.id_hash == id_hash).values(seen_at=now))

    def end_session(self, id_hash: str) -> None:
        """Forget one session (logout, expiry, or rotation at login)."""
        s = schema.sessions
        with self._begin() as conn:
            conn.execute(delete(s).where(s.c.id_hash == id_hash))
