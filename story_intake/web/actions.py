"""The review page, the actions: each one calls what the command line's command calls
(``release``, ``erase``, ``requeue``, ``resume``), never a second implementation, and writes
one line to the audit log (who, what, which reference; never content)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from intake.records import ReplyState
from intake.store.accounts import Session
from story_intake.jobs import privacy_mailbox, var_folders
from story_intake.pipeline import requeue
from story_intake.web.context import context_of
from story_intake.web.pages import (
    KINDS,
    find_story,
    is_waiting_withdrawal,
    not_found,
    withdrawn_by,
)
from story_intake.web.security import action
from triage.erasure import erase
from triage.privacy import confirm_requests
from triage.reply.policy import reference
from triage.reply.send_watch import resume


def _back(ref: str, **query: str | list[str]) -> Response:
    return RedirectResponse(f"/story/{ref}?{urlencode(query, doseq=True)}", status_code=303)


@action()
async def correct_themes(request: Request, form: FormData, session: Session) -> Response:
    """Set the story's themes to the boxes ticked; the page offers undo (the old themes)."""
    ctx, held = context_of(request), find_story(request)
    if held is None or held.triage is None:
        return not_found()
    known = ctx.settings.tagger.theme_names
    after = [t for t in known if t in form.getlist("theme")]
    before = list(held.triage.themes)
    ref = reference(held.story.story_id)
    if ctx.review.correct(held.story.story_id, session.user.name, "themes", after, ctx.clock()):
        ctx.review.audit(session.user.name, "correct_themes", ref, ctx.clock())
        return _back(ref, saved="themes", undo=before)
    return _back(ref)


@action()
async def correct_kind(request: Request, form: FormData, session: Session) -> Response:
    """Set the story's kind (story, a request, automated)."""
    ctx, held = context_of(request), find_story(request)
    kind = str(form.get("kind", ""))
    if held is None or held.triage is None:
        return not_found()
    if kind not in KINDS:
        return PlainTextResponse("unknown kind", status_code=400)
    ref = reference(held.story.story_id)
    if ctx.review.correct(held.story.story_id, session.user.name, "kind", kind, ctx.clock()):
        ctx.review.audit(session.user.name, "correct_kind", ref, ctx.clock())
    return _back(ref, saved="kind")


@action()
async def mark_reviewed(request: Request, form: FormData, session: Session) -> Response:
    """Mark the story reviewed."""
    ctx, held = context_of(request), find_story(request)
    if held is None:
        return not_found()
    ref = reference(held.story.story_id)
    if ctx.review.mark_reviewed(held.story.story_id, session.user.name, ctx.clock()):
        ctx.review.audit(session.user.name, "mark_reviewed", ref, ctx.clock())
    return _back(ref, saved="reviewed")


@action()
async def release_reply(request: Request, form: FormData, session: Session) -> Response:
    """Release the story's held reply, as ``release --story`` does (it goes next pass)."""
    ctx, held = context_of(request), find_story(request)
    if held is None:
        return not_found()
    ids, now = [held.story.story_id], ctx.clock()
    confirm_requests(ctx.store, ids)
    ctx.store.outbox.release_held(ids, ReplyState.PENDING, now, session.user.name)
    ref = reference(held.story.story_id)
    ctx.review.audit(session.user.name, "release_reply", ref, now)
    return _back(ref, saved="released")


@action("admin")
async def confirm_withdrawal(request: Request, form: FormData, session: Session) -> Response:
    """Confirm a withdrawal: as ``release --story`` (the confirmation reply goes), then
    ``erase`` of every other story the person sent."""
    ctx, held = context_of(request), find_story(request)
    if held is None:
        return not_found()
    if not is_waiting_withdrawal(ctx.store, held):
        return PlainTextResponse("no withdrawal awaits confirmation here", status_code=409)
    ids, now, settings = [held.story.story_id], ctx.clock(), ctx.settings
    others = withdrawn_by(request, held)
    confirm_requests(ctx.store, ids)
    ctx.store.outbox.release_held(ids, ReplyState.PENDING, now, session.user.name)

    def erase_others() -> None:
        with privacy_mailbox(settings) as mailbox:
            erase(ctx.store, others, var_folders(settings), settings.smtp.from_address,
                  mailbox, now, address=held.story.sender.address)  # fmt: skip

    await run_in_threadpool(erase_others)
    ref = reference(held.story.story_id)
    ctx.review.audit(session.user.name, "confirm_withdrawal", ref, now)
    ctx.review.audit(session.user.name, f"erase:{len(others)}", ref, now)
    return _back(ref, saved="withdrawn")


@action("admin")
async def reject_withdrawal(request: Request, form: FormData, session: Session) -> Response:
    """Not a withdrawal after all: the story stays, the ordinary acknowledgement goes."""
    ctx, held = context_of(request), find_story(request)
    if held is None:
        return not_found()
    ref, now = reference(held.story.story_id), ctx.clock()
    if ctx.review.reject_request(held.story.story_id, now, session.user.name):
        ctx.review.audit(session.user.name, "reject_request", ref, now)
    return _back(ref, saved="rejected")


@action("admin")
async def requeue_all(request: Request, form: FormData, session: Session) -> Response:
    """Retry every quarantined message, as ``requeue`` does."""
    ctx = context_of(request)
    released, still = await run_in_threadpool(requeue, ctx.settings, ctx.clock())
    ctx.review.audit(session.user.name, f"requeue:{released}/{released + still}", "",
                     ctx.clock())  # fmt: skip
    return RedirectResponse("/quarantine", status_code=303)


@action("admin")
async def resume_sending(request: Request, form: FormData, session: Session) -> Response:
    """Resume replies after the breaker tripped, as ``resume`` does."""
    ctx = context_of(request)
    if resume(ctx.store, ctx.clock()):
        ctx.review.audit(session.user.name, "resume", "", ctx.clock())
    return RedirectResponse("/health", status_code=303)
