"""The review page's shared state: settings, the store and its table groups, the clock, the
login throttle and the templates. The web framework (Starlette) is used in story_intake/web
only; this module is the one place templates are loaded (autoescaped)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from intake.store.accounts import Accounts, Session
from intake.store.engine import Store
from intake.store.review import ReviewRows
from story_intake.app_settings import Settings
from story_intake.web.throttle import Throttle
from triage.reply.render import TEMPLATES


def utc_now() -> datetime:
    """The clock the page runs on (tests give their own)."""
    return datetime.now(UTC)


@dataclass
class Context:
    """Everything a request handler needs."""

    settings: Settings
    store: Store
    clock: Callable[[], datetime] = utc_now
    throttle: Throttle = field(default_factory=Throttle)
    env: Environment = field(init=False)
    accounts: Accounts = field(init=False)
    review: ReviewRows = field(init=False)

    def __post_init__(self) -> None:
        # Autoescape on for every template, whatever its name: mail data is never trusted.
        self.env = Environment(loader=FileSystemLoader(TEMPLATES / "review"),
                               autoescape=select_autoescape(default=True,
                                                            default_for_string=True),
                               undefined=StrictUndefined)  # fmt: skip
        self.accounts = self.store.accounts
        self.review = self.store.review


def context_of(request: Request) -> Context:
    """The app's Context."""
    found: Context = request.app.state.context
    return found


def session_of(request: Request) -> Session:
    """The signed-in session (set by the authentication middleware)."""
    found: Session = request.state.session
    return found


def render(request: Request, name: str, values: Mapping[str, Any], status: int = 200
           ) -> HTMLResponse:  # fmt: skip
    """Render a page; signed-in pages get the user and the anti-forgery token."""
    ctx = context_of(request)
    session: Session | None = getattr(request.state, "session", None)
    common = {"user": session.user if session else None,
              "csrf_token": session.csrf_token if session else "",
              "is_admin": bool(session and session.user.role == "admin")}  # fmt: skip
    html = ctx.env.get_template(name).render({**common, **values})
    return HTMLResponse(html, status_code=status)


def new_token() -> str:
    """A random token for a session id or an anti-forgery token."""
    return secrets.token_urlsafe(32)
