"""Acknowledge stage, the policy: who gets a reply, which template, and why not."""

from __future__ import annotations

import contextlib
import csv
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.errors import ParseError
from intake.parse import parse
from intake.records import Address, RawMessage, Story, Triage
from triage.reply.policy import (
    SUPPRESSION_ORDER,
    Decision,
    decide,
    is_crisis,
    is_plausible_mailbox,
    normalise_sender,
)
from triage.reply.settings import AcknowledgementSettings
from triage.tag.examples import story_from_text
from triage.tag.tagger import Tagger, tag_many

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
OWN = ("stories@example.org",)
CRISIS_TERMS = AcknowledgementSettings().crisis_terms
BASE = replace(
    story_from_text("story-1@example.net", "I had to tell the GP, the hospital and the council "
                    "the same thing three times before anyone listened."),
    sender=Address("Ann Jones", "ann@example.net"),
    recipients=(Address("Stories team", "stories@example.org"),),
    subject="My story",
    received_at=NOW - timedelta(hours=1),
)  # fmt: skip


def never(address: str) -> bool:
    """``recently_acknowledged`` for a sender the store has never answered."""
    return False


def run(
    story: Story = BASE,
    kind: str = "story",
    settings: AcknowledgementSettings | None = None,
    recently: Callable[[str], bool] = never,
    own: tuple[str, ...] = OWN,
    authenticated: bool = False,
    unsubscribed: bool = False,
) -> Decision:
    triage = Triage(story.story_id, kind, (), (), (), ())
    return decide(story, triage, own, settings or AcknowledgementSettings(), NOW, recently,
                  authenticated=authenticated, unsubscribed=unsubscribed)  # fmt: skip


def case(reason: str, *, kind: str = "story", **changes: Any) -> Any:
    """One suppression case: the story's changed fields (``settings``/``recent`` aside)."""
    case_id = changes.pop("id", reason)
    return pytest.param(reason, kind, changes, id=case_id)


def headers(*pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(pairs)


SUPPRESSED = [
    case("disabled", settings=AcknowledgementSettings(enabled=False)),
    case("auto_submitted", headers=headers(
        ("auto-submitted", 'Auto-Replied; owner-email="x@example.org"')), id="auto_replied_param"),
    case("auto_submitted", headers=headers(("auto-submitted", "no"),
                                           ("auto-submitted", "auto-generated")), id="two_headers"),
    case("auto_submitted", headers=headers(("auto-submitted", "")), id="auto_submitted_empty"),
    case("auto_submitted", headers=headers(("x-autoreply", "yes")), id="x_autoreply"),
    case("auto_submitted", headers=headers(("x-apple-action", "VACATION")), id="apple_vacation"),
    case("auto_submitted", headers=headers(("x-autorespond", "1")), id="x_autorespond"),
    case("auto_submitted", headers=headers(
        ("x-ms-exchange-generated-message-source", "Mailbox Rules Agent")), id="exchange_agent"),
    case("bulk", headers=headers(("precedence", "BULK"))),
    case("bulk", headers=headers(("precedence", "junk")), id="precedence_junk"),
    case("bulk", headers=headers(("precedence", " list ")), id="precedence_list"),
    case("list_mail", headers=headers(("list-id", "<campaign.lists.example.org>"))),
    case("list_mail", headers=headers(("list-unsubscribe", "<mailto:u@example.org>")),
         id="list_unsubscribe"),
    case("list_mail", headers=headers(("list-archive", "<https://lists.example.org/>")),
         id="list_archive"),
    case("suppressed_by_sender", headers=headers(("x-auto-response-suppress", "DR, OOF"))),
    case("suppressed_by_sender", headers=headers(("x-auto-response-suppress", "RN,  AutoReply")),
         id="suppress_autoreply"),
    case("suppressed_by_sender", headers=headers(("x-auto-response-suppress", "all")),
         id="suppress_all"),
    case("null_sender", headers=headers(("return-path", "< >"))),
    case("null_sender", headers=headers(("return-path", "<>")), id="return_path_tight"),
    case("bounce", headers=headers(
        ("content-type", 'Multipart/Report; report-type="disposition-notification"'))),
    case("system_sender", sender=Address("Mail Delivery System", "MAILER-DAEMON@mx.example.net")),
    case("system_sender", sender=Address("", "owner-list@lists.example.net"), id="owner_list"),
    case("system_sender", sender=Address("", "list-request@lists.example.net"), id="request"),
    case("system_sender", sender=Address("", "no_reply@example.net"), id="no_reply"),
    case("system_sender", sender=Address("", "Do-Not-Reply@example.net"), id="do_not_reply"),
    case("system_sender", sender=Address("", "noreply-dmarc@example.net"), id="noreply_prefix"),
    case("system_sender", sender=Address("", "bounces+123-ann=example.net@mg.example.com"),
         id="verp_bounces"),
    case("system_sender", headers=headers(("return-path", "<postmaster@mx.example.net>")),
         id="envelope_postmaster"),
    case("own_address", sender=Address("Stories", "Stories@Example.ORG")),
    case("loop", headers=headers(("in-reply-to", "<ack-123@example.org>"))),
    case("loop", headers=headers(("references", "<a@example.net> <ACK-9@EXAMPLE.ORG>")),
         id="loop_references"),
    case("loop", headers=headers(("x-loop", "stories@example.org")), id="x_loop"),
    case("not_addressed", recipients=(Address("", "someone@example.org"),), id="bcc_copy"),
    case("not_addressed", recipients=(), id="no_recipients"),
    case("not_addressed", recipients=(Address("", "stories+press@example.org"),), id="plus_tag"),
    case("bad_sender", sender=Address("Ann", ""), id="no_sender"),
    case("automated", kind="automated"),
    case("too_old", received_at=NOW - timedelta(days=7, seconds=1)),
    case("rate_limited", recent=True),
    case("unsubscribed", unsubscribed=True),
    case("unverified_sender", headers=headers(("return-path", "<attacker@evil.example>"))),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "kind", "changes"), SUPPRESSED)
