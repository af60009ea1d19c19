"""Acknowledge stage, the policy half: whether a story gets a reply, and which template. Pure.

Imports the standard library, RE2, ``intake.records``, ``triage.tag.rules`` and
``triage.reply.authenticity`` (settings types only for annotations); rendering and sending live
elsewhere. The rules follow RFC 3834 section 2,
RFC 5230 sections 4.5-4.6 (Sieve vacation) and what Dovecot's Pigeonhole vacation, Request
Tracker and Zammad do: never answer a machine, a list, a bounce, ourselves or a loop, never
answer the same person twice within ``per_sender_days``. The first reason that holds wins
(:data:`SUPPRESSION_ORDER`), and every decision carries it so the store can record why.

Loop convention: our acknowledgements carry Message-IDs ``<ack-…@our-domain>``, where
``our-domain`` is the domain of one of the intake addresses. A message whose In-Reply-To or
References names such an id is a reply to an acknowledgement (typically an out-of-office) and
is never answered. Outgoing acknowledgements should also carry ``X-Loop: <our address>`` and
``Auto-Submitted: auto-replied``.

Forged mail (RFC 3834 section 4): the reply goes to the envelope sender (the topmost
``Return-Path``), not to ``From``; when their domains differ and the team's border did not
authenticate the From domain (``authenticated``, see ``triage.reply.authenticity``), nothing is sent
(``unverified_sender``). Mail with no ``Return-Path`` at all did not come through an MTA's
final delivery (RFC 5321 section 4.4 has every delivery add one): it was put in the Maildir by
hand or by a local tool, so From is all there is and is used. A request that changes data
(:data:`CONFIRMED_BY_PERSON`) from an unauthenticated message is ``held``
(``unverified_request``) for a person, addressed to From: releasing it is the confirmation.

Unsubscribe: each request kind has its own template (:data:`REQUEST_TEMPLATES`); an
unsubscribe's is a confirmation, after which the inbox is on the store's suppression list and
everything from it is ``unsubscribed``. When a person must confirm one first: ``needs_person``.

Crisis wording: :func:`is_crisis` matches whole words, so "an overdose of paperwork" counts.
That is deliberate: the urgent template only adds where to get help today, and signposting help
to someone who did not need it costs far less than missing someone who did.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import re2

from intake.records import UNVERIFIED_REQUEST, Kind, Story, Triage
from triage.reply.address import envelope_address as envelope_address
from triage.reply.address import is_plausible_mailbox as is_plausible_mailbox
from triage.reply.address import normalise_sender as normalise_sender
from triage.reply.authenticity import domain_of
from triage.reply.identity import mailbox_identity
from triage.tag.rules import (
    AMEND,
    AUTOMATED,
    WITHDRAWAL,
    header_reason,
    is_guessed,
    is_system_sender,
)

if TYPE_CHECKING:
    from triage.reply.settings import AcknowledgementSettings

UNSUBSCRIBE = Kind.UNSUBSCRIBE
# Requests that change or remove data: acted on by themselves only when authenticated. An
# unsubscribe has a rule of its own (see ``needs_person``).
CONFIRMED_BY_PERSON = (WITHDRAWAL, AMEND)
# Each request kind's own reply: what was received, what happens next, who will answer. A
# story (and a request of a kind not listed) gets the acknowledgement.
REQUEST_TEMPLATES: dict[str, str] = {
    WITHDRAWAL: "withdrawal_confirmation", UNSUBSCRIBE: "unsubscribe_confirmation",
    AMEND: "request_amend", Kind.PRESS: "request_press", Kind.EVENT: "request_event",
    Kind.QUESTION: "request_question",
}  # fmt: skip

SUPPRESSION_ORDER = (
    "disabled", "auto_submitted", "bulk", "list_mail", "suppressed_by_sender", "null_sender",
    "bounce", "system_sender", "own_address", "loop", "not_addressed", "bad_sender",
    "automated", "unsubscribed", "too_old", "rate_limited", "unverified_sender",
)  # fmt: skip

_MESSAGE_ID = re.compile(r"<([^<>\s]{1,998})>")
_ADDRESS = re.compile(r"[^\s<>,;\"]{1,300}@[^\s<>,;\"]{1,300}")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to acknowledge a story: ``reason`` is ``send``/``send_withdrawal``/
    ``send_unsubscribe`` or a code.

    ``template`` is ``acknowledgement``, ``acknowledgement_urgent`` (a story in crisis
    wording) or a request kind's (:data:`REQUEST_TEMPLATES`), ``""`` when not sending; ``to`` is the
    normalised recipient address, ``""`` when not sending. ``urgent`` marks crisis wording
    whatever the decision, for the digest. ``held`` (reason ``unverified_request``): not sent
    until a person confirms the request; ``template`` and ``to`` say what goes out then.
    """

    send: bool
    reason: str
    template: str
    to: str
    urgent: bool = False
    held: bool = False


