"""The review page's security: response headers, sessions (expiry, idle timeout), the
anti-forgery token and role checks.

Default deny: the authentication middleware lets through only ``PUBLIC`` paths and static
files; every other path, a route or not, needs a live session, so a route added later is
covered without anyone remembering to protect it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import wraps

from starlette.datastructures import FormData
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from intake.store.accounts import Session
from story_intake.web.context import context_of, session_of

PUBLIC = ("/login",)
STATIC = "/static/"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
Handler = Callable[[Request, FormData, Session], Awaitable[Response]]


def cookie_name(secure: bool) -> str:
    """``__Host-`` when Secure: the browser then refuses it from any other host or path."""
    return "__Host-session" if secure else "session"


class Headers(BaseHTTPMiddleware):
    """The security headers on every response; no-store on all but static files."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith(STATIC):
            response.headers["Cache-Control"] = "no-store"
        return response


class Authenticate(BaseHTTPMiddleware):
    """Every path but ``PUBLIC`` and static files needs a live session: a page asks the
    browser to sign in (303 to /login), anything else is refused (401), with no content."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if path in PUBLIC or path.startswith(STATIC):
            return await call_next(request)
        session = live_session(request)
        if session is None:
            if request.method in ("GET", "HEAD"):
                return RedirectResponse("/login", status_code=303)
            return PlainTextResponse("sign in first", status_code=401)
        request.state.session = session
        return await call_next(request)


def live_session(request: Request) -> Session | None:
    """The request's session when it exists, has not expired and has not sat idle too
    long (an expired one is deleted); marks it used now."""
    ctx = context_of(request)
    review = ctx.settings.review
    session_id = request.cookies.get(cookie_name(review.cookies_secure), "")
    session = ctx.accounts.session(session_id) if session_id else None
    if session is None:
        return None
    now = ctx.clock()
    if now - session.created_at > timedelta(
        hours=review.session_hours
    ) or now - session.seen_at > timedelta(minutes=review.idle_minutes):
        ctx.accounts.end_session(session.id_hash)
        return None
    ctx.accounts.touch_session(session.id_hash, now)
    return session


def forbidden(message: str = "not allowed") -> Response:
    """403 with a short message and nothing else."""
    return PlainTextResponse(message, status_code=403)


def token_matches(given: object, expected: str) -> bool:
    """Constant-time comparison of an anti-forgery token."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given, expected)


def action(role: str = "reviewer") -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A state-changing endpoint: POST only, the session's anti-forgery token in the form
    (403 without it or with a wrong one), and ``role`` (admin: 403 for a reviewer)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            session = session_of(request)
            form = await request.form()
            if not token_matches(form.get("csrf_token"), session.csrf_token):
                return forbidden("missing or wrong anti-forgery token")
            if role == "admin" and session.user.role != "admin":
                return forbidden("this needs an admin")
            return await handler(request, form, session)

        return endpoint

    return wrap


def is_admin(request: Request) -> bool:
    """Whether the signed-in user is an admin."""
    return session_of(request).user.role == "admin"