def test_acknowledge_suppression_reasons(reason: str, kind: str, changes: dict[str, Any]) -> None:
    fields = dict(changes)
    settings = fields.pop("settings", None)
    recent = fields.pop("recent", False)
    unsubscribed = fields.pop("unsubscribed", False)
    decision = run(replace(BASE, **fields), kind, settings, lambda _: recent,
                   unsubscribed=unsubscribed)  # fmt: skip
    assert decision == Decision(False, reason, "", "")


def test_acknowledge_every_reason_code_has_a_case() -> None:
    assert {p.values[0] for p in SUPPRESSED} == set(SUPPRESSION_ORDER)


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        ((("list-id", "<l.example.org>"), ("auto-submitted", "auto-replied")), "auto_submitted"),
        ((("return-path", "<>"), ("precedence", "bulk")), "bulk"),
        ((("content-type", "multipart/report"), ("x-auto-response-suppress", "OOF")),
         "suppressed_by_sender"),
        ((("in-reply-to", "<ack-1@example.org>"), ("content-type", "multipart/report")), "bounce"),
    ],
)  # fmt: skip
def test_acknowledge_first_reason_in_order_wins(
    pairs: tuple[tuple[str, str], ...], reason: str
) -> None:
    assert run(replace(BASE, headers=pairs)).reason == reason


@pytest.mark.parametrize(
    "pairs",
    [
        (("AUTO-SUBMITTED", "no"),),
        (("auto-submitted", " No ; reason=person"),),
        (("precedence", "first-class"),),
        (("x-auto-response-suppress", "DR, RN, NRN"),),
        (("return-path", "<ann@example.net>"),),
        (("content-type", "multipart/mixed; boundary=x"),),
        (("in-reply-to", "<ack-1@elsewhere.example.net>"),),
        (("references", "<story-1@example.org>"),),
        (("x-loop", "other-desk@example.org"),),
    ],
)
def test_acknowledge_ordinary_headers_still_send(pairs: tuple[tuple[str, str], ...]) -> None:
    assert run(replace(BASE, headers=pairs)) == Decision(True, "send", "acknowledgement",
                                                         "ann@example.net")  # fmt: skip