def decide(
    story: Story,
    triage: Triage,
    own_addresses: Sequence[str],
    settings: AcknowledgementSettings,
    now: datetime,
    recently_acknowledged: Callable[[str], bool],
    *,
    authenticated: bool = False,
    envelope: str = "none",
    unsubscribed: bool = False,
) -> Decision:
    """Decide whether ``story`` gets an acknowledgement; the first suppression reason wins.

    ``recently_acknowledged(address)`` answers from the store whether the inbox a reply would
    go to (the envelope sender) was acknowledged within ``settings.per_sender_days``; it is
    asked only when nothing before it suppresses the reply. ``authenticated``: the team's
    border vouched for the From domain (``triage.reply.authenticity.is_authenticated``);
    ``envelope``: what it says of the envelope sender
    (``triage.reply.authenticity.envelope_verdict``:
    ``pass``, ``fail`` or ``none``). ``unsubscribed``: that inbox asked for no more mail
    (``unsubscribed``, whatever the message is).
    """
    # Scanned once, whatever the outcome: a suppressed story in crisis still goes first in
    # the digest.
    urgent = is_crisis(f"{story.subject}\n{story.text}", settings.crisis_terms)
    if not settings.enabled:
        return Decision(False, "disabled", "", "", urgent)
    own = tuple(normalise_sender(a) for a in own_addresses)
    sender = normalise_sender(story.sender.address)
    reason = (
        header_reason(story.headers)
        or sender_reason(story, own)
        or _policy_reason(
            triage, story, reply_target(story), settings, now, recently_acknowledged, unsubscribed
        )
    )
    if reason:
        return Decision(False, reason, "", "", urgent)
    template = _template(triage, urgent)
    if needs_person(triage, story, authenticated):
        # A person confirms with the sender first; the reply then goes to the From address.
        return Decision(False, UNVERIFIED_REQUEST, template, sender, urgent, held=True)
    to = reply_target(story, authenticated)
    if not is_proven_envelope(to, sender, authenticated, envelope):
        return Decision(False, "unverified_sender", "", "", urgent)
    if not is_plausible_mailbox(to):
        return Decision(False, "bad_sender", "", "", urgent)
    replies: dict[str, str] = {WITHDRAWAL: "send_withdrawal", UNSUBSCRIBE: "send_unsubscribe"}
    reply = replies.get(triage.kind)
    return Decision(True, reply or "send", template, to, urgent)


def needs_person(triage: Triage, story: Story, authenticated: bool) -> bool:
    """Whether a person confirms this request before it is acted on.

    An unsubscribe silences the From inbox for good, so neither a guess nor a forger may
    cause one. A guess: when the classifier was unsure of the kind (``uncertain_kind``: an
    iCloud vacation notice without ``Auto-Submitted`` reads as one), a person confirms.
    A forger: it is honoured by itself when the border authenticated the From domain, or
    when the confirmation goes to the very inbox it silences (the envelope sender is the
    From inbox, or there is none): then whoever is silenced is told, and the confirmation
    says how to undo it. Otherwise a person confirms it first.
    """
    if triage.kind == UNSUBSCRIBE:
        if "uncertain_kind" in triage.review_reasons:
            return True
        target, sender = reply_target(story), story.sender.address
        return not authenticated and mailbox_identity(target) != mailbox_identity(sender)
    # A guessed withdrawal (classifier alone, or asked inside a story) waits for a person even
    # when authenticated: no removal confirmation is sent on a guess.
    return triage.kind in CONFIRMED_BY_PERSON and (
        not authenticated or is_guessed(triage.review_reasons)
    )


def reply_target(story: Story, authenticated: bool = False) -> str:
    """Where a reply goes (RFC 3834 section 4): the envelope sender, the topmost
    ``Return-Path`` (the final delivery's), as written; From when there is none (mail put in
    the Maildir by hand).

    An SRS or BATV wrapper is taken off only when the border authenticated the From domain
    and the address inside is in that domain (mail a forwarder passed on, its DKIM intact).
    Otherwise the address inside is only text the sender wrote, and the reply would go to
    whomever it names.
    """
    for name, value in story.headers:
        if name.lower() == "return-path":
            written = envelope_address(value)
            inside = normalise_sender(written)
            sender = domain_of(story.sender.address)
            return inside if authenticated and domain_of(inside) == sender else written
    return normalise_sender(story.sender.address)


