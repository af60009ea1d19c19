"""The review page's pages over HTTP, for what issue 20 names and no other test covered: the
queue's filters (theme, kind, date) and its urgent section, the session's whole lifetime, the
Quarantine page and its requeue (admin), and Health's last poll, held replies and reply
breaker, resumed by an admin."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

from conftest import Clock, ReviewSite, client_for, csrf, log_in, seed_maildir, story_message
from starlette.testclient import TestClient

from intake.records import MailboxState, Quarantined, RawMessage
from intake.store.engine import Store
from story_intake.jobs import poll_job
from story_intake.pipeline import run_once
from triage.reply.policy import reference
from triage.tag.tagger import Tagger


def signed_in(site: ReviewSite, store: Store, clock: Clock, name: str) -> tuple[TestClient, str]:
    client = client_for(site, store, clock)
    assert log_in(client, name) == 303
    return client, csrf(client)


def listed(client: TestClient, site: ReviewSite, **query: str) -> set[str]:
    """The site's references the queue lists under ``query``."""
    page = client.get("/", params=query).text
    return {ref for ref in site.refs.values() if f"/story/{ref}" in page}


def test_web_pages_queue_filters_by_theme_kind_and_date(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, _ = signed_in(review_site, site_store, clock, "rob")
    triaged = [(reference(s.story_id), t) for s, t in site_store.stories.triaged() if t]
    assert listed(client, review_site) == set(review_site.refs.values())
    policing = {ref for ref, t in triaged if "policing" in t.themes}
    assert review_site.refs["xss"] in policing and len(policing) < len(triaged)
    assert listed(client, review_site, theme="policing") == policing
    assert listed(client, review_site, kind="request:withdrawal") == {
        review_site.refs["withdrawal"]
    }
    today = clock.now.date()
    assert listed(client, review_site, since=today.isoformat()) == set(review_site.refs.values())
    assert listed(client, review_site, since=(today + timedelta(days=1)).isoformat()) == set()
    assert listed(client, review_site, since="not a date") == set(review_site.refs.values())


def test_web_pages_queue_shows_crisis_wording_after_requests_and_before_needs_review(
    review_site: ReviewSite, site_store: Store, clock: Clock, tagger: Tagger
) -> None:
    crisis = story_message(20, message_id="<crisis-20@example.org>",
                           body="My GP and the police never talked and I do not feel safe "
                           "tonight, nobody has read what I told them.")  # fmt: skip
    seed_maildir(review_site.settings.mailbox.maildir, crisis)  # type: ignore[union-attr]
    run_once(review_site.settings, clock.now, tagger=tagger)
    client, _ = signed_in(review_site, site_store, clock, "rob")
    page = client.get("/").text
    urgent = reference("crisis-20@example.org")
    assert page.index("Requests awaiting confirmation") < page.index(review_site.refs["withdrawal"])
    assert page.index(review_site.refs["withdrawal"]) < page.index("Urgent") < page.index(urgent)
    assert page.index(urgent) < page.index("Needs review")


def test_web_pages_session_ends_after_its_lifetime_however_active(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, _ = signed_in(review_site, site_store, clock, "rob")
    started = clock.now
    while clock.now - started < timedelta(hours=11, minutes=50):  # never idle 30 minutes
        clock.now += timedelta(minutes=20)
        assert client.get("/").status_code == 200
    clock.now = started + timedelta(hours=12, minutes=1)  # [review] session_hours = 12
    reply = client.get("/")
    assert reply.status_code == 303 and reply.headers["location"].startswith("/login")


def test_web_pages_admin_sees_the_quarantine_and_requeues_it(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    raw = RawMessage("INBOX", 7, 99, clock.now, 3, b"bad")
    site_store.stories.commit_batch(MailboxState("INBOX", 7), 99, [],
                                    [Quarantined(raw, "parse", "ParseError: x", "")],
                                    clock.now)  # fmt: skip
    client, token = signed_in(review_site, site_store, clock, "ann")
    page = client.get("/quarantine").text
    assert re.search(r"<td>parse</td><td>ParseError: x</td><td>\d+</td>", page)
    assert 'Quarantine <span class="count">(1)</span>' in page
    reply = client.post("/quarantine/requeue", data={"csrf_token": token})
    assert reply.status_code == 303 and reply.headers["location"] == "/quarantine"
    # Parsed this time (mail-parser keeps even a bare line as a message): stored, and the
    # audit log names what was requeued, as counts only.
    assert site_store.quarantine.quarantined() == []
    assert next(e.action for e in site_store.review.audit_entries()) == "requeue:1/1"
    assert "(0)" in client.get("/quarantine").text


def test_web_pages_health_shows_held_replies_and_an_admin_resumes_the_breaker(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, token = signed_in(review_site, site_store, clock, "ann")
    health = client.get("/health").text
    # The reply a crash interrupted and the request awaiting confirmation.
    assert re.search(r"<dt>Held replies</dt><dd>2</dd>", health)
    assert re.search(r"<dt>Last successful poll</dt><dd>never</dd>", health)
    assert re.search(r"<dt>Reply breaker</dt><dd>closed</dd>", health)
    assert "Resume sending" not in health
    # A reply released, then the worker's poll with a cap of none an hour: the breaker trips.
    assert client.post(f"/story/{review_site.refs['held']}/release",
                       data={"csrf_token": token}).status_code == 303  # fmt: skip
    settings = review_site.settings
    paused = dataclasses.replace(settings.acknowledgement, max_per_hour=0)
    polled_at = datetime.now(UTC)
    assert poll_job(dataclasses.replace(settings, acknowledgement=paused), polled_at)
    health = client.get("/health").text
    assert re.search(r"<dt>Held replies</dt><dd>1</dd>", health)
    shown = f"<dt>Last successful poll</dt><dd>{polled_at:%Y-%m-%d %H:%M}</dd>"
    assert shown in health and "<dt>Failed polls in a row</dt><dd>0</dd>" in health
    assert "<dd>open: sending stopped" in health and "Resume sending" in health
    assert client.post("/health/resume", data={"csrf_token": token}).status_code == 303
    assert re.search(r"<dt>Reply breaker</dt><dd>closed</dd>", client.get("/health").text)
    assert site_store.worker.breaker().tripped_at is None
    assert next(e.action for e in site_store.review.audit_entries()) == "resume"