@pytest.mark.parametrize(
    "address",
    ["ann", "ann@@example.net", "ann@bob@example.net", "ann smith@example.net", "ann@example",
     "ann@-example.net", "ann@example-.net", "ann@exa_mple.net", "ann@example..net",
     "ann@example.net.", '"ann"@example.net', "ann,bob@example.net", "ann@example.net\x00",
     "ann\t@example.net", "a" * 65 + "@example.net", "a@" + "b" * 60 + (".b" * 100) + ".net",
     "ann@[192.0.2.1]", "ann@192.0.2.1", ".ann@example.net", "ann.@example.net",
     "an..n@example.net", "ann@example.net>", "<ann@example.net", "ann<x>@example.net",
     "ann@" + "b" * 64 + ".net", "@example.net", "ann@", "ann@example.net;bob@example.net"],
)  # fmt: skip
def test_acknowledge_bad_sender(address: str) -> None:
    assert not is_plausible_mailbox(address)
    assert run(replace(BASE, sender=Address("", address))).reason == "bad_sender"


@pytest.mark.parametrize(
    "address",
    ["o'brien@example.ie", "ann+stories@example.net", "ann@mail.example.co.uk",
     "ann@xn--exmple-cua.net", "ann@exämple.net", "a" * 64 + "@example.net"],
)  # fmt: skip
def test_acknowledge_plausible_senders(address: str) -> None:
    assert is_plausible_mailbox(address)
    assert run(replace(BASE, sender=Address("", address))).send


def test_acknowledge_age_boundary() -> None:
    at_limit = replace(BASE, received_at=NOW - timedelta(days=7))
    assert run(at_limit).send
    assert run(replace(at_limit, received_at=at_limit.received_at - timedelta(seconds=1))).reason \
        == "too_old"  # fmt: skip
    assert run(at_limit, settings=AcknowledgementSettings(max_age_days=6)).reason == "too_old"


def test_acknowledge_rate_limit_asks_with_the_normalised_address() -> None:
    asked: list[str] = []

    def recently(address: str) -> bool:
        asked.append(address)
        return False

    sender = Address("Ann", "SRS0=Hq7x=TT=Example.NET=Ann@forwarder.example.com")
    decision = run(replace(BASE, sender=sender), recently=recently)
    assert asked == ["ann@example.net"]
    assert decision.to == "ann@example.net"


def test_acknowledge_rate_limit_not_asked_when_already_suppressed() -> None:
    def fail(address: str) -> bool:
        raise AssertionError("the store should not be asked")

    story = replace(BASE, headers=(("precedence", "bulk"),))
    assert run(story, recently=fail).reason == "bulk"
    assert run(BASE, kind="automated", recently=fail).reason == "automated"


@pytest.mark.parametrize(
    ("kind", "text", "reason", "template", "urgent"),
    [
        ("story", BASE.text, "send", "acknowledgement", False),
        ("request:press", "I'm a journalist, can I talk to someone?", "send", "request_press",
         False),
        ("request:question", "How will my story be used?", "send", "request_question", False),
        ("request:event", "Is the event on Friday open to carers?", "send", "request_event",
         False),
        ("request:amend", "Please change my dad's age to 83.", "send", "request_amend", False),
        ("request:unsubscribe", "Please take me off your list.", "send_unsubscribe",
         "unsubscribe_confirmation", False),
        # A request keeps its own template; the help text goes into it (see test_outbox).
        ("request:question", "Who do I call? I want to end my life.", "send",
         "request_question", True),
        ("request:withdrawal", "Please don't use my story.", "send_withdrawal",
         "withdrawal_confirmation", False),
        ("story", "Since the police left I am not safe tonight.", "send",
         "acknowledgement_urgent", True),
        ("story", "Some days I want to KILL MYSELF.", "send", "acknowledgement_urgent", True),
        # The withdrawal confirmation wins; the story is still urgent for the digest.
        ("request:withdrawal", "Withdraw it, I'm thinking of suicide.", "send_withdrawal",
         "withdrawal_confirmation", True),
    ],
)  # fmt: skip
def test_acknowledge_templates(
    kind: str, text: str, reason: str, template: str, urgent: bool
) -> None:
    # Authenticated: a request that changes data would otherwise wait for a person.
    decision = run(replace(BASE, text=text), kind, authenticated=True)
    assert decision == Decision(True, reason, template, "ann@example.net", urgent)


