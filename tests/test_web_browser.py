"""The review page in a real browser: Debian's chromium driven by Playwright, against
``story-intake serve`` started as a subprocess on loopback. Keyboard-only use, labelled
controls, and hostile mail shown as text with no script run.

``REVIEW_SCREENSHOTS=1`` also writes the queue and a story page into docs/ for the README.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    REVIEW_PASSWORD,
    REVIEW_XSS,
    ReviewSite,
    free_port,
    start_pipeline,
    wait_for,
)
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from intake.store.engine import Store

pytestmark = pytest.mark.slow
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture
def served(review_site: ReviewSite) -> Iterator[str]:
    port = free_port()
    server = start_pipeline(review_site.config, "serve", "--port", str(port))
    try:
        import socket

        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 30, "the review page to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian package chromium is needed: make test installs it as root"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def new_page(browser: Browser) -> Page:
    page = browser.new_page(viewport={"width": 1100, "height": 900})

    def no_dialogs(dialog: Dialog) -> None:  # an alert() would mean a script from mail ran
        raise AssertionError(f"a dialog opened: {dialog.message}")

    page.on("dialog", no_dialogs)
    return page


def sign_in(page: Page, base: str, name: str) -> None:
    """Sign in with the keyboard only: focus starts in the name field."""
    page.goto(f"{base}/")
    assert page.url.endswith("/login")
    # Keys go where the focus is: wait for it (autofocus, then Tab) so none are typed early.
    page.wait_for_function("document.activeElement?.id === 'username'")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.wait_for_function("document.activeElement?.id === 'password'")
    page.keyboard.type(REVIEW_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def shot(page: Page, name: str) -> None:
    if os.environ.get("REVIEW_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / name), full_page=True)


def test_web_browser_sign_in_and_correct_a_theme_with_the_keyboard(
    served: str, browser: Browser, review_site: ReviewSite
) -> None:
    page = new_page(browser)
    sign_in(page, served, "rob")
    assert page.get_by_role("heading", name=re.compile("Requests awaiting confirmation"))
    shot(page, "review-queue.png")
    ref = review_site.refs["story"]
    page.get_by_role("link", name=ref).click()
    page.wait_for_url(f"{served}/story/{ref}")
    for name in ("health", "policing", "elderly_care", "duplication"):  # labelled controls
        assert page.get_by_role("checkbox", name=re.compile(name)).count() == 1
    assert page.get_by_role("combobox", name="Kind").count() == 1
    policing = page.get_by_role("checkbox", name=re.compile("policing"))
    was = policing.is_checked()
    shot(page, "review-story.png")
    page.keyboard.press("2")
    assert policing.is_checked() is not was
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"saved=themes"))
    with Store(review_site.settings.store) as store:
        ((_, triage),) = [
            (s, t) for s, t in store.stories.triaged() if s.story_id == "review-1@example.org"
        ]
        assert triage is not None and ("policing" in triage.themes) is not was
    page.get_by_role("button", name="Undo").click()
    page.wait_for_load_state()
    assert page.get_by_role("checkbox", name=re.compile("policing")).is_checked() is was


def test_web_browser_admin_confirms_a_withdrawal_and_export_has_no_story(
    served: str, browser: Browser, review_site: ReviewSite
) -> None:
    page = new_page(browser)
    sign_in(page, served, "ann")
    ref = review_site.refs["withdrawal"]
    page.goto(f"{served}/story/{ref}")
    page.get_by_role("link", name=re.compile("Confirm")).click()
    assert review_site.refs["story"] in page.content()  # what erase will remove, first
    page.get_by_role("button", name="Confirm and erase").click()
    page.wait_for_url(re.compile(r"saved=withdrawn"))
    done = subprocess.run(
        [sys.executable, "run_pipeline.py", "--config", str(review_site.config), "export"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    exported = [json.loads(line)["story_id"] for line in done.stdout.splitlines()]
    assert "review-1@example.org" not in exported and "review-3@example.org" in exported


def test_web_browser_reviewer_releases_a_held_reply_and_is_refused_admin_pages(
    served: str, browser: Browser, review_site: ReviewSite
) -> None:
    page = new_page(browser)
    sign_in(page, served, "rob")
    page.goto(f"{served}/story/{review_site.refs['held']}")
    page.get_by_role("button", name="Release the held reply").click()
    page.wait_for_url(re.compile(r"saved=released"))
    with Store(review_site.settings.store) as store:
        assert store.outbox.outbox_states()["review-4@example.org"] == "pending"
    history = page.locator("#reply-history").inner_text()
    assert "interrupted mid-send" in history and "released by a person" in history
    assert page.get_by_role("link", name="Quarantine").count() == 0
    refused = page.goto(f"{served}/quarantine")
    assert refused is not None and refused.status == 403
    refused = page.goto(f"{served}/story/{review_site.refs['withdrawal']}/withdrawal")
    assert refused is not None and refused.status == 403


def test_web_browser_script_in_a_story_shows_as_text(
    served: str, browser: Browser, review_site: ReviewSite
) -> None:
    page = new_page(browser)
    sign_in(page, served, "rob")
    assert REVIEW_XSS in page.inner_text("main")  # the sender's name, as text
    page.goto(f"{served}/story/{review_site.refs['xss']}")
    assert REVIEW_XSS in page.inner_text("#story-text")
    assert page.locator("main script").count() == 0


UNNAMED = re.compile(r"^\s*- (checkbox|textbox|combobox|button|link)(?: \[[^\]]*\])?:?\s*$", re.M)


def test_web_browser_every_control_is_named_in_the_accessibility_tree(
    served: str, browser: Browser, review_site: ReviewSite
) -> None:
    page = new_page(browser)
    page.goto(f"{served}/login")
    pages = {"login": page.locator("body").aria_snapshot()}
    sign_in(page, served, "ann")
    for name, path in (
        ("queue", "/"),
        ("story", f"/story/{review_site.refs['withdrawal']}"),
        ("health", "/health"),
        ("quarantine", "/quarantine"),
    ):
        page.goto(served + path)
        pages[name] = page.locator("body").aria_snapshot()
    for name, tree in pages.items():
        assert not UNNAMED.search(tree), (name, tree)
    assert 'checkbox "1. health' in pages["story"] and 'combobox "Kind"' in pages["story"]
    assert 'textbox "Reference"' in pages["queue"] and 'combobox "Theme"' in pages["queue"]


def test_web_browser_agency_pair_on_health_leads_to_its_stories_with_agencies_marked(
    served: str, browser: Browser, review_site: ReviewSite
) -> None:
    page = new_page(browser)
    sign_in(page, served, "rob")
    page.goto(f"{served}/health")
    pair = page.locator("#agency-pairs a").first
    title = pair.inner_text()
    first, second = title.split(" + ")
    pair.click()
    page.wait_for_url(re.compile(r"/agencies\?"))
    assert page.get_by_role("heading", name=re.compile(re.escape(title.replace(" + ", " and "))))
    story = page.locator("main li a").first
    story.click()
    page.wait_for_url(re.compile(r"/story/ST-"))
    named = page.inner_text("#agencies")
    assert first in named and second in named
    marks = page.locator("#story-text mark.agency")
    assert marks.count() >= 2 and marks.first.is_visible()
    tree = page.locator("body").aria_snapshot()
    assert not UNNAMED.search(tree), tree
