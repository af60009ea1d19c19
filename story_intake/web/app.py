"""The review page: the Starlette application (routes, middleware, static files).

Imports the web framework (Starlette) and is imported only by ``story_intake.web.serve`` and
the tests. Every route but ``/login`` and ``/static`` sits behind ``Authenticate``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.web import actions, login, pages
from story_intake.web.context import Context, utc_now
from story_intake.web.security import Authenticate, Headers

STATIC = Path(__file__).resolve().parent / "static"


def routes() -> list[Route | Mount]:
    """Every route of the page."""
    story = "/story/{ref:str}"
    return [
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/", pages.queue_page, methods=["GET"]),
        Route(story, pages.story_page, methods=["GET"]),
        Route(f"{story}/themes", actions.correct_themes, methods=["POST"]),
        Route(f"{story}/kind", actions.correct_kind, methods=["POST"]),
        Route(f"{story}/reviewed", actions.mark_reviewed, methods=["POST"]),
        Route(f"{story}/release", actions.release_reply, methods=["POST"]),
        Route(f"{story}/withdrawal", pages.withdrawal_page, methods=["GET"]),
        Route(f"{story}/withdrawal/confirm", actions.confirm_withdrawal, methods=["POST"]),
        Route(f"{story}/withdrawal/reject", actions.reject_withdrawal, methods=["POST"]),
        Route("/quarantine", pages.quarantine_page, methods=["GET"]),
        Route("/quarantine/requeue", actions.requeue_all, methods=["POST"]),
        Route("/health", pages.health_page, methods=["GET"]),
        Route("/agencies", pages.agencies_page, methods=["GET"]),
        Route("/health/resume", actions.resume_sending, methods=["POST"]),
        Route("/audit", pages.audit_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def build_app(settings: Settings, store: Store,
              clock: Callable[[], datetime] = utc_now) -> Starlette:  # fmt: skip
    """The review page on ``store`` (kept open for the app's life)."""
    app = Starlette(routes=routes(), middleware=[Middleware(Headers), Middleware(Authenticate)])
    app.state.context = Context(settings, store, clock)
    return app