def test_acknowledge_crisis_in_subject_gets_urgent_template() -> None:
    story = replace(BASE, subject="I can't take it, I want to end my life", text="see below")
    assert run(story).template == "acknowledgement_urgent"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I took an Overdose last year", True),
        ("after he overdosed", True),
        ("she talks about self-harm", True),
        ("she talks about self\nharm", True),
        ("I don’t feel safe at home", True),
        ("he said he'd end my life", True),
        ("we were in immediate   danger", True),
        # Whole words only, and the trade-off: help is signposted to a busy clerk too.
        ("an overdose of paperwork", True),
        ("my killjoy brother-in-law", False),
        ("the harmony of it", False),
        ("suicides", False),
        ("", False),
    ],
)  # fmt: skip
def test_acknowledge_is_crisis(text: str, expected: bool) -> None:
    assert is_crisis(text, CRISIS_TERMS) is expected


def test_acknowledge_urgent_is_carried_by_every_decision() -> None:
    crisis = replace(BASE, text="Some nights I want to die.")
    assert run(crisis, settings=AcknowledgementSettings(enabled=False)).urgent
    assert run(replace(crisis, headers=(("precedence", "bulk"),))).urgent
    assert not run(BASE).urgent


def test_acknowledge_is_crisis_custom_terms_and_long_input() -> None:
    assert is_crisis("I'm scared of him", ("scared of him",))
    assert not is_crisis("I'm scared of him", ())
    assert not is_crisis("a" * 200_000 + " kill" * 50_000, CRISIS_TERMS)


def _crisis_by_words(text: str, terms: tuple[str, ...]) -> bool:
    """The definition is_crisis keeps: some term's words are consecutive words of the text."""
    words = re.findall(r"\w+", text.casefold())
    wanted = [tuple(re.findall(r"\w+", t.casefold())) for t in terms]
    return any(tuple(words[i : i + len(w)]) == w for w in wanted if w for i in range(len(words)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["kill", "myself", "self", "harm", "overdose", "don", "t",
                                 "feel", "safe", "Killing", "é", "ß", "x", "_", "9"]), max_size=8),
       st.lists(st.sampled_from([" ", "-", "’", "'", "\n", "", "é", "_", ".", "\u00a0"]),
                min_size=8, max_size=8))  # fmt: skip
def test_acknowledge_is_crisis_scan_misses_nothing_the_words_find(
    words: list[str], gaps: list[str]
) -> None:
    text = "".join(w + g for w, g in zip(words, gaps, strict=False))
    assert is_crisis(text, CRISIS_TERMS) is _crisis_by_words(text, CRISIS_TERMS)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("  <Ann@Example.NET> ", "ann@example.net"),
        ("SRS0=Hq7x=TT=example.net=ann@forwarder.example.com", "ann@example.net"),
        ("srs0+Hq7x=TT=example.net=ann=x@forwarder.example.com", "ann=x@example.net"),
        ("SRS1=Hk2=first.example.com==Hq7x=TT=example.net=ann@second.example.com",
         "ann@example.net"),
        ("prvs=1234567890=ann@example.net", "ann@example.net"),
        ("msprvs1=17abcdefgh=ann@example.net", "ann@example.net"),
        ("btv1==0123456789a==Ann@example.net", "ann@example.net"),
        ("SRS0=Hq7x=TT=example.net=prvs=1234567890=ann@fw.example.com", "ann@example.net"),
        ("ann+stories@example.net", "ann+stories@example.net"),
        ("SRS0=broken@forwarder.example.com", "srs0=broken@forwarder.example.com"),
        ("prvs=@example.net", "prvs=@example.net"),
        ("MAILER-DAEMON", "mailer-daemon"),
        ("", ""),
    ],
)  # fmt: skip
def test_acknowledge_normalise_sender(address: str, expected: str) -> None:
    assert normalise_sender(address) == expected


