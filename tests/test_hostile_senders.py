"""Hostile senders: what a security review of the trust work found, each test failing on the
code it reviewed. Authentication-Results values the sender chose, SRS wrappers naming
someone else, envelopes From cannot vouch for, the rate limit's inbox, IDN spellings in
erasure."""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest
from conftest import seed_maildir, story_message

from intake.records import Address, Story, Triage
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.pipeline import run_once
from triage.reply.authenticity import envelope_verdict, is_authenticated
from triage.reply.policy import decide, reply_target
from triage.reply.settings import AcknowledgementSettings
from triage.tag.examples import story_from_text
from triage.tag.tagger import Tagger

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BORDER_ID = "mx.stories.example.org"
BORDER = (BORDER_ID,)
OWN = ("stories@example.org",)
JANE = replace(story_from_text("w@example.net", "I had to tell the GP three times."),
               sender=Address("Jane", "jane@example.net"),
               recipients=(Address("", "stories@example.org"),), received_at=NOW)  # fmt: skip
STORY = ("The police took my statement three times because the officers never read "
         "each other's notes, and the GP asked me to repeat it all again.")  # fmt: skip
WITHDRAW = "Please delete my story and everything I sent you. I do not want it used."


def with_headers(story: Story, *pairs: tuple[str, str], sender: str = "") -> Story:
    changed = replace(story, headers=tuple(pairs))
    return replace(changed, sender=Address("J", sender)) if sender else changed


def ar(value: str) -> tuple[str, str]:
    return ("authentication-results", f"{BORDER_ID}; {value}")


def decide_story(story: Story, kind: str = "story") -> object:
    triage = Triage(story.story_id, kind, (), (), (), ())
    return decide(story, triage, OWN, AcknowledgementSettings(), NOW, lambda _a: False,
                  authenticated=is_authenticated(story, BORDER),
                  envelope=envelope_verdict(story, reply_target(story), BORDER))  # fmt: skip


def pickup_recipients(settings: Settings) -> list[str]:
    folder = Path(settings.smtp.pickup_dir)
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        found += [a.addr_spec.lower() for a in message["To"].addresses]
    return found


# --- 1. Authentication-Results parsing: attacker-controlled values inject properties ---------


@pytest.mark.parametrize(
    "value",
    [
        # The attacker's own domain passes SPF; its envelope local part holds "=" (legal,
        # unquoted: SRS/BATV addresses look like this). Read as smtp.mailfrom=example.net.
        "spf=pass smtp.mailfrom=example.net=x@evil.example",
        # RFC 8601 pvalue: a quoted local part; its words are read as properties.
        'spf=pass smtp.mailfrom="x smtp.mailfrom=example.net y"@evil.example',
        # The DKIM i= tag is the signer's choice (any local part within d=).
        "dkim=pass header.d=evil.example header.i=example.net=x@evil.example",
        # An escaped quote inside a quoted local part ends the quoted string for _split: the
        # rest becomes a separate, forged "dmarc=pass" result.
        'spf=pass smtp.mailfrom="a\\"; dmarc=pass header.from=example.net; x=\\""@evil.example',
    ],
    ids=["equals_in_local_part", "quoted_local_part", "dkim_i_local_part", "escaped_quote"],
)
def test_authenticity_values_the_sender_chose_never_authenticate_another_domain(
    value: str,
) -> None:
    """The border's own header, topmost and trusted, with values the sender chose."""
    story = with_headers(JANE, ar(value))
    assert not is_authenticated(story, BORDER)


# --- 2. SRS-wrapped From: an authenticated withdrawal for the attacker's own domain holds ---
#        (and queues for erasure) another person's stories.


def test_privacy_srs_wrapped_from_withdrawal_holds_nobody_elses_stories(
    maildir_settings: Settings, tagger: Tagger
) -> None:
    settings = replace(maildir_settings, intake=replace(
        maildir_settings.intake, trusted_authserv_ids=(BORDER_ID,)))  # fmt: skip
    box = settings.mailbox.maildir  # type: ignore[union-attr]
    seed_maildir(box, story_message(1, sender="Jane <jane@example.net>", body=STORY,
                                    Return_Path="<jane@example.net>"))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    # The attacker owns evil.example and DKIM-signs for it: the border truthfully says so.
    forged = story_message(
        2, sender="J <SRS0=abcd=TT=example.net=jane@evil.example>", body=WITHDRAW,
        Return_Path="<attacker@evil.example>",
        Authentication_Results=f"{BORDER_ID}; dkim=pass header.d=evil.example; "
        "dmarc=pass header.from=evil.example")  # fmt: skip
    seed_maildir(box, forged)
    run_once(settings, T0 + timedelta(minutes=5), tagger=tagger)
    with Store(settings.store) as store:
        held = store.privacy.on_hold()
    assert held == [], "Jane's story went on hold (awaiting erasure) on a stranger's request"


