"""The team's digest: sections, redacted excerpts, windows on an injected clock, sent once."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

import pytest
from conftest import SmtpSink, seed_maildir, story_message

import triage.digest.deliver as digest_out
import triage.digest.sections as digest_module
from intake.errors import SendError
from intake.records import (
    Address,
    DigestEntry,
    Evidence,
    IntakeHealth,
    MailboxState,
    Quarantined,
    RawMessage,
    Triage,
)
from intake.store.digests import DigestRows
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.jobs import digest_context, digest_job
from story_intake.pipeline import run_once
from triage.digest.deliver import preview_digest, send_digest
from triage.digest.redact import RedactionError
from triage.digest.sections import build_digest, safe_excerpt, window_text
from triage.digest.settings import DigestSettings
from triage.reply.settings import SmtpSettings
from triage.tag.examples import story_from_text
from triage.tag.tagger import Tagger

ROOT = Path(__file__).resolve().parents[1]
MONDAY_7AM = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # London is on GMT in November
THEMES = ("health", "policing", "elderly_care", "duplication")
IDENTIFIERS = ("07700 900123", "999 123 4567", "QQ123456C", "SW1A 1AA", "jane.doe@example.org",
               "03/04/1951", "Doe")  # fmt: skip


class Crash(BaseException):
    """Stands for the process dying: nothing catches it on the way out."""


def entry(
    n: int, text: str, kind: str = "story", themes: tuple[str, ...] = (),
    reasons: tuple[str, ...] = (), urgent: bool = False, name: str = "",
) -> DigestEntry:  # fmt: skip
    story = story_from_text(f"<s{n}@example.org>", text)
    story = replace(story, sender=Address(name or f"Person{n} Example", f"p{n}@example.org"),
                    received_at=MONDAY_7AM + timedelta(minutes=n))  # fmt: skip
    triage = Triage(story.story_id, kind, themes, tuple((t, 0.8) for t in themes), (), reasons)
    return DigestEntry(story, triage, "sent", urgent)


def settings_for(tmp_path: Path, sink: SmtpSink | None = None, **digest: object) -> Settings:
    from intake.sources.maildir import MaildirSettings
    from intake.store.engine import StoreSettings

    smtp = (SmtpSettings(host=sink.host, port=sink.port, security="none") if sink
            else SmtpSettings(pickup_dir=str(tmp_path / "outbox")))  # fmt: skip
    options = {"recipients": ("team@example.org",), "output_dir": str(tmp_path / "digests"),
               **digest}  # fmt: skip
    return Settings(mailbox=MaildirSettings(maildir=str(tmp_path / "mailbox")),
                    store=StoreSettings(f"sqlite:///{tmp_path}/stories.db"), smtp=smtp,
                    digest=DigestSettings(**options))  # type: ignore[arg-type]  # fmt: skip


def stored(settings: Settings, tagger: Tagger, at: datetime, *messages: bytes) -> None:
    """Deliver ``messages`` and run one pass at ``at``, recorded as the worker records it."""
    seed_maildir(settings.mailbox.maildir, *messages)  # type: ignore[union-attr]
    counts = run_once(settings, at, tagger=tagger)
    with Store(settings.store) as store:
        store.runs.record_run("poll", at, at, asdict(counts), None)


def digests_at(sink: SmtpSink) -> list[bytes]:
    """The digests the sink received (acknowledgements go there too)."""
    return [data for _, _, data in sink.messages if b"Message-ID: <digest-" in data]


def test_digest_sections_in_order_with_withdrawals_first() -> None:
    entries = [
        entry(1, "The GP never got the letter.", themes=("health",)),
        entry(2, "When is the next event?", kind="request:question"),
        entry(3, "Please delete my story.", kind="request:withdrawal"),
        entry(4, "Bins again.", reasons=("no_theme",)),
        entry(5, "I want to end it all.", themes=("health",), urgent=True),
        entry(6, "Out of office.", kind="automated"),
    ]
    view = build_digest(entries, IntakeHealth(), None, (MONDAY_7AM, MONDAY_7AM), THEMES, "UTC")
    shown = [(s.key, s.count) for s in view.sections if s.count]
    assert shown == [("requests", 2), ("urgent", 1), ("review", 1), ("theme-health", 1)]
    assert [v.kind for v in view.sections[0].stories] == ["request:withdrawal", "request:question"]
    assert (view.total, view.automated) == (5, 1)
    assert view.start == "the beginning" or view.start.startswith("Mon 23 Nov")


def test_digest_excerpt_redacts_identifiers_and_highlights_evidence() -> None:
    text = ("The GP sent me to the hospital twice. My name is Jane Doe, DOB 03/04/1951, "
            "NI QQ123456C, I live at SW1A 1AA. Call me on 07700 900123 or write to "
            "jane.doe@example.org. My NHS number is 999 123 4567.")  # fmt: skip
    story = replace(story_from_text("<x@example.org>", text),
                    sender=Address("Jane Doe", "jane.doe@example.org"))  # fmt: skip
    start = text.index("GP")
    triage = Triage(story.story_id, "story", ("health",), (("health", 0.9),),
                    (Evidence("health", "term", start, start + 2, "GP"),), ())  # fmt: skip
    excerpt = safe_excerpt(story, triage)
    assert excerpt is not None
    shown = "".join(piece for piece, _ in excerpt)
    for identifier in IDENTIFIERS:
        assert identifier not in shown
    assert ("GP", True) in excerpt and "hospital" in shown
    assert "[NHS number]" in shown and "[phone]" in shown and "[name]" in shown


def test_digest_excerpt_left_out_when_redaction_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(text: str, names: object = ()) -> str:
        raise RedactionError("re2: simulated failure")

    monkeypatch.setattr(digest_module, "redact", broken)
    secret = "My neighbour's phone is 07700 900456 and the GP did nothing."
    view = build_digest([entry(1, secret, themes=("health",))], IntakeHealth(), None,
                        (MONDAY_7AM, MONDAY_7AM), THEMES, "UTC")  # fmt: skip
    assert view.sections[3].stories[0].excerpt is None
    html = digest_out._html(view, digest_context(settings_for(tmp_path)))
    assert "Excerpt withheld" in html and "07700" not in html and "neighbour" not in html


def test_digest_excerpt_is_about_300_characters_cut_at_spaces_around_the_evidence() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    anchor = words.index("word200")
    piece = window_text(words, anchor)
    assert piece.startswith("… ") and piece.endswith(" …")
    assert 200 <= len(piece) <= 310
    assert "word200" in piece and all(w.startswith("word") for w in piece[2:-2].split())
    assert window_text("Short story.", 0) == "Short story."


def test_digest_html_escapes_story_text(tmp_path: Path) -> None:
    hostile = 'It said <script>alert(1)</script> and <img src="http://x.example/t.png"> oh.'
    view = build_digest([entry(1, hostile, themes=("health",))], IntakeHealth(), None,
                        (MONDAY_7AM, MONDAY_7AM), THEMES, "UTC")  # fmt: skip
    html = digest_out._html(view, digest_context(settings_for(tmp_path)))
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;" in html


def test_digest_job_due_only_after_the_scheduled_time(tmp_path: Path, tagger: Tagger) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1), story_message(2))
    assert digest_job(settings, MONDAY_7AM + timedelta(minutes=59)) is None
    first = digest_job(settings, MONDAY_7AM + timedelta(hours=1, seconds=30))
    assert first is not None and (first.state, first.stories) == ("sent", 2)
    assert digest_job(settings, MONDAY_7AM + timedelta(hours=1, minutes=10)) is None
    # A story stored after the first window goes in the next one, and only there.
    stored(settings, tagger, MONDAY_7AM + timedelta(hours=2), story_message(3))
    tuesday_8am = MONDAY_7AM + timedelta(days=1, hours=1)
    assert digest_job(settings, tuesday_8am - timedelta(seconds=1)) is None
    second = digest_job(settings, tuesday_8am)
    assert second is not None and (second.state, second.stories) == ("sent", 1)
    assert len(list((tmp_path / "outbox").glob("digest-*.eml"))) == 2


def test_digest_job_not_due_at_the_weekend_with_a_weekday_schedule(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    friday_9am = MONDAY_7AM - timedelta(days=3) + timedelta(hours=2)
    stored(settings, tagger, friday_9am, story_message(1))
    assert digest_job(settings, friday_9am + timedelta(days=1)) is None  # Saturday 09:00
    assert digest_job(settings, friday_9am + timedelta(days=2)) is None  # Sunday 09:00
    assert digest_job(settings, MONDAY_7AM + timedelta(hours=1)) is not None


def test_digest_sent_once_across_a_crash_between_render_and_send(
    tmp_path: Path, tagger: Tagger, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, smtp_sink)
    stored(settings, tagger, MONDAY_7AM, story_message(1))

    def crash(*args: object) -> bool:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(DigestRows, "claim_digest", crash)
        with pytest.raises(Crash), Store(settings.store) as store:
            send_digest(store, MONDAY_7AM + timedelta(hours=1), digest_context(settings))
    assert digests_at(smtp_sink) == []
    resumed = digest_job(settings, MONDAY_7AM + timedelta(hours=1, minutes=5))
    assert resumed is not None and resumed.state == "sent"
    assert digest_job(settings, MONDAY_7AM + timedelta(hours=1, minutes=10)) is None
    assert len(digests_at(smtp_sink)) == 1


def test_digest_crash_mid_send_resends_the_same_message(
    tmp_path: Path, tagger: Tagger, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path)  # the pickup folder: the same bytes land once
    stored(settings, tagger, MONDAY_7AM, story_message(1))
    with monkeypatch.context() as patch:
        patch.setattr(digest_out, "send", lambda *a: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash), Store(settings.store) as store:
            send_digest(store, MONDAY_7AM + timedelta(hours=1), digest_context(settings))
    digest_job(settings, MONDAY_7AM + timedelta(hours=1, minutes=1))
    digest_job(settings, MONDAY_7AM + timedelta(hours=1, minutes=2))
    assert len(list((tmp_path / "outbox").glob("digest-*.eml"))) == 1


def test_digest_failed_hand_over_stays_for_the_next_run(tmp_path: Path, tagger: Tagger) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1))
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the pickup folder should be")
    broken = replace(settings, smtp=replace(settings.smtp, pickup_dir=str(blocked)))
    with pytest.raises(SendError), Store(settings.store) as store:
        send_digest(store, MONDAY_7AM + timedelta(hours=1), digest_context(broken))
    again = digest_job(settings, MONDAY_7AM + timedelta(hours=1, minutes=5))
    assert again is not None and again.state == "sent"


def test_digest_mail_goes_to_every_recipient_once_with_auto_submitted(
    tmp_path: Path, tagger: Tagger, smtp_sink: SmtpSink
) -> None:
    settings = settings_for(tmp_path, smtp_sink,
                            recipients=("team@example.org", "lead@example.org"))  # fmt: skip
    body = "The police took my statement three times and the GP asked it all again."
    stored(settings, tagger, MONDAY_7AM, story_message(1, body=body))
    digest_job(settings, MONDAY_7AM + timedelta(hours=1))
    [(mail_from, rcpts, data)] = [m for m in smtp_sink.messages if m[2] in digests_at(smtp_sink)]
    message = email.message_from_bytes(data, policy=default)
    assert mail_from == "stories@example.org"
    assert sorted(rcpts) == ["lead@example.org", "team@example.org"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert "My story" not in str(message["Subject"]) and "1 new" in str(message["Subject"])
    assert "person1@example.org" not in data.decode("utf-8", "replace")


def test_digest_empty_window_sends_a_short_digest_unless_send_empty_is_off(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM)  # a run that finds nothing
    outcome = digest_job(settings, MONDAY_7AM + timedelta(hours=1))
    assert outcome is not None and (outcome.state, outcome.stories) == ("sent", 0)
    assert outcome.path is not None and "No new stories" in outcome.path.read_text()
    quiet = replace(settings, digest=replace(settings.digest, send_empty=False))
    skipped = digest_job(quiet, MONDAY_7AM + timedelta(days=1, hours=1))
    assert skipped is not None and skipped.state == "skipped"
    assert len(list((tmp_path / "outbox").glob("digest-*.eml"))) == 1


def test_digest_intake_health_counts_quarantine_by_reason_and_the_change(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1), story_message(2))
    bad = RawMessage("INBOX", 1, 9, MONDAY_7AM, 3, b"bad")
    with Store(settings.store) as store:
        store.stories.commit_batch(MailboxState("INBOX", 1), 9, [],
                           [Quarantined(bad, "parse", "ParseError: Jane's bytes", "")],
                           MONDAY_7AM)  # fmt: skip
    first = digest_job(settings, MONDAY_7AM + timedelta(hours=1))
    assert first is not None and first.path is not None
    html = first.path.read_text()
    assert "parse: ParseError: 1" in html and "Jane" not in html
    stored(settings, tagger, MONDAY_7AM + timedelta(hours=2), story_message(3))
    second = digest_job(settings, MONDAY_7AM + timedelta(days=1, hours=1))
    assert second is not None and second.path is not None
    text = re.sub(r"<[^>]+>", " ", second.path.read_text())
    assert re.search(r"Stories stored\s+1\s+-1", text)


def test_digest_preview_writes_the_file_and_leaves_the_window_open(
    tmp_path: Path, tagger: Tagger
) -> None:
    settings = settings_for(tmp_path)
    stored(settings, tagger, MONDAY_7AM, story_message(1))
    with Store(settings.store) as store:
        preview = preview_digest(store, MONDAY_7AM + timedelta(hours=1), digest_context(settings))
        assert preview.path is not None and preview.path.stat().st_mode & 0o777 == 0o600
        assert not store.digests.digest_unfinished() and store.digests.last_digest_end() is None


@pytest.mark.slow
def test_digest_renders_in_headless_chromium(tmp_path: Path, tagger: Tagger) -> None:
    browser = shutil.which("chromium")
    assert browser, "Debian package chromium is needed: make test installs it as root"
    settings = settings_for(tmp_path)
    samples = sorted((ROOT / "samples" / "stories").glob("*.eml"))
    stored(settings, tagger, MONDAY_7AM, *(p.read_bytes() for p in samples))
    with Store(settings.store) as store:
        page = preview_digest(store, MONDAY_7AM + timedelta(hours=1),
                              digest_context(settings)).path  # fmt: skip
        senders = {s.sender.address for s in store.stories.stories()}
    assert page is not None
    url, shot = page.as_uri(), tmp_path / "digest.png"
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=900,1600"]  # fmt: skip
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True,
                         text=True, timeout=120, check=True).stdout  # fmt: skip
    subprocess.run([browser, *flags, f"--screenshot={shot}", url], capture_output=True,
                   timeout=120, check=True)  # fmt: skip
    for section in ("requests", "review", "theme-health", "theme-policing", "intake-health"):
        assert f'id="{section}"' in dom
    assert dom.index('id="requests"') < dom.index('id="theme-health"')
    assert not any(address in dom for address in senders if address)
    assert not re.search(r"\b07700 ?9\d\d ?\d{3}\b|\b999 ?\d{3} ?\d{4}\b", dom)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
