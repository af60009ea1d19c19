"""Digest stage, delivery: fix the window, render it, keep an .html copy, send it once.

The window's row is opened, the rendered message stored (``rendered``), sending claimed
(``sending``) and finished (``sent``) in the store, each step committed before the next; a
run that finds an unfinished digest carries on with the same window, bytes and Message-ID
(see ``intake.store.digests``). A preview (``digest`` without ``--send``) opens nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from intake.errors import SendError
from intake.records import Digest, DigestState
from intake.store.engine import Store
from triage.digest.sections import DigestView, build_digest
from triage.reply.render import (
    TEMPLATES,
    Outgoing,
    make_environment,
    our_message_id,
    render_team_mail,
    render_template,
)
from triage.reply.smtp import send
from triage.tag.rules import WITHDRAWAL

if TYPE_CHECKING:
    from triage.digest.settings import DigestSettings
    from triage.reply.settings import SmtpSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    """What a digest run did: the digest (None for a preview), its state, the .html file."""

    digest_id: int | None
    state: str
    stories: int
    path: Path | None


@dataclass(frozen=True, slots=True)
class DigestContext:
    """What rendering needs besides the window: settings and the vocabulary of themes."""

    digest: DigestSettings
    smtp: SmtpSettings
    team_name: str
    themes: Sequence[str]
    review_url: str = ""  # [review] base_url: each card links to its story page ("" no links)


def preview_digest(store: Store, now: datetime, context: DigestContext) -> DigestOutcome:
    """Render what the next digest would show to the output folder without sending it or
    claiming anything: the unfinished digest's stories, else the unclaimed ones."""
    digest_id, start, end = store.digests.next_window(now)
    view = _view(store, start, end, digest_id, context)
    path = _write_html(_html(view, context), Path(context.digest.output_dir), "preview")
    return DigestOutcome(None, "preview", view.total, path)


def send_digest(store: Store, now: datetime, context: DigestContext) -> DigestOutcome:
    """Build the digest of the open window and send it to ``[digest] recipients``, once.

    SendError when the hand-over fails: the digest stays ``rendered`` for the next run.
    """
    digest = store.digests.open_digest(now)
    path = None
    if digest.state == DigestState.OPEN:
        view = _view(store, digest.start, digest.end, digest.digest_id, context)
        if not view.total and not context.digest.send_empty:
            store.digests.skip_digest(digest.digest_id, now)
            return DigestOutcome(digest.digest_id, DigestState.SKIPPED, 0, None)
        path = _write_html(_html(view, context), Path(context.digest.output_dir),
                           f"{digest.end:%Y%m%d-%H%M}-{digest.digest_id}")  # fmt: skip
        if not context.digest.recipients:  # nobody to send to: the .html file is the digest
            store.digests.finish_digest(digest.digest_id, DigestState.WRITTEN, now)
            return DigestOutcome(digest.digest_id, DigestState.WRITTEN, view.total, path)
        outgoing = _mail(view, digest, context)
        store.digests.save_rendered(digest.digest_id, outgoing.message_id, outgoing.data,
                                    view.total, view.health, now)  # fmt: skip
        digest = Digest(digest.digest_id, digest.start, digest.end, DigestState.RENDERED,
                        outgoing.message_id, outgoing.data, view.total)  # fmt: skip
    state = _hand_over(store, digest, now, context)
    log.info("digest %d %s stories=%d", digest.digest_id, state, digest.stories)
    return DigestOutcome(digest.digest_id, state, digest.stories, path)


def _hand_over(store: Store, digest: Digest, now: datetime, context: DigestContext) -> str:
    recipients = context.digest.recipients
    if not recipients:
        store.digests.finish_digest(digest.digest_id, DigestState.WRITTEN, now)
        return DigestState.WRITTEN
    if not store.digests.claim_digest(digest.digest_id, now):
        return DigestState.SENT  # another run finished it meanwhile
    outgoing = Outgoing(digest.message_id, recipients[0], digest.data,
                        envelope_from=context.smtp.from_address,
                        envelope_to=tuple(recipients))  # fmt: skip
    try:
        send(outgoing, context.smtp)
    except SendError as err:
        error = str(err)[:300]
        store.digests.finish_digest(digest.digest_id, DigestState.RENDERED, now, error=error)
        raise
    store.digests.finish_digest(digest.digest_id, DigestState.SENT, now)
    return DigestState.SENT


def _view(
    store: Store, start: datetime, end: datetime, digest_id: int | None, context: DigestContext
) -> DigestView:
    """The stories and health rows ``digest_id`` claimed (None: the unclaimed ones)."""
    digests = store.digests
    view = build_digest(digests.digest_entries(digest_id), digests.intake_health(digest_id),
                        digests.previous_health(digest_id), (start, end), context.themes,
                        context.digest.timezone)  # fmt: skip
    # Told at send time, not with the window: a tripped breaker is today's news.
    return replace(view, sending_stopped_at=store.worker.breaker().tripped_at)


def subject_of(view: DigestView) -> str:
    """Counts only: a subject line is seen by anyone glancing at an inbox."""
    requests = next(s for s in view.sections if s.key == "requests")
    withdrawals = sum(1 for v in requests.stories if v.kind == WITHDRAWAL)
    urgent = view.urgent  # a request with crisis wording is shown with the requests
    parts = [f"{view.total} new"] + [f"{withdrawals} withdrawal"] * bool(withdrawals)
    parts += [f"{urgent} urgent"] * bool(urgent)
    return f"Story digest to {view.end}: {', '.join(parts)}"


def _mail(view: DigestView, digest: Digest, context: DigestContext) -> Outgoing:
    subject = subject_of(view)
    key = f"{digest.digest_id}:{digest.start.isoformat()}"
    return render_team_mail(
        make_environment(TEMPLATES), "digest", _context(view, subject, context),
        subject=subject, to=context.digest.recipients,
        message_id=our_message_id("digest", key, context.smtp.from_address),
        settings=context.smtp, team_name=context.team_name, now=digest.end,
    )  # fmt: skip


def _html(view: DigestView, context: DigestContext) -> str:
    return render_template(make_environment(TEMPLATES), "digest.html",
                           _context(view, subject_of(view), context))  # fmt: skip


def _context(view: DigestView, subject: str, context: DigestContext) -> dict[str, object]:
    return {
        "view": view,
        "subject": subject,
        "team_name": context.team_name,
        "review_url": context.review_url.rstrip("/"),
    }


def _write_html(html: str, folder: Path, name: str) -> Path:
    """Write ``digest-<name>.html``, owner-only, whole or not at all."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"digest-{name}.html"
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:  # mkstemp creates it 0600
        handle.write(html)
    os.replace(temporary, path)
    return path
