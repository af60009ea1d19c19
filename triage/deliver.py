"""Acknowledge stage, delivery: decide for stored stories, then send through the outbox.

Every decision and every state is written to the store as it happens (see
``intake.outbox_store``): a crash at any point neither loses an acknowledgement nor sends one
twice. Uses ``triage.acknowledge`` for the policy, ``triage.outbox`` to render and
``triage.smtp`` to send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intake.errors import SendError
from intake.records import Acknowledgement, Story, Triage
from intake.store import Store
from triage.acknowledge import Decision, decide, normalise_sender, reference
from triage.outbox import make_environment, message_id_for, render_acknowledgement
from triage.rules import WITHDRAWAL
from triage.smtp import SmtpConnection, send

if TYPE_CHECKING:
    from config.settings import AcknowledgementSettings, SmtpSettings

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
DECISION_PAGE = 200  # stories decided per transaction; also bounds memory on a backlog
MAX_ATTEMPTS = 5  # temporary SMTP failures before an acknowledgement is marked failed
MAX_TEMPORARY_FAILURES = 3  # in a row: the server is in trouble, the rest wait for next run


def acknowledge(
    store: Store, now: datetime, settings: AcknowledgementSettings, smtp: SmtpSettings,
    own_addresses: Sequence[str], stop: Callable[[], bool] = lambda: False,
) -> tuple[int, int]:  # fmt: skip
    """Decide for every stored story not yet decided, then send what is pending, until
    ``stop()`` says to stop (between messages). Returns (sent, suppressed) for this run.
    """
    held = store.hold_interrupted(now)
    if held:
        log.warning("held %d acknowledgements interrupted mid-send: check before releasing", held)
    suppressed = _decide_all(store, now, settings, own_addresses)
    return _send_pending(store, now, settings, smtp, stop), suppressed


def confirm_interrupted(
    store: Store, now: datetime, smtp: SmtpSettings,
    find: Callable[[str, Sequence[str]], set[str]],
) -> int:  # fmt: skip
    """Mark ``sent`` the interrupted acknowledgements found in ``[smtp] sent_folder``.

    Our Message-IDs are derived from the story, so the copy the server filed in Sent proves
    the message went. What is not found stays for ``acknowledge`` to hold. Returns how many.
    """
    if not smtp.sent_folder:
        return 0
    wanted = {message_id_for(s, smtp.from_address): s for s in store.interrupted()}
    found = find(smtp.sent_folder, list(wanted)) if wanted else set()
    for message_id in found:
        store.finish(wanted[message_id], "sent", now, message_id=message_id)
    return len(found)


def _decide_all(
    store: Store, now: datetime, settings: AcknowledgementSettings, own_addresses: Sequence[str]
) -> int:
    suppressed = 0
    while page := store.undecided(DECISION_PAGE):
        untagged = [(story, triage or Triage(story.story_id, "story", (), (), (), ("untagged",)))
                    for story, triage in page]  # fmt: skip
        suppressed += _decide_page(store, now, settings, own_addresses, untagged)
    return suppressed


def decide_stories(
    store: Store, now: datetime, settings: AcknowledgementSettings,
    own_addresses: Sequence[str], stories: Sequence[tuple[Story, Triage]],
) -> int:  # fmt: skip
    """Decide for stories just stored (a batch in hand, not read back from the store), in
    the order ``acknowledge`` would take them; returns how many were suppressed."""
    ordered = sorted(stories, key=lambda pair: (pair[0].received_at, pair[0].story_id))
    return sum(_decide_page(store, now, settings, own_addresses, ordered[at : at + DECISION_PAGE])
               for at in range(0, len(ordered), DECISION_PAGE))  # fmt: skip


def _decide_page(
    store: Store, now: datetime, settings: AcknowledgementSettings,
    own_addresses: Sequence[str], page: Sequence[tuple[Story, Triage]],
) -> int:  # fmt: skip
    """Decide and record one page of stories in one transaction; returns how many were
    suppressed. The store is asked once per page about all the page's senders."""
    own = [normalise_sender(a) for a in own_addresses]
    since = now - timedelta(days=settings.per_sender_days)
    keys = [store.sender_key(normalise_sender(story.sender.address)) for story, _ in page]
    recent, undeliverable = store.sender_flags(keys, since)
    decided: list[tuple[Acknowledgement, str]] = []
    for (story, triage), key in zip(page, keys, strict=True):
        # A withdrawal is always confirmed, however recently the person heard from us.
        recently = partial(_recently, store, recent) if triage.kind != WITHDRAWAL else _never
        decision = decide(story, triage, own, settings, now, recently)
        if decision.send and key in undeliverable:  # a 5xx before: do not try again
            decision = Decision(False, "undeliverable", "", "", decision.urgent)
        if decision.send:
            recent.add(key)  # later stories of this sender in the page are rate limited
        state = "pending" if decision.send else "suppressed"
        item = Acknowledgement(story.story_id, decision.reason, decision.template,
                               decision.to, state, 0, decision.urgent)  # fmt: skip
        decided.append((item, key))
    store.record_decisions(decided, now)  # one transaction per page
    return sum(1 for item, _ in decided if item.state == "suppressed")


