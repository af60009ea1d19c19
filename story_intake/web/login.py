"""The review page, signing in and out.

The login form's anti-forgery token is a double-submit cookie (there is no session yet);
failures are throttled per account and per client address (429 with Retry-After) and
always get the same generic message. A successful login always starts a new session id
(any session the browser brought is ended), so a planted id never becomes signed in.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from story_intake.passwords import verify_password
from story_intake.web.context import context_of, new_token, render, session_of
from story_intake.web.security import cookie_name, forbidden, token_matches

LOGIN_COOKIE = "login_token"
GENERIC = "Those details did not work. Check them and try again."
TOO_MANY = "Too many attempts. Wait a while and try again."


async def login_page(request: Request) -> Response:
    """The login form, with an anti-forgery token in a cookie and the form."""
    token = _login_token(request)
    response = render(request, "login.html", {"login_token": token, "message": ""})
    _set_cookie(request, response, LOGIN_COOKIE, token, 600)
    return response


async def login(request: Request) -> Response:
    """Check the name and password; start a new session or refuse (401, 429)."""
    ctx = context_of(request)
    form = await request.form()
    if not token_matches(form.get("login_token"), request.cookies.get(LOGIN_COOKIE, "")):
        return forbidden("missing or wrong anti-forgery token")
    name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
    address = request.client.host if request.client else "unknown"
    keys, now = (f"user:{name.lower()}", f"addr:{address}"), ctx.clock()
    wait = ctx.throttle.retry_after(keys, now)
    if wait:
        ctx.throttle.fail(keys, now)  # trying while refused makes the wait longer
        return _refused(request, TOO_MANY, 429, wait)
    user = ctx.accounts.user(name)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        ctx.throttle.fail(keys, now)
        return _refused(request, GENERIC, 401, 0)
    ctx.throttle.succeed(keys)
    old = request.cookies.get(cookie_name(ctx.settings.review.cookies_secure))
    if old:
        ended = ctx.accounts.session(old)
        if ended is not None:
            ctx.accounts.end_session(ended.id_hash)
    session_id = new_token()
    ctx.accounts.start_session(session_id, user.name, new_token(), now)
    ctx.review.audit(user.name, "login", "", now)
    response = RedirectResponse("/", status_code=303)
    _set_cookie(request, response, cookie_name(ctx.settings.review.cookies_secure), session_id,
                ctx.settings.review.session_hours * 3600)  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    """End the session (POST with its anti-forgery token) and forget the cookie."""
    ctx, session = context_of(request), session_of(request)
    form = await request.form()
    if not token_matches(form.get("csrf_token"), session.csrf_token):
        return forbidden("missing or wrong anti-forgery token")
    ctx.accounts.end_session(session.id_hash)
    ctx.review.audit(session.user.name, "logout", "", ctx.clock())
    response = RedirectResponse("/login", status_code=303)
    secure = ctx.settings.review.cookies_secure
    response.delete_cookie(cookie_name(secure), path="/", secure=secure, httponly=True,
                           samesite="strict")  # fmt: skip
    return response


def _login_token(request: Request) -> str:
    """The browser's login token, or a new one. Kept while it lasts: the browser's other
    requests (a favicon, a second tab) also land on /login and must not invalidate the
    form already shown."""
    token = request.cookies.get(LOGIN_COOKIE, "")
    return token if len(token) == len(new_token()) else new_token()


def _refused(request: Request, message: str, status: int, wait: int) -> Response:
    token = _login_token(request)
    response = render(request, "login.html", {"login_token": token, "message": message},
                      status=status)  # fmt: skip
    _set_cookie(request, response, LOGIN_COOKIE, token, 600)
    if wait:
        response.headers["Retry-After"] = str(wait)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    secure = context_of(request).settings.review.cookies_secure
    response.set_cookie(name, value, max_age=age, path="/", secure=secure, httponly=True,
                        samesite="strict")  # fmt: skip