def is_proven_envelope(to: str, sender: str, authenticated: bool, envelope: str) -> bool:
    """Whether a reply may go to the envelope sender ``to`` of mail From ``sender``.

    In the From domain: unless the border says SPF failed for it or DMARC failed for From
    (then nothing proves the address). In another domain: only when the border authenticated
    From *and* passed SPF for exactly that envelope domain; vouching for From says nothing
    about an envelope the sender chose.
    """
    if domain_of(to) == domain_of(sender):
        return envelope != "fail"
    return authenticated and envelope == "pass"


def _template(triage: Triage, urgent: bool) -> str:
    # A request's own template shows the help text itself when the wording is urgent.
    if triage.kind in REQUEST_TEMPLATES:
        return REQUEST_TEMPLATES[triage.kind]
    return "acknowledgement_urgent" if urgent else "acknowledgement"


def sender_reason(story: Story, own: Sequence[str]) -> str | None:
    """The first rule about who sent the story and to whom that suppresses a reply, or None.

    ``own`` holds the mailbox's own addresses, already normalised.
    """
    sender = normalise_sender(story.sender.address)
    return_paths = [normalise_sender(v) for n, v in story.headers if n.lower() == "return-path"]
    # RFC 5230 4.6 applies these to the envelope sender; the From address is checked too.
    if any(is_system_sender(a) for a in (sender, *return_paths)):
        return "system_sender"
    if sender and sender in own:
        return "own_address"
    if _is_loop(story.headers, own):
        return "loop"
    if not {normalise_sender(r.address) for r in story.recipients} & set(own):
        return "not_addressed"
    if not is_plausible_mailbox(sender):
        return "bad_sender"
    return None


def _policy_reason(
    triage: Triage,
    story: Story,
    to: str,
    settings: AcknowledgementSettings,
    now: datetime,
    recently_acknowledged: Callable[[str], bool],
    unsubscribed: bool,
) -> str | None:
    if triage.kind == AUTOMATED:
        return "automated"  # the reason code, named after the kind
    if unsubscribed:  # before the rest: it is why nothing goes, whatever else holds
        return "unsubscribed"
    if story.received_at < now - timedelta(days=settings.max_age_days):
        return "too_old"
    if recently_acknowledged(to):
        return "rate_limited"
    return None


def _is_loop(headers: Iterable[tuple[str, str]], own: Sequence[str]) -> bool:
    domains = {a.rpartition("@")[2] for a in own}
    for name, value in headers:
        name = name.lower()
        if name in ("in-reply-to", "references"):
            for local, _, domain in (m.rpartition("@") for m in _MESSAGE_ID.findall(value)):
                if local.lower().startswith("ack-") and domain.lower() in domains:
                    return True
        if name == "x-loop" and any(normalise_sender(a) in own for a in _ADDRESS.findall(value)):
            return True
    return False


def reference(story_id: str) -> str:
    """The short reference people can quote back: ``ST-`` and 8 characters of a digest."""
    return "ST-" + hashlib.sha256(story_id.encode("utf-8")).hexdigest()[:8].upper()


def is_crisis(text: str, terms: Sequence[str]) -> bool:
    """True when ``text`` contains any of ``terms`` as whole words, case-insensitively.

    Both are split into words (``\\w+``: "self-harm" and "self harm" match alike, and so do
    straight and curly apostrophes), and terms are looked up by their first word: linear in
    the text, no backtracking regex. An RE2 scan for the terms goes first: it finds every
    text the words would (and a few more), and most texts hold none, so most are never split.
    """
    by_first, scan = _crisis_index(tuple(terms))
    folded = text.casefold()
    if scan is None or scan.search(folded) is None:
        return False
    tokens = _WORD.findall(folded)
    for index, token in enumerate(tokens):
        for words in by_first.get(token, ()):
            if tuple(tokens[index : index + len(words)]) == words:
                return True
    return False


@functools.lru_cache(maxsize=8)
def _crisis_index(terms: tuple[str, ...]) -> tuple[dict[str, list[tuple[str, ...]]], Any]:
    """The terms' words grouped by their first word, and the RE2 scan that finds them.

    RE2's ``\\W`` is ASCII: it takes every character Python's ``\\w`` does not (and
    non-ASCII letters too), so the scan can only find more than the words do, never less.
    """
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for term in terms:
        words = tuple(_WORD.findall(term.casefold()))
        if words:
            by_first.setdefault(words[0], []).append(words)
    sequences = [r"\W+".join(re2.escape(w) for w in words)
                 for group in by_first.values() for words in group]  # fmt: skip
    if not sequences:
        return by_first, None
    return by_first, re2.compile(r"(?:^|\W)(?:" + "|".join(sequences) + r")(?:\W|$)")
