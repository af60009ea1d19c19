"""The review page's actions do what the command line does, write the audit log, and keep
corrections; the ``user`` command; the ``[review]`` settings."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from conftest import REVIEW_PASSWORD, Clock, ReviewSite, client_for, csrf, log_in
from starlette.testclient import TestClient

from intake import report
from intake.errors import ConfigError
from intake.store.engine import Store
from story_intake.cli import main
from story_intake.pipeline import run_once
from story_intake.settings import settings_from
from triage.reply.policy import reference


def signed_in(site: ReviewSite, store: Store, clock: Clock, name: str = "ann"
              ) -> tuple[TestClient, str]:  # fmt: skip
    client = client_for(site, store, clock)
    assert log_in(client, name) == 303
    return client, csrf(client)


def exported(store: Store) -> dict[str, dict[str, object]]:
    return {str(r["story_id"]): r for r in report.export_rows(store)}


def test_web_actions_theme_correction_is_stored_audited_and_undone(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, token = signed_in(review_site, site_store, clock, "rob")
    ref = review_site.refs["story"]
    before = exported(site_store)["review-1@example.org"]["themes"]
    reply = client.post(
        f"/story/{ref}/themes", data={"csrf_token": token, "theme": ["policing", "bogus"]}
    )
    assert reply.status_code == 303
    assert exported(site_store)["review-1@example.org"]["themes"] == ["policing"]
    review = site_store.review
    (correction,) = review.corrections()
    assert (correction.user, correction.field, correction.before, correction.after) == (
        "rob",
        "themes",
        before,
        ["policing"],
    )
    page = client.get(reply.headers["location"])
    assert "Undo" in page.text  # the page offers the old themes back
    undo = {"csrf_token": token, "theme": before}
    assert client.post(f"/story/{ref}/themes", data=undo).status_code == 303
    assert exported(site_store)["review-1@example.org"]["themes"] == before
    entries = review.audit_entries()
    assert [(e.user, e.action, e.reference) for e in entries[:2]] == [
        ("rob", "correct_themes", ref)
    ] * 2
    assert all("story" not in e.action or e.reference for e in entries)


def test_web_actions_confirmed_withdrawal_erases_the_persons_other_stories(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, token = signed_in(review_site, site_store, clock)
    ref = review_site.refs["withdrawal"]
    preview = client.get(f"/story/{ref}/withdrawal")
    assert review_site.refs["story"] in preview.text  # what erase will remove, first
    assert "review-1@example.org" in exported(site_store)
    assert (
        client.post(f"/story/{ref}/withdrawal/confirm", data={"csrf_token": token}).status_code
        == 303
    )
    stories = exported(site_store)
    assert "review-1@example.org" not in stories  # gone from export
    assert stories["review-3@example.org"]["acknowledgement"] == "pending"  # confirmation goes
    assert "review-2@example.org" in stories  # someone else's story stays
    actions = [(e.action, e.reference) for e in site_store.review.audit_entries()]
    assert ("confirm_withdrawal", ref) in actions
    # Only a withdrawal that awaits confirmation erases: not twice, not any other story.
    for other in (ref, review_site.refs["xss"]):
        assert client.get(f"/story/{other}/withdrawal").status_code == 409
        assert (
            client.post(
                f"/story/{other}/withdrawal/confirm", data={"csrf_token": token}
            ).status_code
            == 409
        )
    assert "review-2@example.org" in exported(site_store)


def test_web_actions_rejected_withdrawal_keeps_the_story_and_acknowledges_it(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, token = signed_in(review_site, site_store, clock)
    ref = review_site.refs["withdrawal"]
    assert (
        client.post(f"/story/{ref}/withdrawal/reject", data={"csrf_token": token}).status_code
        == 303
    )
    assert site_store.outbox.needs_confirmation() == []
    run_once(review_site.settings, clock.now)
    stories = exported(site_store)
    assert {"review-1@example.org", "review-3@example.org"} <= set(stories)
    assert stories["review-3@example.org"]["acknowledgement"] == "sent"
    mail = [p.read_text() for p in
            (review_site.config.parent / "outbox").glob("*.eml")]  # fmt: skip
    assert sum("Thank you for sharing your story" in m and ref in m for m in mail) == 1


def test_web_actions_release_sends_a_held_reply_and_mark_reviewed_filters(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, token = signed_in(review_site, site_store, clock, "rob")
    ref = review_site.refs["held"]
    assert site_store.outbox.outbox_states()["review-4@example.org"] == "held"
    assert "Release the held reply" in client.get(f"/story/{ref}").text
    assert client.post(f"/story/{ref}/release", data={"csrf_token": token}).status_code == 303
    assert site_store.outbox.outbox_states()["review-4@example.org"] == "pending"
    run_once(review_site.settings, clock.now)
    assert site_store.outbox.outbox_states()["review-4@example.org"] == "sent"
    assert client.post(f"/story/{ref}/reviewed", data={"csrf_token": token}).status_code == 303
    assert ref in client.get("/?reviewed=yes").text
    assert ref not in client.get("/?reviewed=no").text


def test_web_actions_queue_puts_requests_first_and_finds_by_reference(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    client, token = signed_in(review_site, site_store, clock, "rob")
    page = client.get("/").text
    assert page.index("Requests awaiting confirmation") < page.index("Needs review")
    assert page.index(review_site.refs["withdrawal"]) < page.index(review_site.refs["story"])
    ref = review_site.refs["story"]
    client.post(f"/story/{ref}/reviewed", data={"csrf_token": token})
    page = client.get("/").text  # reviewed: among the new stories of its theme, after
    assert page.index("Needs review") < page.index("New: health") < page.index(ref)
    only = client.get("/", params={"ref": review_site.refs["xss"].lower()}).text
    assert review_site.refs["xss"] in only and review_site.refs["story"] not in only


def test_web_actions_erasure_takes_corrections_and_reviewed_marks(
    review_site: ReviewSite, site_store: Store, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    client, token = signed_in(review_site, site_store, clock)
    ref = review_site.refs["xss"]
    client.post(f"/story/{ref}/kind", data={"csrf_token": token, "kind": "automated"})
    client.post(f"/story/{ref}/reviewed", data={"csrf_token": token})
    review = site_store.review
    assert len(review.corrections()) == 1 and len(review.reviewed()) == 1
    assert main(["--config", str(review_site.config), "erase", "--story", ref]) == 0
    assert review.corrections() == [] and review.reviewed() == {}
    assert ref in [e.reference for e in review.audit_entries()]  # the reference alone stays


def test_users_command_reads_the_password_from_stdin_and_refuses_short_ones(
    review_site: ReviewSite, site_store: Store, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    config = ["--config", str(review_site.config), "user"]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main([*config, "add", "kim", "--role", "reviewer"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO(REVIEW_PASSWORD + "\n"))
    assert main([*config, "add", "<b>kim</b>", "--role", "reviewer"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO(REVIEW_PASSWORD + "\n"))
    assert main([*config, "add", "kim", "--role", "reviewer"]) == 0
    with pytest.raises(SystemExit):  # never on the command line
        main([*config, "add", "lee", "--role", "admin", "--password", REVIEW_PASSWORD])
    capsys.readouterr()
    assert main([*config, "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["name"], u["role"]) for u in listed] == [
        ("ann", "admin"),
        ("kim", "reviewer"),
        ("rob", "reviewer"),
    ]
    kim = site_store.accounts.user("kim")
    assert kim and kim.password_hash.startswith("$argon2id$")
    assert "argon2" not in json.dumps(listed)
    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    assert main([*config, "passwd", "kim"]) == 0
    assert main([*config, "remove", "kim"]) == 0
    assert main([*config, "remove", "kim"]) == 2
    assert site_store.accounts.user("kim") is None


@pytest.mark.parametrize(("review", "named"), [
    ({"base_url": "ftp://x.example.org"}, "review.base_url"),
    ({"secure_cookies": "maybe"}, "review.secure_cookies"),
    ({"idle_minutes": 0}, "review.idle_minutes"),
    ({"idle_minutes": 900, "session_hours": 1}, "review.idle_minutes"),
])  # fmt: skip
def test_config_review_section_is_validated(review: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        settings_from({"mailbox": {"maildir": "m"}, "review": review}, {})


def test_config_review_secure_cookies_follow_https_unless_set() -> None:
    def secure(review: dict[str, object]) -> bool:
        return settings_from({"review": review}, {}).review.cookies_secure

    assert secure({"base_url": "https://review.example.org"})
    assert not secure({"base_url": "http://127.0.0.1:8025"})
    assert not secure({"base_url": "https://review.example.org", "secure_cookies": False})
    assert secure({"secure_cookies": True})
    assert reference("x")  # the page's links use the CLI's references


def test_web_actions_audit_log_is_kept_under_retention(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    from story_intake.jobs import housekeeping_job

    client, token = signed_in(review_site, site_store, clock)
    client.post(f"/story/{review_site.refs['story']}/reviewed", data={"csrf_token": token})
    review = site_store.review
    assert [e.action for e in review.audit_entries()] == ["mark_reviewed", "login"]
    assert housekeeping_job(review_site.settings, clock.now + timedelta(days=364)) is not None
    assert len(review.audit_entries()) == 2  # within audit_days (365): kept
    counts = housekeeping_job(review_site.settings, clock.now + timedelta(days=366))
    assert counts is not None and counts["audit_log"] == 2
    assert review.audit_entries() == []


def test_learning_corrected_stories_come_first_ahead_of_shipped_examples(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    from story_intake.learning import corrected_examples, with_corrections
    from triage.tag.examples import LabelledText

    themes = review_site.settings.tagger.theme_names
    assert corrected_examples(site_store, themes) == []  # nothing corrected: nothing added
    review = site_store.review
    assert review.correct("review-1@example.org", "rob", "themes", ["elderly_care"], clock.now)
    (example,) = corrected_examples(site_store, themes)
    assert (example.id, example.themes, example.kind) == (
        "review-1@example.org",
        ("elderly_care",),
        "story",
    )
    shipped = [
        LabelledText("s1", example.text, ("health",), "story"),  # the same story
        LabelledText("review-1@example.org", "other text", ("health",), "story"),
        LabelledText("s2", "Another story entirely.", ("policing",), "story"),
    ]
    assert [e.id for e in with_corrections(shipped, [example])] == ["review-1@example.org", "s2"]


def test_web_actions_health_shows_agreement_with_the_tagger_per_theme(
    review_site: ReviewSite, site_store: Store, clock: Clock
) -> None:
    from story_intake.web.agreement import agreement

    themes = review_site.settings.tagger.theme_names
    client, token = signed_in(review_site, site_store, clock, "rob")
    story, xss = review_site.refs["story"], review_site.refs["xss"]
    before = exported(site_store)["review-1@example.org"]["themes"]
    assert isinstance(before, list) and "policing" not in before
    client.post(
        f"/story/{story}/themes", data={"csrf_token": token, "theme": [*before, "policing"]}
    )
    client.post(f"/story/{xss}/reviewed", data={"csrf_token": token})
    found = agreement(site_store, themes, clock.now)
    assert found["policing"] == (1, 2)  # added to one story: the tagger missed it there
    assert found["elderly_care"] == (2, 2)
    assert "Reviewers agreed with the tagger" in client.get("/health").text
    assert agreement(site_store, themes, clock.now + timedelta(days=31))["policing"] == (0, 0)
