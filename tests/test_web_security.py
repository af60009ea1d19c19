"""The review page's security rules, over HTTP (Starlette's TestClient on the real app and
a real store): no session, no story, on every route; anti-forgery tokens; login throttling;
sessions; cookie flags; headers; roles; hostile mail rendered inert."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from conftest import (
    REVIEW_PASSWORD,
    REVIEW_XSS,
    Clock,
    ReviewSite,
    client_for,
    csrf,
    log_in,
    login_token,
)
from starlette.routing import Mount, Route

from intake.store.engine import Store
from story_intake.web.app import build_app, routes
from story_intake.web.settings import ReviewSettings


def every_route(ref: str) -> list[tuple[str, str]]:
    """(method, path) of every route the app has, path parameters filled in."""
    found = []
    for route in routes():
        if isinstance(route, Mount) or not isinstance(route, Route):
            continue
        path = route.path.replace("{ref:str}", ref)
        found += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


def test_web_no_session_no_story_on_every_route(review_site: ReviewSite, site_store: Store,
                                                clock: Clock) -> None:  # fmt: skip
    client = client_for(review_site, site_store, clock)
    ref = review_site.refs["story"]
    paths = [*every_route(ref), ("GET", "/nothing-here"), ("GET", f"/story/{ref}/../x"),
             ("POST", "/nothing-here")]  # fmt: skip
    assert len(paths) > 15
    for method, path in paths:
        if path == "/login":
            continue
        reply = client.request(method, path, data={"theme": "health"})
        if method == "GET":
            assert (reply.status_code, reply.headers["location"]) == (303, "/login"), path
        else:
            assert reply.status_code == 401, path
        for secret in ("My story number", "Jane", "example.net", ref, "ST-"):
            assert secret not in reply.text, (path, secret)


def test_web_every_post_needs_the_sessions_anti_forgery_token(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client = client_for(review_site, site_store, clock)
    assert log_in(client, "ann") == 303
    other = client_for(review_site, site_store, clock, host="192.0.2.9")
    assert log_in(other, "rob") == 303
    stolen = csrf(other)  # a real token, of another session
    posts = [path for method, path in every_route(review_site.refs["withdrawal"])
             if method == "POST" and path != "/login"]  # fmt: skip
    assert len(posts) >= 8
    for path in posts:
        for data in ({}, {"csrf_token": "wrong"}, {"csrf_token": stolen}):
            reply = client.post(path, data={**data, "theme": "health", "kind": "story"})
            assert reply.status_code == 403, (path, data)
    assert client.get("/").status_code == 200  # still signed in: logout was refused too
    assert "review-3@example.org" in {s.story_id for s in site_store.stories.stories()}
    assert site_store.outbox.outbox_states()["review-3@example.org"] == "held"
    # The login form's own token: a cross-site login is refused too.
    fresh = client_for(review_site, site_store, clock)
    reply = fresh.post("/login", data={"username": "ann", "password": REVIEW_PASSWORD})
    assert reply.status_code == 403


def test_web_login_is_throttled_per_account_and_per_address(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    app = build_app(review_site.settings, site_store, clock)
    attacker = client_for(review_site, site_store, clock, host="198.51.100.7", app=app)
    statuses = [log_in(attacker, "ann", "wrong password!") for _ in range(5)]
    assert statuses == [401] * 5
    assert log_in(attacker, "nobody", "wrong password!") == 429  # this address is refused
    # The account is refused from anywhere, even with the right password ...
    elsewhere = client_for(review_site, site_store, clock, host="203.0.113.5", app=app)
    token = login_token(elsewhere)
    first = elsewhere.post("/login", data={"login_token": token, "username": "ann",
                                           "password": REVIEW_PASSWORD})  # fmt: skip
    assert first.status_code == 429 and "Too many attempts" in first.text
    # ... for longer with every try while refused ...
    second = elsewhere.post(
        "/login",
        data={
            "login_token": login_token(elsewhere),
            "username": "ann",
            "password": REVIEW_PASSWORD,
        },
    )
    assert int(second.headers["Retry-After"]) > int(first.headers["Retry-After"]) > 0
    # ... and the other account from another address is not.
    assert log_in(elsewhere, "rob") == 303
    clock.now += timedelta(hours=2)
    assert log_in(client_for(review_site, site_store, clock, app=app), "ann") == 303


def test_web_login_failure_message_is_the_same_for_any_reason(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client = client_for(review_site, site_store, clock)
    texts = []
    for name, password in (("ann", "not her password"), ("nobody", REVIEW_PASSWORD)):
        token = login_token(client)
        reply = client.post("/login", data={"login_token": token, "username": name,
                                            "password": password})  # fmt: skip
        assert reply.status_code == 401
        texts.append(reply.text.replace(token, ""))
    assert len(set(re.sub(r'value="[^"]*"', "", t) for t in texts)) == 1


def test_web_session_is_rotated_at_login_expires_when_idle_and_ends_at_logout(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client = client_for(review_site, site_store, clock)
    assert log_in(client, "ann") == 303
    first = client.cookies.get("session")
    assert first
    assert log_in(client, "ann") == 303  # signing in again: a new id, the old one ended
    second = client.cookies.get("session")
    assert second != first
    replay = client_for(review_site, site_store, clock)
    assert replay.get("/", headers={"cookie": f"session={first}"}).status_code == 303
    assert replay.get("/", headers={"cookie": f"session={second}"}).status_code == 200
    clock.now += timedelta(minutes=29)
    assert client.get("/").status_code == 200
    clock.now += timedelta(minutes=31)  # idle for longer than idle_minutes
    assert client.get("/").status_code == 303
    assert log_in(client, "ann") == 303
    token = csrf(client)
    kept = client.cookies.get("session")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert replay.get("/", headers={"cookie": f"session={kept}"}).status_code == 303


@pytest.mark.parametrize(
    ("review", "secure", "name"),
    [
        (ReviewSettings(base_url="https://review.example.org"), True, "__Host-session"),
        (ReviewSettings(), False, "session"),
        (ReviewSettings(secure_cookies=True), True, "__Host-session"),
    ],
)
def test_web_session_cookie_flags(
    review_site: ReviewSite,
    site_store: Store,
    clock: Clock,
    review: ReviewSettings,
    secure: bool,
    name: str,
) -> None:
    client = client_for(review_site, site_store, clock, review=review)
    token = login_token(client)
    reply = client.post("/login", data={"login_token": token, "username": "ann",
                                        "password": REVIEW_PASSWORD})  # fmt: skip
    cookie = next(c for c in reply.headers.get_list("set-cookie") if c.startswith(name + "="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert ("secure" in flags) is secure


def test_web_security_headers_on_every_response(review_site: ReviewSite, site_store: Store,
                                                clock: Clock) -> None:  # fmt: skip
    client = client_for(review_site, site_store, clock)
    anonymous = [client.get("/login"), client.get("/static/review.js"), client.get("/")]
    assert log_in(client, "ann") == 303
    ref = review_site.refs["story"]
    pages = [
        client.get(p)
        for p in (
            "/",
            f"/story/{ref}",
            "/health",
            "/quarantine",
            "/audit",
            f"/story/{review_site.refs['withdrawal']}/withdrawal",
        )
    ]
    for reply in anonymous + pages:
        csp = reply.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "no-referrer"
    for reply in pages:
        assert reply.status_code == 200
        assert reply.headers["cache-control"] == "no-store"
        # No inline script for the policy to have to allow: every <script> has a src.
        assert not re.search(r"<script(?![^>]*\bsrc=)", reply.text)
        assert not re.search(r"\son[a-z]+\s*=", reply.text)


def test_web_reviewer_is_refused_admin_pages_and_actions(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client = client_for(review_site, site_store, clock)
    assert log_in(client, "rob") == 303
    token, ref = csrf(client), review_site.refs["withdrawal"]
    for path in ("/quarantine", "/audit", f"/story/{ref}/withdrawal"):
        assert client.get(path).status_code == 403, path
    for path in (
        f"/story/{ref}/withdrawal/confirm",
        f"/story/{ref}/withdrawal/reject",
        "/quarantine/requeue",
        "/health/resume",
    ):
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    assert {"review-1@example.org", "review-3@example.org"} <= {
        s.story_id for s in site_store.stories.stories()
    }
    assert site_store.outbox.needs_confirmation() == ["review-3@example.org"]
    assert client.get(f"/story/{ref}").status_code == 200  # a reviewer reads


def test_web_hostile_text_names_and_subjects_are_shown_as_text(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client = client_for(review_site, site_store, clock)
    assert log_in(client, "ann") == 303
    for page in (client.get("/"), client.get(f"/story/{review_site.refs['xss']}")):
        assert page.status_code == 200
        assert REVIEW_XSS not in page.text
        assert "&lt;script&gt;alert(" in page.text
