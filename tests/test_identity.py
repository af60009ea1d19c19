"""The rate limit's notion of one inbox: every way of writing one address maps to one key,
different inboxes never share one; and end to end, 26 variants of one inbox get one reply."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from conftest import SmtpSink, seed_maildir, story_message
from hypothesis import given
from hypothesis import strategies as st

from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.pipeline import run_once
from triage.reply.identity import mailbox_identity
from triage.reply.settings import SmtpSettings
from triage.tag.tagger import Tagger

LOCAL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20)
TAG = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=0, max_size=10)
DOMAINS = st.sampled_from(["example.org", "example.net", "mail.example.org", "bücher.example"])


@st.composite
def variant(draw: st.DrawFn, local: str, domain: str) -> str:
    """One way of writing ``local@domain`` that reaches the same inbox."""
    gmail = domain == "gmail.com"
    if gmail and len(local) > 1:  # dots anywhere inside, never doubled or at the ends
        cuts = draw(st.sets(st.integers(1, len(local) - 1)))
        local = "".join(("." if i in cuts else "") + c for i, c in enumerate(local))
    if draw(st.booleans()):
        local += "+" + draw(TAG)
    if gmail and draw(st.booleans()):
        domain = "googlemail.com"
    address = "".join(c.upper() if draw(st.booleans()) else c for c in f"{local}@{domain}")
    wrap = draw(st.sampled_from(["", "srs0", "srs1", "prvs", "btv1", "srs-prvs", "brackets"]))
    return _wrapped(address, wrap)


def _wrapped(address: str, wrap: str) -> str:
    local, _, domain = address.rpartition("@")
    if wrap == "srs0":
        return f"SRS0=HHH=TT={domain}={local}@forwarder.example.net"
    if wrap == "srs1":
        return f"SRS1=HHH=relay.example.net==HHH=TT={domain}={local}@forwarder.example.net"
    if wrap == "prvs":
        return f"prvs=0123abcd={local}@{domain}"
    if wrap == "btv1":
        return f"btv1==0123abcd=={local}@{domain}"
    if wrap == "srs-prvs":
        return f"SRS0=HHH=TT={domain}=prvs=0123abcd={local}@forwarder.example.net"
    return f" <{address}> " if wrap == "brackets" else address


@given(st.data(), LOCAL, st.sampled_from(["gmail.com", "example.org", "bücher.example"]))
def test_identity_every_variant_of_one_inbox_has_one_key(
    data: st.DataObject, local: str, domain: str
) -> None:
    first = data.draw(variant(local, domain))
    second = data.draw(variant(local, domain))
    assert mailbox_identity(first) == mailbox_identity(second) == mailbox_identity(
        f"{local}@{domain}")  # fmt: skip


@given(LOCAL, LOCAL, DOMAINS)
def test_identity_different_inboxes_stay_different(one: str, other: str, domain: str) -> None:
    if one != other:
        assert mailbox_identity(f"{one}@{domain}") != mailbox_identity(f"{other}@{domain}")
    assert mailbox_identity(f"{one}@{domain}") != mailbox_identity(f"{one}@other.example")


@pytest.mark.parametrize(("address", "expected"), [
    ("<V.ictim+26@GoogleMail.com>", "victim@gmail.com"),
    ("jo.smith@example.org", "jo.smith@example.org"),  # dots matter outside Gmail
    ("mary-jane@example.org", "mary-jane@example.org"),  # "-" is not a subaddress separator
    ("ann+stories@Example.ORG.", "ann@example.org"),
    ("+tag@example.org", "+tag@example.org"),  # no base name: kept whole, never "@example.org"
    ("sam@BÜCHER.example", "sam@xn--bcher-kva.example"),
    ("SRS0=abcd=TT=gmail.com=V.i.c.t.i.m@forwarder.example.net", "victim@gmail.com"),
])  # fmt: skip
def test_identity_examples(address: str, expected: str) -> None:
    assert mailbox_identity(address) == expected


def victim_variants() -> list[str]:
    """26 ways of writing one Gmail inbox, each one a plausible reply address."""
    tagged = [f"victim+{n}@gmail.com" for n in range(1, 15)]
    return [
        "victim@gmail.com", "Victim@gmail.com", "VICTIM@GMAIL.COM", "v.ictim@gmail.com",
        "vi.ct.im@gmail.com", "victim@googlemail.com", "V.I.C.T.I.M@googlemail.com",
        "victim+n@googlemail.com", "prvs=1a2b3c4d=victim@gmail.com",
        "SRS0=HHH=TT=gmail.com=victim@forwarder.example.net", "victim.+x@gmail.com",
        "Vic.Tim+stories@GoogleMail.com", *tagged,
    ]  # fmt: skip


def test_identity_26_variants_of_one_inbox_get_one_acknowledgement(
    maildir_settings: Settings, now: datetime, tagger: Tagger
) -> None:
    variants = victim_variants()
    assert len(set(variants)) == 26
    messages = [story_message(n, sender=f"V <{a}>") for n, a in enumerate(variants)]
    seed_maildir(maildir_settings.mailbox.maildir, *messages)  # type: ignore[union-attr]
    counts = run_once(maildir_settings, now, tagger=tagger)
    assert (counts.stored, counts.acknowledged) == (26, 1)
    with Store(maildir_settings.store) as store:
        states = store.outbox.outbox_counts()
    assert states == {"sent": 1, "suppressed:rate_limited": 25}


def test_identity_a_refused_variant_does_not_stop_replies_to_the_inbox(
    maildir_settings: Settings, now: datetime, tagger: Tagger, smtp_sink: SmtpSink
) -> None:
    # A forged ann+x@ that the server refuses for good (5xx) shares ann@'s rate-limit key, but
    # must not mark ann@ undeliverable: a week later ann@ gets her reply.
    settings = dataclasses.replace(maildir_settings, smtp=SmtpSettings(
        host=smtp_sink.host, port=smtp_sink.port, security="none"))  # fmt: skip
    smtp_sink.reject("ann+x@example.org", 550)
    box = seed_maildir(settings.mailbox.maildir,  # type: ignore[union-attr]
                       story_message(1, sender="Ann <ann+x@example.org>"))  # fmt: skip
    assert run_once(settings, now, tagger=tagger).acknowledged == 0
    box.add(story_message(2, sender="Ann <ann@example.org>"))
    assert run_once(settings, now + timedelta(days=8), tagger=tagger).acknowledged == 1
    box.add(story_message(3, sender="Ann <ann+x@example.org>"))
    later = run_once(settings, now + timedelta(days=16), tagger=tagger)
    assert (later.acknowledged, later.suppressed) == (0, 1)  # the refused address: not again
    with Store(settings.store) as store:
        assert "suppressed:undeliverable" in store.outbox.outbox_counts()
