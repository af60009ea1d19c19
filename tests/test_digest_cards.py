"""The digest's cards: one per story, in the most urgent section that applies, every theme as a
chip, the subject redacted, and the time the person sent it (the Date header, clamped)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from test_digest import MONDAY_7AM, THEMES, entry, settings_for

import triage.digest.deliver as digest_out
import triage.digest.sections as digest_module
from intake.records import Address, DigestEntry, IntakeHealth
from story_intake.jobs import digest_context
from triage.digest.redact import RedactionError
from triage.digest.sections import DigestView, build_digest, sent_time
from triage.reply.policy import reference
from triage.reply.render import TEMPLATES, make_environment, render_template


def scored(n: int, text: str, scores: dict[str, float], **options: object) -> DigestEntry:
    """An entry whose themes have the given scores."""
    item = entry(n, text, themes=tuple(scores), **options)  # type: ignore[arg-type]
    assert item.triage is not None
    triage = replace(item.triage, scores=tuple(scores.items()))
    return replace(item, triage=triage)


def text_of(view: DigestView, tmp_path: Path) -> str:
    context = digest_out._context(view, digest_out.subject_of(view),
                                  digest_context(settings_for(tmp_path)))  # fmt: skip
    return render_template(make_environment(TEMPLATES), "digest.txt", context)


def test_digest_cards_one_per_story_in_the_most_urgent_section(tmp_path: Path) -> None:
    entries = [
        scored(1, "The GP and the police both asked.", {"health": 0.6, "policing": 0.9}),
        scored(2, "Nobody talks to anybody.", {"duplication": 0.7, "health": 0.7}),
        scored(3, "Please delete my story, I cannot go on.", {"health": 0.9},
               kind="request:withdrawal", urgent=True),
        scored(4, "I want to end it all, the GP knows.", {"health": 0.9, "policing": 0.5},
               urgent=True),
        scored(5, "My mum's care home and her GP.", {"health": 0.8, "elderly_care": 0.6},
               reasons=("low_confidence",)),
        entry(6, "The bins again.", reasons=("no_theme",)),
    ]  # fmt: skip
    view = build_digest(entries, IntakeHealth(), None, (MONDAY_7AM, MONDAY_7AM), THEMES, "UTC")
    placed = {s.key: [v.reference for v in s.stories] for s in view.sections if s.count}
    ref = {n: reference(f"<s{n}@example.org>") for n in range(1, 7)}
    assert placed == {"requests": [ref[3]], "urgent": [ref[4]], "review": [ref[5], ref[6]],
                      "theme-health": [ref[2]],  # a tie goes to the theme listed first
                      "theme-policing": [ref[1]]}  # fmt: skip
    assert sum(s.count for s in view.sections) == view.total == 6
    assert view.urgent == 2 and "2 urgent" in digest_out.subject_of(view)
    card = next(v for s in view.sections for v in s.stories if v.reference == ref[1])
    assert card.tags == (("policing", 0.9), ("health", 0.6))  # every theme, strongest first
    text = text_of(view, tmp_path)
    assert all(text.count(r) == 1 for r in ref.values())
    assert "themes: [policing 0.90] [health 0.60]" in text


def test_digest_cards_show_the_subject_redacted(tmp_path: Path) -> None:
    item = entry(1, "The GP lost my letter.", themes=("health",), name="Jane Doe")
    story = replace(item.story, subject="Jane Doe here, call 07700 900123 about my GP")
    view = build_digest([replace(item, story=story)], IntakeHealth(), None,
                        (MONDAY_7AM, MONDAY_7AM), THEMES, "UTC")  # fmt: skip
    card = view.sections[3].stories[0]
    assert card.subject == "[name] [name] here, call [phone] about my GP"
    html = digest_out._html(view, digest_context(settings_for(tmp_path)))
    text = text_of(view, tmp_path)
    for shown in (html, text):
        assert "call [phone] about my GP" in shown and "07700" not in shown
        assert "Doe" not in shown


def test_digest_cards_leave_the_subject_out_when_redaction_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(text: str, names: object = ()) -> str:
        raise RedactionError("re2: simulated failure")

    monkeypatch.setattr(digest_module, "redact", broken)
    item = entry(1, "The GP did nothing.", themes=("health",))
    story = replace(item.story, subject="Ring me on 07700 900456")
    view = build_digest([replace(item, story=story)], IntakeHealth(), None,
                        (MONDAY_7AM, MONDAY_7AM), THEMES, "UTC")  # fmt: skip
    assert view.sections[3].stories[0].subject is None
    assert "07700" not in text_of(view, tmp_path)


@pytest.mark.parametrize(("sent", "shown"), [
    (timedelta(hours=-2), timedelta(hours=-2)),  # the Date header: when the person sent it
    (None, timedelta(0)),  # no Date: when it arrived
    (timedelta(hours=5), timedelta(0)),  # after it arrived: a wrong clock
    (timedelta(days=-400), timedelta(0)),  # a year before it arrived: not believed
])  # fmt: skip
def test_digest_cards_sent_time_is_the_date_header_clamped_to_arrival(
    sent: timedelta | None, shown: timedelta, tmp_path: Path
) -> None:
    arrived = MONDAY_7AM + timedelta(days=1)
    item = entry(1, "The GP lost my letter.", themes=("health",))
    story = replace(item.story, received_at=arrived,
                    sent_at=None if sent is None else arrived + sent)  # fmt: skip
    assert sent_time(story) == arrived + shown
    view = build_digest([replace(item, story=story)], IntakeHealth(), None,
                        (MONDAY_7AM, arrived), THEMES, "Europe/London")  # fmt: skip
    expected = (arrived + shown).strftime("%a %d %b %Y %H:%M")  # GMT in November
    assert re.search(rf"\| sent {expected}\b", text_of(view, tmp_path))


def test_digest_cards_untagged_story_is_shown_once(tmp_path: Path) -> None:
    item = entry(1, "Something happened.")
    untagged = DigestEntry(replace(item.story, sender=Address("", "")), None, None, False)
    view = build_digest([untagged, entry(2, "Another.", reasons=("no_theme",))], IntakeHealth(),
                        None, (MONDAY_7AM, MONDAY_7AM), THEMES, "UTC")  # fmt: skip
    # Untagged needs review ("untagged"), like a story with no theme: shown there, once.
    assert [(s.key, s.count) for s in view.sections if s.count] == [("review", 2)]


def test_digest_cards_link_to_the_review_page_when_base_url_is_set(tmp_path: Path) -> None:
    from story_intake.web.settings import ReviewSettings

    view = build_digest(
        [scored(1, "The GP never got the letter.", {"health": 0.8})],
        IntakeHealth(),
        None,
        (MONDAY_7AM, MONDAY_7AM),
        THEMES,
        "UTC",
    )
    ref = reference("<s1@example.org>")
    plain = settings_for(tmp_path)
    linked = replace(plain, review=ReviewSettings(base_url="https://review.example.org/"))
    env = make_environment(TEMPLATES)
    for settings, link in ((plain, False), (linked, True)):
        context = digest_out._context(view, digest_out.subject_of(view), digest_context(settings))
        html = render_template(env, "digest.html", context)
        text = render_template(env, "digest.txt", context)
        url = f"https://review.example.org/story/{ref}"
        assert (f'href="{url}"' in html) is link and (url in text) is link
        assert ref in html and ref in text  # readable without the page
