"""Acknowledge stage, delivery: decide for stored stories, then send through the outbox.

Every decision and every state is written to the store as it happens (see
``intake.store.outbox``): a crash at any point neither loses an acknowledgement nor sends one
twice. Uses ``triage.reply.policy`` for the policy and ``triage.reply.sender`` to render and send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from intake.records import Acknowledgement, Kind, ReplyState, Story, Triage
from intake.store.engine import Store
from intake.store.unsubscribe import UNSUBSCRIBE_TEMPLATE
from triage.reply.authenticity import envelope_verdict, is_authenticated
from triage.reply.identity import mailbox_identity
from triage.reply.pickup import pickup_name
from triage.reply.policy import (
    UNSUBSCRIBE,
    Decision,
    decide,
    needs_person,
    normalise_sender,
    reply_target,
)
from triage.reply.render import message_id_for
from triage.reply.sender import Sender
from triage.tag.rules import WITHDRAWAL

if TYPE_CHECKING:
    from triage.reply.settings import AcknowledgementSettings, SmtpSettings

log = logging.getLogger(__name__)
DECISION_PAGE = 200  # stories decided per transaction; also bounds memory on a backlog


def acknowledge(
    store: Store, now: datetime, settings: AcknowledgementSettings, smtp: SmtpSettings,
    own_addresses: Sequence[str], stop: Callable[[], bool] = lambda: False,
    sender: Sender | None = None, trusted: Sequence[str] = (),
) -> tuple[int, int]:  # fmt: skip
    """Decide for every stored story not yet decided, then send what is pending, until
    ``stop()`` says to stop (between messages). Returns (sent, suppressed).

    ``sender`` is the run's own when it has been sending after each batch (``sent`` then
    counts the whole run); without one, a sender for this call alone. ``trusted``: the
    border's authserv-ids (``[intake] trusted_authserv_ids``).
    """
    held = store.outbox.hold_interrupted(now)
    if held:
        log.warning("held %d acknowledgements interrupted mid-send: check before releasing", held)
    suppressed = _decide_all(store, now, settings, own_addresses, trusted)
    if sender is not None:
        sender.send_due()
        return sender.sent, suppressed
    with Sender(store, now, settings, smtp, stop) as own:
        return own.send_due(), suppressed


def confirm_interrupted(
    store: Store, now: datetime, smtp: SmtpSettings,
    find: Callable[[str, Sequence[str]], set[str]],
) -> int:  # fmt: skip
    """Mark ``sent`` the interrupted acknowledgements found in ``[smtp] sent_folder``, or
    in the pickup folder when there is no SMTP server.

    Our Message-IDs are derived from the story, so the copy the server filed in Sent, or the
    file under that name, proves the message went. What is not found stays for
    ``acknowledge`` to hold (a pickup reader may have taken the file). Returns how many.
    """
    wanted = {message_id_for(s, smtp.from_address): s for s in store.outbox.interrupted()}
    found: set[str] = set()
    if wanted and smtp.sent_folder:
        found |= find(smtp.sent_folder, list(wanted))
    if wanted and not smtp.host:
        found |= {m for m in wanted if (Path(smtp.pickup_dir) / pickup_name(m)).is_file()}
    for message_id in found:
        store.outbox.finish(wanted[message_id], ReplyState.SENT, now, message_id=message_id,
                            detail="found_sent")  # fmt: skip
    return len(found)


def _decide_all(
    store: Store, now: datetime, settings: AcknowledgementSettings,
    own_addresses: Sequence[str], trusted: Sequence[str],
) -> int:  # fmt: skip
    suppressed = 0
    while page := store.outbox.undecided(DECISION_PAGE):
        untagged = [(story, triage or Triage(story.story_id, Kind.STORY, (), (), (), ("untagged",)))
                    for story, triage in page]  # fmt: skip
        suppressed += _decide_page(store, now, settings, own_addresses, untagged, trusted)
    return suppressed


def decide_stories(
    store: Store, now: datetime, settings: AcknowledgementSettings,
    own_addresses: Sequence[str], stories: Sequence[tuple[Story, Triage]],
    trusted: Sequence[str] = (),
) -> int:  # fmt: skip
    """Decide for stories just stored (a batch in hand, not read back from the store), in
    the order ``acknowledge`` would take them; returns how many were suppressed."""
    ordered = sorted(stories, key=lambda pair: (pair[0].received_at, pair[0].story_id))
    return sum(_decide_page(store, now, settings, own_addresses, ordered[at : at + DECISION_PAGE],
                            trusted) for at in range(0, len(ordered), DECISION_PAGE))  # fmt: skip


def _decide_page(
    store: Store, now: datetime, settings: AcknowledgementSettings,
    own_addresses: Sequence[str], page: Sequence[tuple[Story, Triage]], trusted: Sequence[str],
) -> int:  # fmt: skip
    """Decide and record one page of stories in one transaction; returns how many were
    suppressed. The store is asked once per page about all the page's senders."""
    own = [normalise_sender(a) for a in own_addresses]
    since = now - timedelta(days=settings.per_sender_days)
    # Keyed on the inbox a reply goes to (the envelope sender, whatever From says), not the
    # address as written: one inbox, one window (see identity).
    targets = [reply_target(story) for story, _ in page]
    keys = [store.sender_key(mailbox_identity(target)) for target in targets]
    # Refusals are by the exact address replied to: the envelope as written or unwrapped.
    replied = [*targets, *(normalise_sender(target) for target in targets)]
    recent, undeliverable = store.outbox.sender_flags(keys, since, replied)
    limits = _confirmation_limits(store, keys, since)
    unsubscribed = store.unsubscribe.unsubscribed_among(keys)
    honoured: list[str] = []
    decided: list[tuple[Acknowledgement, str]] = []
    for (story, triage), key, target in zip(page, keys, targets, strict=True):
        limit = limits.get(triage.kind, recent)
        authenticated = is_authenticated(story, trusted)
        decision = decide(story, triage, own, settings, now, partial(_recently, store, limit),
                          authenticated=authenticated,
                          envelope=envelope_verdict(story, target, trusted),
                          unsubscribed=key in unsubscribed)  # fmt: skip
        if decision.send and decision.to in undeliverable:  # a 5xx before: do not try again
            decision = Decision(False, "undeliverable", "", "", decision.urgent)
        if decision.to and decision.to != target:  # held for a person: it goes to From then
            limit.add(key)  # and the envelope that asked is limited too
            key = store.sender_key(mailbox_identity(decision.to))
        if _honoured(story, triage, decision, authenticated):
            honoured.append(key)
            unsubscribed.add(key)  # later stories of this inbox in the page: no reply
        if decision.send or decision.held:
            limit.add(key)  # later stories of this sender in the page are rate limited
        state = (ReplyState.PENDING if decision.send else
                 ReplyState.HELD if decision.held else ReplyState.SUPPRESSED)  # fmt: skip
        item = Acknowledgement(story.story_id, decision.reason, decision.template,
                               decision.to, state, 0, decision.urgent)  # fmt: skip
        decided.append((item, key))
    store.outbox.record_decisions(decided, now, honoured)  # one transaction per page
    return sum(1 for item, _ in decided if item.state == ReplyState.SUPPRESSED)


def _confirmation_limits(store: Store, keys: Sequence[str], since: datetime) -> dict[str, set[str]]:
    """Confirmations are limited among themselves, by kind: one a sender per window, however
    many withdrawals or unsubscribes (forged or real, one held for a person included) arrive,
    and whether or not a story was acknowledged."""
    return {WITHDRAWAL: store.outbox.confirmations_since(keys, since),
            UNSUBSCRIBE: store.outbox.confirmations_since(keys, since,
                                                          UNSUBSCRIBE_TEMPLATE)}  # fmt: skip


def _honoured(story: Story, triage: Triage, decision: Decision, authenticated: bool) -> bool:
    """Whether this story is an unsubscribe to put on the list now: one confirmed now, or
    one too old to confirm (a backlog) that would not have needed a person either."""
    if triage.kind != UNSUBSCRIBE:
        return False
    return decision.send or (decision.reason == "too_old"
                             and not needs_person(triage, story, authenticated))  # fmt: skip


def _recently(store: Store, recent: set[str], address: str) -> bool:
    return store.sender_key(mailbox_identity(address)) in recent