# --- 3. Replies to a third party ------------------------------------------------------------


def test_acknowledge_srs_return_path_is_not_unwrapped_to_a_third_party() -> None:
    """Envelope is the attacker's own (SPF passes for evil.example), From names the victim,
    DMARC fails: the reply must not go to the victim."""
    story = with_headers(
        JANE,
        ("return-path", "<SRS0=abcd=TT=example.net=jane@evil.example>"),
        ar("spf=pass smtp.mailfrom=evil.example; dmarc=fail header.from=example.net"),
    )
    decision = decide_story(story)
    assert getattr(decision, "to", "") != "jane@example.net"


def test_acknowledge_authenticated_from_does_not_vouch_for_a_foreign_envelope() -> None:
    """The attacker DKIM-signs mail from their own domain (dmarc=pass for evil.example) and
    sets MAIL FROM to the victim (SPF fails for it). From is authenticated; the envelope
    is not: the acknowledgement must not go to the victim."""
    story = with_headers(
        JANE,
        ("return-path", "<victim@victim.example>"),
        ar(
            "spf=fail smtp.mailfrom=victim.example; dkim=pass header.d=evil.example; "
            "dmarc=pass header.from=evil.example"
        ),
        sender="attacker@evil.example",
    )
    decision = decide_story(story)
    assert getattr(decision, "to", "") != "victim@victim.example"


def test_acknowledge_srs_return_path_in_an_authenticated_domain_reaches_no_other_domain() -> None:
    story = with_headers(
        JANE,
        ("return-path", "<SRS0=abcd=TT=victim.example=victim@evil.example>"),
        ar("spf=pass smtp.mailfrom=evil.example; dmarc=pass header.from=evil.example"),
        sender="attacker@evil.example",
    )
    decision = decide_story(story)
    assert getattr(decision, "to", "") != "victim@victim.example"


# --- 4. Rate limit keyed on From while the reply goes to Return-Path ------------------------


def test_deliver_rate_limit_counts_the_inbox_replied_to_not_the_from_address(
    maildir_settings: Settings, tagger: Tagger
) -> None:
    """Ten messages, ten From addresses in the victim's domain, one envelope sender: the
    victim's inbox gets ten acknowledgements (the window is keyed on From)."""
    messages = [story_message(n, sender=f"P{n} <p{n}@example.net>", body=STORY,
                              Return_Path="<victim@example.net>") for n in range(10)]  # fmt: skip
    seed_maildir(maildir_settings.mailbox.maildir, *messages)  # type: ignore[union-attr]
    run_once(maildir_settings, NOW, tagger=tagger)
    to_victim = [a for a in pickup_recipients(maildir_settings) if a == "victim@example.net"]
    assert len(to_victim) <= 1, f"{len(to_victim)} acknowledgements to one inbox"


# --- 5. The border said the envelope is forged, and the reply still goes there --------------


def test_acknowledge_spf_fail_for_the_envelope_sends_no_reply_to_it() -> None:
    """Return-Path and From both name Jane; the border says SPF failed for that envelope and
    DMARC failed for the From domain: nothing proves the address, yet it gets the reply
    (only a Return-Path in *another* domain is checked)."""
    story = with_headers(
        JANE,
        ("return-path", "<jane@example.net>"),
        ar("spf=fail smtp.mailfrom=jane@example.net; dmarc=fail header.from=example.net"),
    )
    decision = decide_story(story)
    assert getattr(decision, "to", "") != "jane@example.net"


# --- 6. Erasure by sender misses the same inbox written with a U-label domain ---------------


def _utf8_story(n: int, sender: str) -> bytes:
    return (f"From: Jane <{sender}>\r\nTo: stories@example.org\r\nSubject: story {n}\r\n"
            f"Date: Tue, 24 Nov 2026 09:00:00 +0000\r\nMessage-ID: <idn-{n}@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{STORY}\r\n").encode()  # fmt: skip


def test_erasure_sender_takes_both_spellings_of_an_idn_domain(
    tmp_path: Path, tagger: Tagger, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import maildir_config

    from story_intake.cli import main
    from story_intake.settings import load_settings

    config = maildir_config(tmp_path / "site")
    settings = load_settings(config, {})
    seed_maildir(settings.mailbox.maildir,  # type: ignore[union-attr]
                 _utf8_story(1, "jane@bücher.example"),
                 _utf8_story(2, "jane@xn--bcher-kva.example"))  # fmt: skip
    run_once(settings, T0, tagger=tagger)
    with Store(settings.store) as store:
        assert len(list(store.privacy.senders())) == 2
    capsys.readouterr()
    assert main(["--config", str(config), "erase", "--sender", "jane@bücher.example"]) == 0
    with Store(settings.store) as store:
        left = [address for _, address in store.privacy.senders()]
    assert left == [], f"still stored after erasing the person: {left}"
