"""The review page, the pages that only read: queue, story, withdrawal preview, quarantine,
health and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from intake.records import UNVERIFIED_REQUEST, Evidence
from intake.store.engine import Store
from intake.store.privacy import Held
from story_intake.jobs import var_folders
from story_intake.web.agreement import agreement
from story_intake.web.context import context_of, render
from story_intake.web.highlight import segments
from story_intake.web.insights import pair_stories, recent_pairs, reply_history, token_expiry
from story_intake.web.queue import Filters, build_queue
from story_intake.web.security import forbidden, is_admin
from triage.erasure import erase
from triage.privacy import stories_of, story_by_reference
from triage.reply.identity import written_address
from triage.reply.policy import reference
from triage.reply.send_watch import breaker_status, sending_status
from triage.tag.rules import AUTOMATED, STORY, WITHDRAWAL

KINDS = (STORY, WITHDRAWAL, "request:unsubscribe", "request:amend", "request:press",
         "request:event", "request:question", AUTOMATED)  # fmt: skip


def find_story(request: Request) -> Held | None:
    """The story the path's ``ref`` names, everything held about it."""
    store = context_of(request).store
    ids = story_by_reference(store, str(request.path_params["ref"]))
    return next(iter(store.privacy.held_about(ids[:1])), None) if ids else None


def not_found() -> Response:
    """404 that says nothing about what exists."""
    return PlainTextResponse("no such story", status_code=404)


async def queue_page(request: Request) -> Response:
    """The queue, filtered by the query string."""
    ctx = context_of(request)
    filters = Filters.of(request.query_params)
    sections = build_queue(ctx.store, ctx.review.reviewed(), filters)
    return render(request, "queue.html", {
        "sections": sections, "filters": filters, "themes": ctx.settings.tagger.theme_names,
        "kinds": KINDS, "total": sum(len(items) for _, items in sections)})  # fmt: skip


async def story_page(request: Request) -> Response:
    """One story: own words with evidence marked, tags, kind, reply state, actions."""
    ctx = context_of(request)
    held = find_story(request)
    if held is None:
        return not_found()
    triage, ack = held.triage, held.acknowledgement or {}
    waiting = ack.get("state") == "held" and ack.get("reason") == UNVERIFIED_REQUEST
    scores = dict(triage.scores) if triage else {}
    themes = [(number, name, bool(triage and name in triage.themes), scores.get(name, 0.0))
              for number, name in enumerate(ctx.settings.tagger.theme_names, 1)]  # fmt: skip
    agencies = triage.agencies if triage else ()
    reply, reply_events = reply_history(ctx.store, held.story.story_id)
    return render(request, "story.html", {
        "ref": reference(held.story.story_id), "story": held.story, "triage": triage,
        "segments": segments(held.story.text, (*(triage.evidence if triage else ()),
                                               *agency_marks(agencies))),
        "agencies": agencies, "reply": reply, "reply_events": reply_events,
        "themes": themes, "kinds": KINDS, "ack": ack, "waiting": waiting,
        "is_withdrawal": bool(triage and triage.kind == WITHDRAWAL),
        "reviewed": held.story.story_id in ctx.review.reviewed(),
        "history": ctx.review.corrections([held.story.story_id]),
        "saved": request.query_params.get("saved", ""),
        "undo": request.query_params.getlist("undo")})  # fmt: skip


def agency_marks(agencies: Sequence[Evidence]) -> list[Evidence]:
    """The agencies' evidence spans, labelled so the page tells them from theme evidence."""
    return [replace(e, label=f"agency: {e.label.replace('_', ' ')}") for e in agencies]


async def agencies_page(request: Request) -> Response:
    """The last 30 days' duplication stories naming both agencies of ``?first=&second=``."""
    ctx = context_of(request)
    first = request.query_params.get("first", "")[:64]
    second = request.query_params.get("second", "")[:64]
    found = pair_stories(ctx.store, ctx.clock(), first, second)
    return render(request, "agencies.html", {"first": first.replace("_", " "),
                                             "second": second.replace("_", " "),
                                             "stories": found})  # fmt: skip


def is_waiting_withdrawal(store: Store, held: Held) -> bool:
    """Whether this story is a withdrawal held until a person confirms it."""
    return (held.triage is not None and held.triage.kind == WITHDRAWAL
            and held.story.story_id in store.outbox.needs_confirmation())  # fmt: skip


def withdrawn_by(request: Request, held: Held) -> list[str]:
    """The stories a confirmed withdrawal erases: every other story from exactly the
    address the request came From (as ``triage.privacy`` holds them)."""
    store = context_of(request).store
    address = held.story.sender.address
    found = stories_of(store, address, written_address) if address else []
    return [s for s in found if s != held.story.story_id]


async def withdrawal_page(request: Request) -> Response:
    """What confirming this withdrawal will erase (erase's own dry run), and the button."""
    if not is_admin(request):
        return forbidden("this needs an admin")
    ctx, held = context_of(request), find_story(request)
    if held is None:
        return not_found()
    if not is_waiting_withdrawal(ctx.store, held):
        return PlainTextResponse("no withdrawal awaits confirmation here", status_code=409)
    ids = withdrawn_by(request, held)
    preview = erase(
        ctx.store,
        ids,
        var_folders(ctx.settings),
        ctx.settings.smtp.from_address,
        None,
        ctx.clock(),
        address=held.story.sender.address,
        dry_run=True,
    )
    return render(request, "withdrawal.html", {"ref": reference(held.story.story_id),
                                               "preview": preview})  # fmt: skip


async def quarantine_page(request: Request) -> Response:
    """Quarantined messages (admin): reason, stage, attempts; requeue."""
    if not is_admin(request):
        return forbidden("this needs an admin")
    entries = context_of(request).store.quarantine.quarantined()
    return render(request, "quarantine.html", {"entries": entries})


async def health_page(request: Request) -> Response:
    """Polling and sending health, the breaker, held replies."""
    ctx = context_of(request)
    store, now = ctx.store, ctx.clock()
    poll = store.worker.poll_health()  # its instants are ISO 8601 text
    last_poll = datetime.fromisoformat(poll.last_success_at) if poll.last_success_at else None
    return render(request, "health.html", {
        "poll": poll, "last_poll": last_poll, "last_run": store.runs.status()["last_run"],
        "sending": sending_status(store, ctx.settings.alerts.after_failures),
        "breaker": breaker_status(store, ctx.settings.acknowledgement.max_per_hour, now),
        "held": store.outbox.outbox_counts().get("held", 0),
        "agreement": agreement(store, ctx.settings.tagger.theme_names, now),
        "pairs": recent_pairs(store, now), "token_expiry": token_expiry(ctx.settings, store),
        "waiting": [reference(s) for s in store.outbox.needs_confirmation()]})  # fmt: skip


async def audit_page(request: Request) -> Response:
    """The audit log (admin): who did what to which reference, newest first."""
    if not is_admin(request):
        return forbidden("this needs an admin")
    return render(request, "audit.html", {"entries": context_of(request).review.audit_entries()})
