"""The review page over HTTP for what issue 20 names and no other test covered: the story
page's quoted history, signature and footer folded away (``<details>``, closed) and apart from
the person's own words, its review reasons, its themes pre-selected with their scores, and the
Health page's failure counts above 0.
Real parts: a Maildir run through the pipeline, IMAP and SMTP ports nothing answers."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import timedelta

from conftest import (
    Clock,
    ReviewSite,
    client_for,
    free_port,
    log_in,
    seed_maildir,
    story_message,
)
from starlette.testclient import TestClient

from intake.sources.imap import ImapSettings
from intake.store.engine import Store
from story_intake.jobs import poll_job
from story_intake.pipeline import run_once
from triage.reply.policy import reference
from triage.reply.settings import SmtpSettings
from triage.tag.tagger import Tagger

OWN = (
    "My GP surgery and the council never shared my care plan, so I told the whole story "
    "three times to three different people over two months. Nobody wrote any of it down."
)
SIGNATURE = "-- \nSam Example <b>SIG-MARK</b>\n07700 900123"
FOOTER = "This email and any attachments are confidential and intended solely for the addressee."
QUOTED = ("On Mon, 23 Nov 2026 at 10:00, Stories <stories@example.org> wrote:\n"
          "> Thank you for writing to us QUOTE-MARK.")  # fmt: skip


def signed_in(site: ReviewSite, store: Store, clock: Clock) -> TestClient:
    client = client_for(site, store, clock)
    assert log_in(client, "rob") == 303
    return client


def folded(page: str, summary: str) -> str | None:
    """The text of the ``<details>`` block headed ``summary``; None when there is none (or it
    is open)."""
    found = re.search(rf'<details><summary>{summary}</summary><div class="story-text">'
                      r"(.*?)</div></details>", page, re.DOTALL)  # fmt: skip
    return html.unescape(found.group(1)) if found else None


def own_words(page: str) -> str:
    found = re.search(r'<div class="story-text" id="story-text">(.*?)</div>', page, re.DOTALL)
    assert found
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def test_web_story_parts_history_signature_and_footer_fold_apart_from_the_words(
    review_site: ReviewSite, site_store: Store, clock: Clock, tagger: Tagger
) -> None:
    body = f"{OWN}\n\n{SIGNATURE}\n\n{FOOTER}\n\n{QUOTED}\n"
    message = story_message(30, message_id="<parts-30@example.org>", body=body)
    seed_maildir(review_site.settings.mailbox.maildir, message)  # type: ignore[union-attr]
    run_once(review_site.settings, clock.now, tagger=tagger)
    client = signed_in(review_site, site_store, clock)

    page = client.get(f"/story/{reference('parts-30@example.org')}").text

    assert own_words(page).strip() == OWN
    assert folded(page, "Quoted history") == QUOTED
    assert folded(page, "Signature") == SIGNATURE
    assert folded(page, "Footer") == FOOTER
    assert "<b>SIG-MARK</b>" not in page  # the sender's markup is text, not markup
    assert "<details open" not in page  # folded until someone opens them
    # A story with none of them shows no empty folds.
    plain = client.get(f"/story/{review_site.refs['story']}").text
    assert "<details>" not in plain


def test_web_story_parts_review_reasons_listed_and_none_said(
    review_site: ReviewSite, site_store: Store, clock: Clock, tagger: Tagger
) -> None:
    short = story_message(31, message_id="<parts-31@example.org>", body="Nobody told me.")
    long = story_message(32, message_id="<parts-32@example.org>",
                         body=f"{OWN} The police and my GP never talked either, and the "
                         "school heard about it from me, not from them.")  # fmt: skip
    seed_maildir(review_site.settings.mailbox.maildir, short, long)  # type: ignore[union-attr]
    run_once(review_site.settings, clock.now, tagger=tagger)
    client = signed_in(review_site, site_store, clock)
    triage = {s.story_id: t for s, t in site_store.stories.triaged() if t}

    for story_id in ("parts-31@example.org", "parts-32@example.org"):
        page = client.get(f"/story/{reference(story_id)}").text
        found = re.search(r"<dt>Review reasons</dt><dd>([^<]*)</dd>", page)
        assert found
        reasons = triage[story_id].review_reasons
        assert found.group(1) == (", ".join(reasons) if reasons else "none")
    assert "short_text" in triage["parts-31@example.org"].review_reasons
    assert triage["parts-32@example.org"].review_reasons == ()  # the "none" case was shown


def test_web_story_parts_health_counts_failed_polls_and_sends(
    review_site: ReviewSite, site_store: Store, clock: Clock, tagger: Tagger
) -> None:
    settings = review_site.settings
    # A mailbox at a port nothing answers: each poll fails to connect.
    dead = ImapSettings(host="127.0.0.1", port=free_port(), security="none",
                        username="team@example.org", password="x", connect_timeout=2)  # fmt: skip
    failing = dataclasses.replace(settings, mailbox=dead)
    assert poll_job(failing, clock.now)
    assert poll_job(failing, clock.now + timedelta(hours=1))  # after the backoff
    # A relay nothing answers: a new story's acknowledgement cannot be handed over.
    relay = SmtpSettings(host="127.0.0.1", port=free_port(), security="none", timeout=2,
                         from_address="stories@example.org")  # fmt: skip
    message = story_message(33, message_id="<parts-33@example.org>",
                            sender="Nia <nia@example.net>")  # fmt: skip
    seed_maildir(settings.mailbox.maildir, message)  # type: ignore[union-attr]
    run_once(dataclasses.replace(settings, smtp=relay), clock.now, tagger=tagger)
    client = signed_in(review_site, site_store, clock)

    health = client.get("/health").text

    assert "<dt>Failed polls in a row</dt><dd>2</dd>" in health
    sending = site_store.worker.send_health().failures
    assert sending > 0
    assert f"<dt>Sending failures in a row</dt><dd>{sending}</dd>" in health


def test_web_story_parts_tags_preselected_with_their_scores(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client = signed_in(review_site, site_store, clock)
    triage = {s.story_id: t for s, t in site_store.stories.triaged() if t}["review-2@example.org"]
    assert triage.themes and len(triage.themes) < len(triage.scores)  # some on, some off

    page = client.get(f"/story/{review_site.refs['xss']}").text

    for name, score in triage.scores:
        box = re.search(rf'<input type="checkbox" id="theme-{name}"[^>]*>', page)
        assert box, name
        assert ("checked" in box.group(0)) is (name in triage.themes), name
        assert re.search(rf'for="theme-{name}">\d\. {name} <span class="count">\(score '
                         rf"{score:.2f}\)</span>", page), name  # fmt: skip