def test_acknowledge_own_addresses_are_normalised() -> None:
    assert run(own=("<STORIES@example.org>",)).send
    assert run(own=("desk@example.org", "Stories@Example.org")).send


def parse_file(path: Path) -> Story:
    data = path.read_bytes()
    return parse(RawMessage("INBOX", 1, 1, NOW - timedelta(hours=1), len(data), data))


def test_acknowledge_parsed_messages() -> None:
    assert run(parse_file(DATA / "exchange_inbox_rule_auto_reply.eml")).reason == "auto_submitted"
    story = parse_file(DATA / "srs_forwarded_story.eml")
    # Forwarded with SRS: the address inside is answered only when the border authenticated
    # From (else it is text anyone could write, and the envelope is another domain).
    assert run(story).reason == "unverified_sender"
    forwarded = decide(
        story,
        Triage(story.story_id, "story", (), (), (), ()),
        OWN,
        AcknowledgementSettings(),
        NOW,
        lambda _: False,
        authenticated=True,
    )
    assert forwarded == Decision(True, "send", "acknowledgement", "ann.jones@example.net")
    ooo = parse_file(DATA.parents[1] / "samples/stories/22-auto-out-of-office.eml")
    assert run(ooo).reason == "auto_submitted"
    assert run(replace(ooo, headers=tuple(h for h in ooo.headers if h[0] == "in-reply-to"))) \
        .reason == "loop"  # fmt: skip


# Real mail the headers kept in Story.headers cannot tell from a person's (header rules only:
# the tagger's kind is "story" here). Each is for a general reason, not a missing rule:
KNOWN_SENT = {
    # Upstream labels these as ordinary mail ("is not bounce"): replying is right.
    "maildir/not/is-not-bounce-01.eml", "maildir/not/is-not-bounce-02.eml",
    # A person forwarding a bounce ("Fwd: Returned mail"): a person wrote it; the tagger's text
    # judgement marks it automated.
    "maildir/bsd/lhost-sendmail-14.eml", "maildir/err/make-test-36.eml",
    # Hotmail JMRP abuse reports sent as multipart/mixed from staff@hotmail.com: no marker.
    "maildir/bsd/arf-22.eml", "maildir/bsd/arf-23.eml", "maildir/bsd/arf-24.eml",
    # iCloud vacation reply: its only marker, X-Apple-Action: VACATION, is not kept by parse.
    "maildir/bsd/rfc3834-03.eml",
}  # fmt: skip


def sisimai_messages(corpus: Path) -> list[Path]:
    with (corpus / "MANIFEST.tsv").open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [corpus / row["path"] for row in rows if row["role"] == "message"
                and row["path"].startswith("sisimai-set-of-emails/maildir/")]  # fmt: skip


