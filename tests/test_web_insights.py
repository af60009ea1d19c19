"""The review page's insights: a story's agencies (evidence marked), agency pairs in the last
30 days' duplication stories on Health (the digest's pairing) with their stories, the reply
history, and the OAuth2 token's expiry on Health."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import timedelta

from conftest import (
    Clock,
    ReviewSite,
    SmtpSink,
    client_for,
    csrf,
    log_in,
    seed_maildir,
    story_message,
)
from starlette.testclient import TestClient
from test_agencies import GP_HOSPITAL, GP_HOSPITAL_POLICE

from intake.sources.imap import ImapSettings
from intake.store.engine import Store
from story_intake.pipeline import run_once
from triage.reply.deliver import acknowledge
from triage.reply.policy import reference
from triage.reply.settings import SmtpSettings
from triage.tag.tagger import Tagger


def signed_in(site: ReviewSite, store: Store, clock: Clock) -> tuple[TestClient, str]:
    client = client_for(site, store, clock)
    assert log_in(client, "rob") == 303
    return client, csrf(client)


def add_duplication_stories(site: ReviewSite, clock: Clock, tagger: Tagger) -> dict[str, str]:
    """Three hand-written duplication stories: two name the GP and the hospital (one also the
    police), one the school and children's services. Returns name -> reference."""
    texts = {
        "gp_hospital": GP_HOSPITAL,
        "three": GP_HOSPITAL_POLICE,
        "school": "The school and children's services held separate meetings about my "
        "daughter and I repeated the same story to both, twice in one week.",
    }
    messages = [story_message(10 + n, message_id=f"<pair-{n}@example.org>", body=text)
                for n, text in enumerate(texts.values())]  # fmt: skip
    seed_maildir(site.settings.mailbox.maildir, *messages)  # type: ignore[union-attr]
    run_once(site.settings, clock.now, tagger=tagger)
    return {name: reference(f"pair-{n}@example.org") for n, name in enumerate(texts)}


def test_web_insights_story_page_shows_its_agencies_with_evidence_marked(
    review_site: ReviewSite, site_store: Store, clock: Clock, tagger: Tagger
) -> None:
    refs = add_duplication_stories(review_site, clock, tagger)
    client, _ = signed_in(review_site, site_store, clock)
    page = client.get(f"/story/{refs['three']}").text
    agencies = page.split('id="agencies">', 1)[1].split("</dd>", 1)[0]
    assert {"police", "hospital", "gp practice"} <= {a.split(" (")[0].strip()
                                                     for a in agencies.split(", ")}  # fmt: skip
    # Each agency's own words are marked, told apart from theme evidence.
    assert re.search(r'<mark title="policing, agency: police" class="agency">police</mark>', page)
    assert re.search(r'<mark title="[^"]*agency: gp practice" class="agency">GP practice</mark>',
                     page)  # fmt: skip


def pair_rows(client: TestClient) -> list[tuple[str, str, int]]:
    """(link, title, count) of each pair the Health page lists."""
    health = client.get("/health").text
    table = health.split('id="agency-pairs"', 1)[1].split("</table>", 1)[0]
    found = re.findall(r'<a href="([^"]+)">([^<]+)</a></td><td>(\d+)</td>', table)
    return [(html.unescape(link), title, int(count)) for link, title, count in found]


def test_web_insights_health_lists_agency_pairs_linking_to_their_stories(
    review_site: ReviewSite, site_store: Store, clock: Clock, tagger: Tagger
) -> None:
    client, _ = signed_in(review_site, site_store, clock)
    before = {title: count for _, title, count in pair_rows(client)}
    refs = add_duplication_stories(review_site, clock, tagger)
    rows = pair_rows(client)
    added = {title: count - before.get(title, 0) for _, title, count in rows}
    # The digest's pairing: one count per story for each pair it names.
    assert added["gp practice + hospital"] == 2
    assert added["hospital + police"] == added["gp practice + police"] == 1
    assert added["childrens services + school"] == 1
    link = next(link for link, title, _ in rows if title == "gp practice + hospital")
    listed = client.get(link).text
    assert refs["gp_hospital"] in listed and refs["three"] in listed
    assert refs["school"] not in listed
    # Outside the 30-day window the pairs are gone.
    clock.now += timedelta(days=31)
    later, _ = signed_in(review_site, site_store, clock)  # the old session has timed out
    assert pair_rows(later) == []


def history_rows(client: TestClient, ref: str) -> list[tuple[str, str, str]]:
    """(state, detail, who) of each line of the story page's reply history, in page order."""
    page = client.get(f"/story/{ref}").text
    table = page.split('id="reply-history"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>[^<]+</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>",
                      table)  # fmt: skip
    return [(html.unescape(state), html.unescape(detail), who) for state, detail, who in rows]


