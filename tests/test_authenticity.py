"""Authenticity: which Authentication-Results headers count, what authenticates a From domain,
and the reply policy built on it (``decide``'s held requests and envelope replies). Pure."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from conftest import story_message
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.errors import ConfigError
from intake.parse import parse
from intake.records import Address, RawMessage, Story, Triage
from story_intake.app_settings import IntakeSettings
from triage.reply.authenticity import AuthResults, is_authenticated, parse_results
from triage.reply.policy import Decision, decide
from triage.reply.settings import AcknowledgementSettings
from triage.tag.examples import story_from_text

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
BORDER = ("mx.stories.example.org",)
JANE = replace(story_from_text("w@example.net", "Please withdraw my story."),
               sender=Address("Jane", "jane@example.net"),
               recipients=(Address("", "stories@example.org"),), received_at=NOW)  # fmt: skip


def with_headers(story: Story, *pairs: tuple[str, str]) -> Story:
    return replace(story, headers=tuple(pairs))


def results(value: str) -> tuple[str, str]:
    return ("authentication-results", value)


@pytest.mark.parametrize(
    ("value", "authenticated"),
    [
        ("mx.stories.example.org; dmarc=pass header.from=example.net", True),
        ("MX.Stories.Example.ORG 1; dmarc = pass (p=reject dis=none) header.from=EXAMPLE.NET.",
         True),
        ("mx.stories.example.org; dkim=pass header.d=example.net header.s=s1", True),
        ("mx.stories.example.org; dkim=pass header.i=@example.net", True),
        ("mx.stories.example.org; spf=pass smtp.mailfrom=jane@example.net", True),
        # Not aligned, not a pass, or not the border's own header.
        ("mx.stories.example.org; dmarc=pass header.from=example.com", False),
        ("mx.stories.example.org; dmarc=fail header.from=example.net", False),
        ("mx.stories.example.org; dmarc=pass", False),
        ("mx.stories.example.org; dkim=pass header.d=net", False),  # strict alignment only
        ("mx.stories.example.org; spf=pass smtp.mailfrom=attacker@evil.example", False),
        ("mx.evil.example; dmarc=pass header.from=example.net", False),
        ("mx.stories.example.org; dmarc=fail (dmarc=pass header.from=example.net) "
         "header.from=example.net", False),  # a pass inside a comment is a comment
        ("dmarc=pass header.from=example.net", False),  # no authserv-id at all
        ("mx.stories.example.org; none", False),
    ],
)  # fmt: skip
def test_authenticity_for_the_from_domain(value: str, authenticated: bool) -> None:
    assert is_authenticated(with_headers(JANE, results(value)), BORDER) is authenticated


def test_authenticity_nothing_counts_without_trusted_ids() -> None:
    story = with_headers(JANE, results(f"{BORDER[0]}; dmarc=pass header.from=example.net"))
    assert not is_authenticated(story, ())


def test_authenticity_a_forged_header_below_the_borders_own_is_ignored() -> None:
    # The sender wrote a header with the border's id; the border added its own above it.
    raw = story_message(1, sender="Jane <jane@example.net>", body="Please withdraw my story.")
    forged = (
        b"Authentication-Results: mx.stories.example.org; dmarc=pass header.from=example.net\r\n"
    )
    border = (
        b"Authentication-Results: mx.stories.example.org;\r\n\tspf=pass "
        b"smtp.mailfrom=evil.example;\r\n\tdmarc=fail header.from=example.net\r\n"
    )
    message = RawMessage("INBOX", 1, 1, NOW, 0, border + forged + raw)
    story = parse(message)
    assert [n for n, _ in story.headers].count("authentication-results") == 2
    assert not is_authenticated(story, BORDER)
    # The same forged header with no border header above it would count: order is the defence.
    assert is_authenticated(parse(replace(message, data=forged + raw)), BORDER)


def test_authenticity_two_from_addresses_are_never_authenticated() -> None:
    story = replace(with_headers(JANE, results(f"{BORDER[0]}; dmarc=pass header.from=example.net")),
                    defects=("multiple_from",))  # fmt: skip
    assert not is_authenticated(story, BORDER)


def test_authenticity_reads_real_world_shapes() -> None:
    gmail = parse_results(
        "mx.google.com;\n dkim=pass header.i=@googlemail.com header.s=2021 "
        "header.b=PqBP51+l;\n spf=none (google.com: a; b) smtp.helo=x.example"
    )
    assert gmail.authserv_id == "mx.google.com"
    assert [(r.method, r.result) for r in gmail.results] == [("dkim", "pass"), ("spf", "none")]
    microsoft = parse_results(
        "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; "
        "dkim=pass (signature was verified) header.d=example.com;"
        "dmarc=pass action=none header.from=example.com;compauth=pass"
    )
    assert microsoft.authserv_id == "" and len(microsoft.results) == 4
    quoted = parse_results('b.example; dkim=fail reason="key; too short" header.d=example.net')
    assert quoted.results[0].properties == (("header.d", "example.net"),)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab.=;() "\\@\t\n-/')), max_size=400))
def test_authenticity_any_header_parses(value: str) -> None:
    assert isinstance(parse_results(value), AuthResults)


def test_authenticity_hostile_headers_take_linear_time() -> None:
    for hostile in ("(" * 50_000, '"' * 50_000, "a=" * 50_000, "x; " + "k=v " * 20_000):
        started = time.perf_counter()
        parse_results(hostile)
        assert time.perf_counter() - started < 0.5


def test_authenticity_config_rejects_ids_that_could_never_match() -> None:
    with pytest.raises(ConfigError, match="trusted_authserv_ids"):
        IntakeSettings(trusted_authserv_ids=("mx.example.org; dmarc=pass",))


def run(story: Story, kind: str, authenticated: bool, envelope: str = "none") -> Decision:
    triage = Triage(story.story_id, kind, (), (), (), ())
    return decide(story, triage, ("stories@example.org",), AcknowledgementSettings(), NOW,
                  lambda _: False, authenticated=authenticated, envelope=envelope)  # fmt: skip


@pytest.mark.parametrize("kind", ["request:withdrawal", "request:amend"])
def test_authenticity_unauthenticated_request_is_held_for_a_person(kind: str) -> None:
    story = with_headers(JANE, ("return-path", "<attacker@evil.example>"))
    held = run(story, kind, authenticated=False)
    assert (held.send, held.held, held.reason, held.to) == (
        False, True, "unverified_request", "jane@example.net")  # fmt: skip
    assert held.template  # what goes to the From address once a person confirms
    # Authenticated From, envelope in another domain: sent only where the border proved it.
    assert run(story, kind, authenticated=True, envelope="pass").send
    assert run(story, kind, authenticated=True).reason == "unverified_sender"


def test_authenticity_reply_goes_to_the_envelope_sender() -> None:
    story = with_headers(JANE, ("return-path", "<SRS0=h=tt=example.net=jane.d@fwd.example>"),
                         ("return-path", "<older@example.net>"))  # fmt: skip
    # The topmost. Its SRS wrapper comes off only when the border authenticated From and
    # the address inside is in From's domain (a forwarder passed the mail on).
    assert run(story, "story", authenticated=False).reason == "unverified_sender"
    assert run(story, "story", authenticated=True).to == "jane.d@example.net"
    elsewhere = with_headers(JANE, ("return-path", "<SRS0=h=tt=other.example=x@fwd.example>"))
    assert run(elsewhere, "story", authenticated=True).reason == "unverified_sender"
    assert run(elsewhere, "story", authenticated=True, envelope="pass").to == (
        "srs0=h=tt=other.example=x@fwd.example"
    )  # the border proved the forwarder's envelope
    forged = with_headers(JANE, ("return-path", "<attacker@evil.example>"))
    assert run(forged, "story", authenticated=False).reason == "unverified_sender"
    assert run(forged, "story", authenticated=True).reason == "unverified_sender"
    assert run(forged, "story", authenticated=True, envelope="pass").to == "attacker@evil.example"
    same = with_headers(JANE, ("return-path", "<Jane@Example.net>"))
    assert run(same, "story", authenticated=False).to == "jane@example.net"
    assert run(same, "story", authenticated=False, envelope="fail").reason == "unverified_sender"
    assert run(JANE, "story", authenticated=False).to == "jane@example.net"  # no Return-Path


def test_authenticity_corpus_headers_all_parse(corpus: object) -> None:
    from pathlib import Path

    header = re.compile(rb"^Authentication-Results:(.*(?:\r?\n[ \t].*)*)", re.M | re.I)
    seen = 0
    for path in sorted(Path(str(corpus)).rglob("*")):
        if path.is_file() and path.stat().st_size < 2_000_000:
            for match in header.finditer(path.read_bytes()):
                assert isinstance(parse_results(match.group(1).decode("latin-1")), AuthResults)
                seen += 1
    assert seen > 100