def backoff(attempts: int) -> timedelta:
    """How long a temporarily refused acknowledgement waits: 5 minutes, doubling, at most 6 h."""
    return min(timedelta(minutes=5 * 2 ** min(attempts, 10)), timedelta(hours=6))


def _recently(store: Store, recent: set[str], address: str) -> bool:
    return store.sender_key(address) in recent


def _never(address: str) -> bool:
    return False


def _send_pending(
    store: Store, now: datetime, settings: AcknowledgementSettings, smtp_settings: SmtpSettings,
    stop: Callable[[], bool],
) -> int:
    """Send pending acknowledgements within the hourly cap, one claimed at a time."""
    room = settings.max_per_hour - store.sent_since(now - timedelta(hours=1))
    env = make_environment(TEMPLATES)
    # A refused message goes back to pending with a retry time after ``now``, so it is not
    # claimed again in this run anyway; the list (of those only: it stays short on a large
    # backlog, where excluding everything attempted made each claim slower) makes sure of it.
    retrying: list[str] = []
    sent = failures = 0
    connection = SmtpConnection(smtp_settings) if smtp_settings.host else nullcontext(None)
    with connection as smtp:
        while sent < room and failures < MAX_TEMPORARY_FAILURES and not stop():
            claimed = store.claim(1, now, exclude=retrying)
            if not claimed:
                return sent
            if not _reachable(smtp, store, claimed[0].story_id, now):
                return sent
            outcome = _send_one(claimed[0], env, settings, smtp_settings, store, smtp, now)
            if outcome == "pending":
                retrying.append(claimed[0].story_id)
            sent += outcome == "sent"
            failures = failures + 1 if outcome == "pending" else 0
    if sent >= room:
        log.warning("acknowledgement cap of %d an hour reached: the rest wait",
                    settings.max_per_hour)  # fmt: skip
    return sent


def _reachable(smtp: SmtpConnection | None, store: Store, story_id: str, now: datetime) -> bool:
    """Whether the SMTP server answers (always, for the pickup folder). When it does not, the
    claimed acknowledgement goes back untouched and the rest wait for the next run: one
    timeout, not one per message, and no message is blamed for the server's silence."""
    if smtp is None:
        return True
    try:
        smtp.open()
    except SendError as err:
        store.unclaim(story_id, now)
        log.warning("SMTP server not reachable (%s): acknowledgements wait for the next run", err)
        return False
    return True


def _send_one(
    item: Acknowledgement, env: Any, ack: AcknowledgementSettings, settings: SmtpSettings,
    store: Store, smtp: Any, now: datetime,
) -> str:  # fmt: skip
    """Render and hand over one acknowledgement; returns the state it ended in."""
    try:
        story = store.story(item.story_id)
        decision = Decision(True, item.reason, item.template, item.to)
        subjects = {"acknowledgement": ack.subject, "acknowledgement_urgent": ack.subject}
        outgoing = render_acknowledgement(env, decision, story, reference(story.story_id),
                                          settings, now, help_text=ack.help_text,
                                          team_name=ack.team_name, subjects=subjects)  # fmt: skip
        send(outgoing, settings, smtp)  # the pickup folder when no SMTP host is set
    except SendError as err:
        retry = not err.permanent and item.attempts + 1 < MAX_ATTEMPTS
        state = "pending" if retry else "failed"
        store.finish(item.story_id, state, now, error=str(err)[:300], permanent=err.permanent,
                     retry_at=now + backoff(item.attempts) if retry else None)  # fmt: skip
        return state
    except Exception as err:  # the acknowledge stage's one broad except: record, go on
        store.finish(item.story_id, "failed", now, error=f"{type(err).__name__}")
        return "failed"
    store.finish(item.story_id, "sent", now, message_id=outgoing.message_id)
    return "sent"