def test_web_insights_story_page_shows_the_reply_history(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, token = signed_in(review_site, site_store, clock)
    ref = review_site.refs["held"]
    before = client.get(f"/story/{ref}").text
    assert "Attempts: 0" in before and "are not shown" not in before
    assert history_rows(client, ref) == [
        ("pending", "decided: send", "pipeline"),
        ("sending", "", "pipeline"),
        ("held", "interrupted mid-send: check before releasing", "pipeline"),
    ]
    clock.now += timedelta(minutes=5)
    assert client.post(f"/story/{ref}/release", data={"csrf_token": token}).status_code == 303
    # Who released it (the audit log), then the state that made, by the same person.
    assert history_rows(client, ref)[3:] == [
        ("", "release reply", "rob"),
        ("pending", "released by a person", "rob"),
    ]


def test_web_insights_story_page_lists_queued_held_released_retried_and_sent(
    review_site: ReviewSite, site_store: Store, clock: Clock, smtp_sink: SmtpSink
) -> None:
    client, token = signed_in(review_site, site_store, clock)
    ref = review_site.refs["held"]
    clock.now += timedelta(minutes=5)
    assert client.post(f"/story/{ref}/release", data={"csrf_token": token}).status_code == 303
    relay = SmtpSettings(host=smtp_sink.host, port=smtp_sink.port, security="none",
                         pickup_dir="")  # fmt: skip
    settings = review_site.settings
    smtp_sink.fail_next(451)  # the first attempt is put off by the server, the retry goes
    for later in (timedelta(minutes=6), timedelta(minutes=20)):
        acknowledge(site_store, clock.now + later, settings.acknowledgement, relay,
                    settings.intake.addresses)  # fmt: skip
    assert [to for _, to, _ in smtp_sink.messages] == [("sam@example.org",)]
    assert history_rows(client, ref) == [
        ("pending", "decided: send", "pipeline"),
        ("sending", "", "pipeline"),
        ("held", "interrupted mid-send: check before releasing", "pipeline"),
        ("", "release reply", "rob"),
        ("pending", "released by a person", "rob"),
        ("sending", "", "pipeline"),
        ("pending", "attempt failed: the server said try later (4xx)", "pipeline"),
        ("sending", "", "pipeline"),
        ("sent", "", "pipeline"),
    ]
    page = client.get(f"/story/{ref}").text
    assert "sam@example.org" not in page.split('id="reply-history"', 1)[1]  # codes, not text


def test_web_insights_health_shows_the_oauth2_token_expiry(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    from story_intake.web.app import build_app
    from story_intake.web.settings import ReviewSettings

    client, _ = signed_in(review_site, site_store, clock)
    site_store.worker.save_token_expiry(clock.now + timedelta(days=3), clock.now)
    assert "OAuth2 token expires" not in client.get("/health").text  # password login: none
    oauth = ImapSettings(host="imap.example.org", username="team@example.org", auth="oauth2",
                         oauth2_client_id="client", oauth2_tenant="tenant")  # fmt: skip
    settings = dataclasses.replace(review_site.settings, mailbox=oauth, review=ReviewSettings())
    client = client_for(review_site, site_store, clock, app=build_app(settings, site_store, clock))
    assert log_in(client, "rob") == 303
    expected = (clock.now + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")
    assert re.search(rf'id="token-expiry">{expected}', client.get("/health").text)


def test_web_insights_health_shows_smtps_own_token_expiry_alone(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    from story_intake.web.app import build_app
    from story_intake.web.settings import ReviewSettings

    # The mailbox logs in with a password (or is a Maildir); SMTP has an OAuth2 client.
    site_store.worker.save_token_expiry(clock.now + timedelta(days=9), clock.now)  # stale
    site_store.worker.save_token_expiry(clock.now + timedelta(hours=1), clock.now, "smtp")
    relay = SmtpSettings(host="smtp.example.org", username="team@example.org", auth="oauth2",
                         oauth2_client_id="client", oauth2_tenant="tenant")  # fmt: skip
    settings = dataclasses.replace(review_site.settings, smtp=relay, review=ReviewSettings())
    client = client_for(review_site, site_store, clock, app=build_app(settings, site_store, clock))
    assert log_in(client, "rob") == 303
    page = client.get("/health").text
    expected = (clock.now + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    assert re.search(rf'id="smtp-token-expiry">{expected}', page)
    assert 'id="token-expiry"' not in page  # the mailbox's is not an OAuth2 login
