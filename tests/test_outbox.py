"""The outbox: rendering (pure), headers, SMTP against a real aiosmtpd sink, the pickup folder."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, SINK_USER, SmtpSink, free_port

from intake.errors import ConfigError, SendError
from intake.records import Address
from triage.reply.pickup import pickup_name, write_pickup
from triage.reply.policy import Decision, sender_reason
from triage.reply.render import (
    Outgoing,
    check_templates,
    first_name,
    make_environment,
    render_acknowledgement,
    render_team_mail,
)
from triage.reply.settings import AcknowledgementSettings, SmtpSettings
from triage.reply.smtp import SmtpConnection, send
from triage.tag.examples import story_from_text

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
CONFIGURED = AcknowledgementSettings()  # the help text and team name by default
REFERENCE = "ST-1A2B3C4D"
STORY = replace(
    story_from_text("abc@example.org", "I had to tell the GP the same thing three times."),
    sender=Address("Sam Okafor", "sam@example.org"),
    subject="My story",
)
ACK = Decision(True, "send", "acknowledgement", "sam@example.org")
TEMPLATE_NAMES = ("acknowledgement", "acknowledgement_urgent", "withdrawal_confirmation")
ENV = make_environment(TEMPLATES)


def render(
    decision: Decision = ACK, story: Any = STORY, reference: str = REFERENCE, **kw: Any
) -> Outgoing:
    settings = kw.pop("settings", SmtpSettings())
    kw = {"help_text": CONFIGURED.help_text, "team_name": CONFIGURED.team_name, **kw}
    return render_acknowledgement(ENV, decision, story.story_id, story.sender.name, reference,
                                  settings, NOW, **kw)  # fmt: skip


def parts(outgoing: Outgoing) -> tuple[EmailMessage, str, str]:
    """The parsed message and its decoded text and HTML parts."""
    message = message_from_bytes(outgoing.data, policy=default)
    assert isinstance(message, EmailMessage)
    text, html = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    return message, _decoded(text), _decoded(html)


def _decoded(part: Any) -> str:
    return str(part.get_content()).replace("\r\n", "\n")


def sink_settings(sink: SmtpSink, **changes: Any) -> SmtpSettings:
    return SmtpSettings(host=sink.host, port=sink.port, security="none", **changes)


# Rendering


def test_outbox_greets_by_first_name() -> None:
    _, text, html = parts(render())
    assert text.startswith("Dear Sam,\n\n")
    assert '<p style="margin:0 0 16px;">Dear Sam,</p>' in html


def test_outbox_says_hello_without_a_name() -> None:
    _, text, html = parts(render(story=replace(STORY, sender=Address("", "sam@example.org"))))
    assert text.startswith("Hello,\n\n")
    assert "Hello," in html and "Dear" not in html


@pytest.mark.parametrize(
    ("display", "expected"),
    [("Sam Okafor", "Sam"), ("Okafor, Sam", "Sam"), ("Sam Okafor, Nurse", "Sam"),
     ("Dr. Sam Okafor", "Sam"), ("SAM OKAFOR", "Sam"), ("Siobhán O'Brien", "Siobhán"),
     ("Anne-Marie", "Anne-Marie"), ("", ""), ("sam@example.org", ""), ("sam.okafor", ""),
     ("<script>alert(1)</script>", ""), ("http://evil.example", ""), ("R2D2", "")],
)  # fmt: skip
def test_outbox_first_name(display: str, expected: str) -> None:
    assert first_name(display) == expected


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_outbox_reference_in_subject_and_both_parts(template: str) -> None:
    message, text, html = parts(render(Decision(True, "send", template, "sam@example.org")))
    assert f"[{REFERENCE}]" in message["Subject"]
    assert REFERENCE in text and REFERENCE in html


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_outbox_never_includes_story_text_or_subject(template: str) -> None:
    story = replace(STORY, text="Zanzibarquux happened at the clinic.", subject="Flibbertigibbet")
    outgoing = render(Decision(True, "send", template, "sam@example.org"), story)
    _, text, html = parts(outgoing)
    for word in ("Zanzibarquux", "Flibbertigibbet", "clinic"):
        assert word not in text and word not in html
        assert word.encode() not in outgoing.data


def test_outbox_hostile_display_name_never_reaches_html() -> None:
    story = replace(STORY, sender=Address("<script>alert(1)</script>", "sam@example.org"))
    _, text, html = parts(render(story=story))
    assert "<script" not in html and "script" not in text
    assert text.startswith("Hello,")


def test_outbox_html_is_autoescaped_and_text_is_not() -> None:
    _, text, html = parts(render(team_name="Tom & Jerry <b>Team</b>"))
    assert "Tom &amp; Jerry &lt;b&gt;Team&lt;/b&gt;" in html and "<b>Team" not in html
    assert "Tom & Jerry <b>Team</b>" in text


def test_outbox_strict_undefined_raises(tmp_path: Path) -> None:
    for name in TEMPLATE_NAMES:
        for extension in ("txt", "html"):
            (tmp_path / f"{name}.{extension}").write_text("Dear {{ first_name }}, {{ missing }}")
    env = make_environment(tmp_path)
    with pytest.raises(ConfigError, match="'missing' is undefined"):
        render_acknowledgement(env, ACK, STORY.story_id, STORY.sender.name, REFERENCE,
                               SmtpSettings(), NOW, help_text=CONFIGURED.help_text,
                               team_name=CONFIGURED.team_name)  # fmt: skip
    with pytest.raises(ConfigError, match="missing"):
        check_templates(env)


def test_outbox_missing_template_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"acknowledgement\.txt"):
        render_acknowledgement(make_environment(tmp_path), ACK, STORY.story_id, STORY.sender.name,
                               REFERENCE, SmtpSettings(), NOW, help_text=CONFIGURED.help_text,
                               team_name=CONFIGURED.team_name)  # fmt: skip
    with pytest.raises(ConfigError, match="does not exist"):
        make_environment(tmp_path / "nowhere")


def test_outbox_shipped_templates_pass_the_start_check() -> None:
    check_templates(ENV)


@pytest.mark.parametrize(
    ("template", "subject", "words", "absent"),
    [("acknowledgement", "Auto: Thank you for sharing your story", "withdraw", "999"),
     ("acknowledgement_urgent", "Auto: Thank you for sharing your story", "116 123", ""),
     ("withdrawal_confirmation", "Auto: We have received your request", "delete it", "999")],
)  # fmt: skip
def test_outbox_template_chosen_by_decision(
    template: str, subject: str, words: str, absent: str
) -> None:
    message, text, html = parts(render(Decision(True, "send", template, "sam@example.org")))
    assert message["Subject"] == f"{subject} [{REFERENCE}]"
    assert words in text and words in html
    if absent:
        assert absent not in text and absent not in html


def test_outbox_help_text_is_configurable() -> None:
    urgent = Decision(True, "send", "acknowledgement_urgent", "sam@example.org")
    _, text, html = parts(render(urgent, help_text="Call the Test Line on 0800 000 000 & more."))
    assert "Call the Test Line on 0800 000 000 & more." in text
    assert "Call the Test Line on 0800 000 000 &amp; more." in html
    assert "999" in CONFIGURED.help_text and "999" not in text


def test_outbox_refuses_a_decision_that_does_not_send() -> None:
    with pytest.raises(ValueError):
        render(Decision(False, "list_mail", "", ""))


# Headers


def test_outbox_headers_mark_an_automatic_reply() -> None:
    message, _, _ = parts(render())
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-Loop"] == "stories@example.org"
    assert message["Precedence"] is None  # RFC 3834 2: do not use it
    assert message["From"] == "The Stories Team <stories@example.org>"
    assert message["Date"].datetime == NOW
    assert message.get_content_type() == "multipart/alternative"
    assert all(part.get_content_charset() == "utf-8" for part in message.iter_parts())


def test_outbox_non_ascii_team_name_and_subject_are_encoded() -> None:
    team = "Équipe Zoë, «Histoires»"
    subject = "Merci — votre histoire est bien arrivée, nous la lirons avec soin [{reference}]"
    outgoing = render(team_name=team, subjects={"acknowledgement": subject})
    assert outgoing.data.isascii()  # RFC 2047 words, no raw 8-bit header bytes
    assert all(len(line) <= 78 for line in outgoing.data.split(b"\r\n"))
    message, text, _ = parts(outgoing)
    assert message["From"].addresses[0].display_name == team
    assert message["Subject"] == subject.replace("{reference}", REFERENCE)
    assert team in text


@pytest.mark.parametrize("field", ["team_name", "subject"])
def test_outbox_control_characters_in_configured_headers_are_refused(field: str) -> None:
    value = "The Team\r\nBcc: x@example.org"
    team = value if field == "team_name" else "The Team"
    subject = value if field == "subject" else "Auto: thanks"
    with pytest.raises(ConfigError, match="control character"):
        render(team_name=team, subjects={"acknowledgement": subject})
    with pytest.raises(ConfigError, match="control character"):
        render_team_mail(ENV, "acknowledgement", {"first_name": "Sam", "reference": REFERENCE,
                                                  "team_name": "T", "team_address": "t@example.org",
                                                  "help_text": ""},
                         subject=subject, to=["team@example.org"], message_id="<d@example.org>",
                         settings=SmtpSettings(), team_name=team, now=NOW)  # fmt: skip


def test_outbox_long_ascii_subject_is_folded_not_cut() -> None:
    words = "thank you for writing to us about the services you used "
    subject = "Auto: " + words * 3 + "[{reference}]"
    outgoing = render(subjects={"acknowledgement": subject})
    assert all(len(line) <= 78 for line in outgoing.data.split(b"\r\n"))
    message, _, _ = parts(outgoing)
    assert message["Subject"] == subject.replace("{reference}", REFERENCE)


def test_outbox_bodies_never_hold_the_boundary() -> None:
    # A help text full of "=" and dashes: the boundary starts "=_", which quoted-printable
    # always writes as "=3D_" in a body.
    help_text = "--=_ " * 40
    urgent = Decision(True, "send", "acknowledgement_urgent", "sam@example.org")
    outgoing = render(urgent, help_text=help_text)
    message, text, _ = parts(outgoing)
    boundary = message.get_boundary()
    assert boundary is not None and boundary.startswith("=_")
    assert outgoing.data.count(f"--{boundary}".encode()) == 3  # two parts and the close
    assert help_text.strip() in text and len(list(message.iter_parts())) == 2


def test_outbox_exactly_one_recipient() -> None:
    outgoing = render()
    message, _, _ = parts(outgoing)
    assert message.get_all("To") == ["sam@example.org"] and outgoing.to == "sam@example.org"
    assert message["Cc"] is None and message["Bcc"] is None


def test_outbox_message_id_is_recognised_as_a_loop() -> None:
    outgoing = render()
    assert outgoing.message_id.startswith("<ack-")
    assert outgoing.message_id.endswith("@example.org>")
    assert parts(outgoing)[0]["Message-ID"] == outgoing.message_id
    bounce_back = replace(STORY, recipients=(Address("", "stories@example.org"),),
                          headers=(("in-reply-to", outgoing.message_id),))  # fmt: skip
    assert sender_reason(bounce_back, ("stories@example.org",)) == "loop"


def test_outbox_message_id_is_derived_from_the_story() -> None:
    # The same on every attempt (a retry is the same message), different for each story.
    assert render().message_id == render().message_id
    other = replace(STORY, story_id="other@example.org")
    assert render(story=other).message_id != render().message_id


def test_outbox_in_reply_to_the_story() -> None:
    message, _, _ = parts(render())
    assert message["In-Reply-To"] == "<abc@example.org>"
    assert message["References"] == "<abc@example.org>"


def test_outbox_no_in_reply_to_without_a_message_id() -> None:
    message, _, _ = parts(render(story=replace(STORY, story_id="sha256:" + "ab" * 32)))
    assert message["In-Reply-To"] is None and message["References"] is None


@pytest.mark.parametrize(
    "to",
    ["a@example.org\r\nBcc: x@example.org", "a@example.org\nBcc: x@example.org",
     "a@example.org, b@example.org", "a@example.org;b@example.org", "a@example.org b@example.org",
     "<a@example.org>", "Sam <a@example.org>", "", "not-an-address", "ü@example.org"],
)  # fmt: skip
def test_outbox_refuses_injection_and_extra_recipients(to: str) -> None:
    with pytest.raises(SendError) as caught:
        render(Decision(True, "send", "acknowledgement", to))
    assert caught.value.permanent


@pytest.mark.parametrize("reference", ["ST-1\r\nBcc: x@example.org", "st-lower", "", "A" * 33])
def test_outbox_refuses_a_bad_reference(reference: str) -> None:
    with pytest.raises(SendError):
        render(reference=reference)


def test_outbox_encodes_an_international_domain() -> None:
    outgoing = render(Decision(True, "send", "acknowledgement", "sam@bücher.example"))
    assert outgoing.to == "sam@xn--bcher-kva.example"


# Sending through a real SMTP server on loopback


def test_outbox_one_connection_for_three_messages(smtp_sink: SmtpSink) -> None:
    outgoing = [render(story=replace(STORY, story_id=f"s{n}@example.org")) for n in range(3)]
    settings = sink_settings(smtp_sink)
    with SmtpConnection(settings) as connection:
        for item in outgoing:
            send(item, settings, connection)
    assert len(smtp_sink.messages) == 3 and smtp_sink.connections == 1
    for item, (mail_from, rcpt_tos, data) in zip(outgoing, smtp_sink.messages, strict=True):
        # RFC 3834 3.3: automatic replies go from the null sender.
        assert mail_from == "<>" and rcpt_tos == ("sam@example.org",)
        assert message_from_bytes(data)["Message-ID"] == item.message_id


def test_outbox_configured_envelope_sender_is_used(smtp_sink: SmtpSink) -> None:
    settings = replace(sink_settings(smtp_sink), envelope_sender="bounces@example.org")
    send(render(), settings)
    assert smtp_sink.messages[0][0] == "bounces@example.org"


def test_outbox_send_opens_its_own_connection(smtp_sink: SmtpSink) -> None:
    send(render(), sink_settings(smtp_sink))
    assert len(smtp_sink.messages) == 1


def test_outbox_logs_in_when_a_username_is_set(smtp_sink: SmtpSink) -> None:
    send(render(), sink_settings(smtp_sink, username=SINK_USER, password=PASSWORD))
    assert smtp_sink.logins == [SINK_USER] and len(smtp_sink.messages) == 1


def test_outbox_refused_login_is_temporary(smtp_sink: SmtpSink) -> None:
    with pytest.raises(SendError) as caught:
        send(render(), sink_settings(smtp_sink, username=SINK_USER, password="wrong"))
    assert not caught.value.permanent and caught.value.code == 535
    assert smtp_sink.messages == []


def test_outbox_451_is_temporary(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(451)
    with pytest.raises(SendError) as caught:
        send(render(), sink_settings(smtp_sink))
    assert not caught.value.permanent and caught.value.code == 451
    assert "sam@example.org" not in str(caught.value) and "451 4.0.0" in str(caught.value)


def test_outbox_550_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject("sam@example.org", 550)
    with pytest.raises(SendError) as caught:
        send(render(), sink_settings(smtp_sink))
    assert caught.value.permanent and caught.value.code == 550
    assert "sam@example.org" not in str(caught.value)


def test_outbox_connection_survives_a_refusal(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(552, at="data")
    settings = sink_settings(smtp_sink)
    with SmtpConnection(settings) as connection:
        with pytest.raises(SendError) as caught:
            connection.send(render())
        assert caught.value.permanent and caught.value.code == 552
        connection.send(render())
    assert len(smtp_sink.messages) == 1


def test_outbox_connection_refused_is_temporary() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), security="none")
    with pytest.raises(SendError) as caught:
        send(render(), settings)
    assert not caught.value.permanent and "ConnectionRefusedError" in str(caught.value)


def test_outbox_silent_server_times_out(silent_port: int) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=silent_port, security="none", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(SendError) as caught, SmtpConnection(settings) as connection:
        connection.send(render())
    assert time.monotonic() - started < 5
    assert not caught.value.permanent


def test_outbox_starttls_required_but_not_offered(smtp_sink: SmtpSink) -> None:
    settings = replace(sink_settings(smtp_sink), security="starttls")
    with pytest.raises(SendError, match="SMTPNotSupportedError") as caught:
        send(render(), settings)
    assert not caught.value.permanent and smtp_sink.messages == []


def test_outbox_no_password_in_clear_to_a_remote_host() -> None:
    settings = SmtpSettings(host="192.0.2.1", port=25, security="none", username="u", password="p")
    with pytest.raises(SendError, match="without TLS"):
        send(render(), settings)


# The pickup folder (embedded default)


def test_outbox_pickup_writes_private_files(tmp_path: Path) -> None:
    outgoing = render()
    folder = tmp_path / "outbox"
    path = write_pickup(outgoing, folder)
    assert path.parent == folder and path.suffix == ".eml"
    assert path.name.startswith("ack-") and "<" not in path.name
    assert path.read_bytes() == outgoing.data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert os.listdir(folder) == [path.name]  # no temporary file left behind


def test_outbox_pickup_is_idempotent_and_never_overwrites(tmp_path: Path) -> None:
    outgoing = render()
    first = write_pickup(outgoing, tmp_path)
    assert write_pickup(outgoing, tmp_path) == first
    impostor = replace(render(), message_id=outgoing.message_id)
    with pytest.raises(SendError) as caught:
        write_pickup(impostor, tmp_path)
    assert caught.value.permanent
    assert first.read_bytes() == outgoing.data and os.listdir(tmp_path) == [first.name]


def test_outbox_pickup_goes_round_a_temporary_file_a_crash_left(tmp_path: Path) -> None:
    outgoing = render()
    left = tmp_path / f".{os.getpid()}.{pickup_name(outgoing.message_id)}.tmp"
    left.write_bytes(b"half a message")  # a crashed run with this process id left it
    path = write_pickup(outgoing, tmp_path)
    assert path.read_bytes() == outgoing.data and left.read_bytes() == b"half a message"
    assert sorted(os.listdir(tmp_path)) == sorted([left.name, path.name])


def test_outbox_send_without_a_host_uses_the_pickup_folder(tmp_path: Path) -> None:
    outgoing = render()
    send(outgoing, SmtpSettings(pickup_dir=str(tmp_path / "outbox")))
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1 and files[0].read_bytes() == outgoing.data


def test_outbox_hostile_message_id_makes_a_safe_file_name(tmp_path: Path) -> None:
    outgoing = replace(render(), message_id="<../../etc/passwd@x>")
    path = write_pickup(outgoing, tmp_path)
    assert path.parent == tmp_path and path.name == ".._.._etc_passwd@x.eml"


def test_outbox_template_syntax_in_names_stays_literal() -> None:
    outgoing = render(team_name="{{ 7*7 }} Team")
    _, text, html = parts(outgoing)
    assert "{{ 7*7 }} Team" in text and "49" not in text and "49" not in html


def test_outbox_subject_from_config() -> None:
    outgoing = render(subjects={"acknowledgement": "Auto: Story received [{reference}] {0.x}"})
    message, _, _ = parts(outgoing)
    assert message["Subject"] == f"Auto: Story received [{REFERENCE}] {{0.x}}"


@pytest.mark.parametrize(
    "template", ["request_press", "request_event", "request_question", "request_amend",
                 "unsubscribe_confirmation"],
)  # fmt: skip
def test_outbox_request_template_shows_help_text_only_when_urgent(template: str) -> None:
    help_line = "If you are in immediate danger, please call 999."
    for urgent in (False, True):
        decision = Decision(True, "send", template, "sam@example.org", urgent)
        _, text, html = parts(render(decision))
        assert (help_line in text, help_line in html) == (urgent, urgent)
        assert "What happens next" in text and REFERENCE in text