def test_acknowledge_corpus_bounces_and_auto_replies_are_suppressed(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = sisimai_messages(corpus)
    assert len(paths) > 800
    reasons: Counter[str] = Counter()
    sent: set[str] = set()
    for path in paths:
        try:
            story = parse_file(path)
        except ParseError:
            continue
        # The first recipient counts as ours, so `not_addressed` cannot hide a missing rule.
        own = OWN + tuple(r.address for r in story.recipients[:1])
        decision = run(story, own=own)
        reasons[decision.reason] += 1
        if decision.send:
            sent.add(path.relative_to(corpus / "sisimai-set-of-emails").as_posix())
    assert sent <= KNOWN_SENT
    assert {p for p in sent if "/not/" in p} == {p for p in KNOWN_SENT if "/not/" in p}
    with capsys.disabled():
        print(f"\nacknowledge corpus: {sum(reasons.values())} decided, {dict(reasons)}")


EVERY_AGE = AcknowledgementSettings(max_age_days=100_000)  # the corpus spans decades


def test_acknowledge_whole_corpus_report(
    corpus: Path, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every raw message in the corpus, tagged by the real tagger, `not_addressed` left out:
    # bounces, auto-replies and list mail must be suppressed.
    with (corpus / "MANIFEST.tsv").open(newline="", encoding="utf-8") as handle:
        paths = [corpus / row["path"] for row in csv.DictReader(handle, delimiter="\t")
                 if row["role"] == "message"]  # fmt: skip
    stories = []
    for path in paths:
        with contextlib.suppress(ParseError):
            stories.append((path.relative_to(corpus).as_posix(), parse_file(path)))
    triages = tag_many([story for _, story in stories], tagger)
    reasons: Counter[str] = Counter()
    sent: set[str] = set()
    for (name, story), triage in zip(stories, triages, strict=True):
        own = OWN + tuple(r.address for r in story.recipients[:1])
        decision = decide(story, triage, own, EVERY_AGE, NOW, never)
        reasons[decision.reason] += 1
        if decision.send:
            sent.add(name)
    out_of_office = {n for n, _ in stories if "rfc3834" in n or n.endswith("/issue212")}
    assert len(out_of_office) == 9 and not out_of_office & sent
    bounces = {n for n, _ in stories if n.startswith("sisimai-set-of-emails/maildir/")
               and "/not/" not in n}  # fmt: skip
    assert not bounces & sent
    assert not {n for n, s in stories if any(h.startswith("list-") for h, _ in s.headers)} & sent
    with capsys.disabled():
        print(f"\nacknowledge whole corpus: {len(stories)} decided, {len(sent)} would be "
              f"acknowledged; {dict(reasons.most_common())}")  # fmt: skip


def test_acknowledge_unsubscribed_inbox_gets_nothing_whatever_it_sends() -> None:
    for kind in ("story", "request:withdrawal", "request:unsubscribe", "request:question"):
        decision = run(BASE, kind, authenticated=True, unsubscribed=True)
        assert (decision.send, decision.held, decision.reason) == (False, False, "unsubscribed")


def test_acknowledge_unsubscribe_is_not_rate_limited_by_an_earlier_acknowledgement() -> None:
    # The store passes unsubscribe confirmations' own window (deliver); a story acknowledged
    # yesterday must not swallow the confirmation. Here: nothing recent among unsubscribes.
    decision = run(BASE, "request:unsubscribe")
    assert decision == Decision(True, "send_unsubscribe", "unsubscribe_confirmation",
                                "ann@example.net")  # fmt: skip


@pytest.mark.parametrize(
    ("return_path", "authenticated", "held"),
    [
        ("<ann@example.net>", False, False),  # the confirmation reaches the inbox it silences
        ("<Ann+news@Example.NET>", False, False),  # the same inbox (identity folds the tag)
        ("<ann.jones@example.net>", False, True),  # same domain, another inbox: a person checks
        ("<ann.jones@example.net>", True, False),  # the border vouched for the From domain
        ("<mallory@evil.example>", False, True),  # not suppressed as unverified_sender: held
    ],
)  # fmt: skip
def test_acknowledge_unsubscribe_is_held_unless_it_reaches_the_inbox_it_silences(
    return_path: str, authenticated: bool, held: bool
) -> None:
    story = replace(BASE, headers=(("return-path", return_path),))
    decision = run(story, "request:unsubscribe", authenticated=authenticated)
    assert decision.held is held and decision.send is not held
    assert decision.template == "unsubscribe_confirmation"
    assert decision.reason == ("unverified_request" if held else "send_unsubscribe")


def test_acknowledge_unsubscribe_the_classifier_was_unsure_of_is_held() -> None:
    # Silencing an inbox for good on a guess: a person confirms, even when authenticated.
    triage = Triage(BASE.story_id, "request:unsubscribe", (), (), (), ("uncertain_kind",))
    decision = decide(BASE, triage, OWN, AcknowledgementSettings(), NOW, never,
                      authenticated=True)  # fmt: skip
    assert (decision.held, decision.reason) == (True, "unverified_request")
