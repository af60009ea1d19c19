"""Acknowledge stage, sending: pending acknowledgements handed over a page at a time.

A page of due acknowledgements is read and rendered first: pure work, nothing marked yet.
Then it is handed over, and each way keeps what may be in doubt after a crash small:

- into the pickup folder: every message of the page written under a temporary name
  (invisible to readers) and all of them synced, then the page claimed (``sending``,
  committed), linked into place, the folder synced once and the page finished in one
  transaction. Only the links are in doubt, and ``deliver.confirm_interrupted`` settles
  those by looking for the files;
- over SMTP, one session for the run: claimed, sent and finished one message at a time, so
  at most one message is in doubt (held for a person unless found in the Sent folder).

``run_once`` calls ``start`` after each batch: the replies then go out in a thread of their
own while the run fetches the next batch and the worker processes parse and tag it, and
``wait`` joins that thread before the run touches the store again, so the store is never used
by both at once. ``deliver.acknowledge`` calls ``send_due`` once more at the end.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from intake.errors import SendError, StoreError
from intake.records import Acknowledgement, ReplyState
from intake.store.engine import Store
from intake.store.outbox import Attempt
from triage.reply.breaker import room, tripped, window_start
from triage.reply.pickup import Staged, discard, link_staged, stage_pickup, sync_folder, sync_staged
from triage.reply.policy import Decision, reference
from triage.reply.render import TEMPLATES, Outgoing, make_environment, render_acknowledgement
from triage.reply.smtp import SmtpConnection

if TYPE_CHECKING:
    from types import TracebackType

    from intake.timing import StageTimer
    from triage.reply.settings import AcknowledgementSettings, SmtpSettings

log = logging.getLogger(__name__)
SEND_PAGE = 100  # acknowledgements read, rendered and (pickup) finished together
MAX_ATTEMPTS = 5  # temporary failures before an acknowledgement is marked failed
MAX_TEMPORARY_FAILURES = 3  # in a row: the server (or disk) is in trouble, the rest wait
Rendered = list[tuple[Acknowledgement, Outgoing]]


def backoff(attempts: int) -> timedelta:
    """How long a temporarily refused acknowledgement waits: 5 minutes, doubling, at most 6 h."""
    return min(timedelta(minutes=5 * 2 ** min(attempts, 10)), timedelta(hours=6))


class Sender:
    """Sends pending acknowledgements within the hourly cap for one run, over one SMTP session
    (opened on first need, closed on exit) or into the pickup folder."""

    def __init__(
        self, store: Store, now: datetime, settings: AcknowledgementSettings,
        smtp: SmtpSettings, stop: Callable[[], bool] = lambda: False,
    ) -> None:  # fmt: skip
        self._store, self._now, self._settings, self._smtp_settings = store, now, settings, smtp
        self._stop = stop
        self._breaker = store.worker.breaker()
        self._sent_before = store.outbox.sent_since(window_start(self._breaker, now))
        self._room = room(self._breaker, settings.max_per_hour, self._sent_before)
        self._env = make_environment(TEMPLATES)
        self._smtp = SmtpConnection(smtp) if smtp.host else None
        # A refused message goes back to pending with a retry time after ``now``, so it is not
        # due again in this run anyway; the list (of those only, so it stays short) makes sure.
        self._retrying: list[str] = []
        self._failures = 0  # temporary failures in a row
        self._unreachable = False
        self._cap_reported = False
        self.worked = False  # a session opened or a reply went: sending works
        self.last_error: str | None = None  # the last failure not about one message
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None  # what the thread raised, for wait()
        self.sent = 0

    def __enter__(self) -> Sender:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:  # fmt: skip
        try:
            if error is None:
                self.wait()
            elif self._thread is not None:
                self._thread.join()  # the run's own error is the one to report
        finally:
            if self._smtp is not None:
                self._smtp.close()

    def start(self, timer: StageTimer | None = None) -> None:
        """``send_due`` in a thread of its own (after the last one has finished): the sending
        overlaps the run's waits for the mailbox and the workers. Call ``wait`` before using
        the store again."""
        self.wait()
        self._thread = threading.Thread(target=self._send_in_thread, args=(timer,),
                                        name="sender", daemon=True)  # fmt: skip
        self._thread.start()

    def wait(self) -> None:
        """Join the thread ``start`` began; what it raised is raised here."""
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _send_in_thread(self, timer: StageTimer | None) -> None:
        try:
            with timer.stage("acknowledge") if timer else contextlib.nullcontext():
                self.send_due()
        except BaseException as err:  # handed to wait(), which raises it in the run's thread
            self._error = err

    def send_due(self) -> int:
        """Send what is due, a page at a time, until nothing is, the hourly cap is reached,
        ``stop()`` says so or the server (or disk) is in trouble; returns how many went."""
        before = self.sent
        while not self._finished():
            page = self._store.outbox.due(min(SEND_PAGE, self._room - self.sent), self._now,
                                   exclude=self._retrying)  # fmt: skip
            if not page or not self._reachable():
                break
            rendered = self._render(page)
            if self._smtp is None:
                self._to_pickup(rendered)
            else:
                self._over_smtp(rendered, self._smtp)
        if self.sent >= self._room and not self._cap_reported:
            self._cap_reported = True  # once a run, not once a batch
            self._trip()
        return self.sent - before

    def failure(self) -> str | None:
        """Why handing replies over failed in this run (the server unreachable, or temporary
        failures in a row), or None when it did not."""
        failed = self._unreachable or self._failures >= MAX_TEMPORARY_FAILURES
        return (self.last_error or "sending failed") if failed else None

    def _trip(self) -> None:
        """Latch the breaker (once; a tripped one stays as it is) and say so."""
        if not self._breaker.tripped_at:
            self._breaker = tripped(self._breaker, self._sent_before + self.sent, self._now)
            self._store.worker.save_breaker(self._breaker, self._now)
        log.warning("acknowledgement breaker tripped at %s (cap of %d an hour reached): replies "
                    "wait until a person runs `resume`", self._breaker.tripped_at,
                    self._settings.max_per_hour)  # fmt: skip

    def _finished(self) -> bool:
        return (self.sent >= self._room or self._failures >= MAX_TEMPORARY_FAILURES
                or self._unreachable or self._stop())  # fmt: skip

    def _reachable(self) -> bool:
        """Whether the SMTP server answers (always, for the pickup folder). When it does not,
        nothing has been claimed: the page stays pending, the rest wait for the next run (one
        timeout, not one per message, and no message is blamed for the server's silence)."""
        if self._smtp is None:
            return True
        try:
            self._smtp.open()
        except SendError as err:
            self._unreachable, self.last_error = True, str(err)[:300]
            log.warning("SMTP server not reachable (%s): acknowledgements wait for the next run",
                        err)  # fmt: skip
            return False
        self.worked = True
        return True

    def _render(self, page: Sequence[tuple[Acknowledgement, str]]) -> Rendered:
        """The page's messages; one that cannot be rendered is marked failed, the rest go on."""
        rendered: Rendered = []
        ack, smtp = self._settings, self._smtp_settings
        subjects = {"acknowledgement": ack.subject, "acknowledgement_urgent": ack.subject}
        for item, sender_name in page:
            decision = Decision(True, item.reason, item.template, item.to, item.urgent)
            try:
                outgoing = render_acknowledgement(
                    self._env, decision, item.story_id, sender_name, reference(item.story_id),
                    smtp, self._now, help_text=ack.help_text, team_name=ack.team_name,
                    subjects=subjects,
                )  # fmt: skip
            except SendError as err:  # refused to render: not one plain address, say
                self._record(item, err)
                continue
            except Exception as err:  # the sending loop's one broad except: record, go on
                self._store.outbox.finish(item.story_id, ReplyState.FAILED, self._now,
                                   error=type(err).__name__, detail="render_error")  # fmt: skip
                continue
            rendered.append((item, outgoing))
        return rendered

    def _to_pickup(self, rendered: Rendered) -> None:
        """Stage the page and sync it, claim it, link it into place, sync the folder, finish."""
        folder = Path(self._smtp_settings.pickup_dir)
        staged: list[tuple[Acknowledgement, Staged]] = []
        try:
            for item, outgoing in rendered:
                try:
                    staged.append((item, stage_pickup(outgoing, folder)))
                except SendError as err:  # the disk is full, say: this page stops here
                    self._record(item, err)
                    break
            try:
                sync_staged([one for _, one in staged])
            except SendError as err:  # nothing is visible yet: the page waits
                if staged:
                    self._record(staged[0][0], err)
                return
            self._hand_over(staged, folder)
        finally:
            for _, one in staged:
                discard(one)

    def _hand_over(self, staged: Sequence[tuple[Acknowledgement, Staged]], folder: Path) -> None:
        ids = [item.story_id for item, _ in staged]
        claimed = set(self._store.outbox.claim_ids(ids, self._now))
        attempts: list[Attempt] = []
        for item, one in staged:
            if item.story_id not in claimed:
                continue
            try:
                link_staged(one, folder)
            except SendError as err:
                attempts.append(self._failed_attempt(item, err))
                continue
            attempts.append(Attempt(item.story_id, ReplyState.SENT,
                                    message_id=one.outgoing.message_id))  # fmt: skip
        if any(a.state == ReplyState.SENT for a in attempts):
            try:
                sync_folder(folder)
            except SendError as err:  # the files are in place, readers may have them: sent
                log.error("pickup folder not synced (%s): a crash now could lose replies", err)
        self._store.outbox.finish_many(attempts, self._now)
        self._count(attempts)

    def _over_smtp(self, rendered: Rendered, smtp: SmtpConnection) -> None:
        """Claim, send and finish one message at a time over the run's session. How one went
        is recorded in the transaction that claims the next: one commit a message, and still
        only the message on the wire is ever in doubt."""
        unrecorded: list[Attempt] = []
        for item, outgoing in rendered:
            if self._finished():
                break  # the rest stay pending, untouched
            claimed = self._settle(unrecorded, [item.story_id])
            unrecorded = []
            if not claimed:
                continue
            try:
                smtp.send(outgoing)
                attempt = Attempt(item.story_id, ReplyState.SENT, message_id=outgoing.message_id)
            except SendError as err:
                attempt = self._failed_attempt(item, err)
            self._count([attempt])
            unrecorded = [attempt]
        self._settle(unrecorded, [])

    def _settle(self, attempts: list[Attempt], claim: list[str]) -> list[str]:
        """Record ``attempts`` and claim ``claim`` together; returns the claimed."""
        try:
            return self._store.outbox.finish_and_claim(attempts, claim, self._now)
        except StoreError:  # the next run holds it; say which, for `release --as-sent`
            for attempt in attempts:
                if attempt.state == ReplyState.SENT:
                    log.error("acknowledgement %s was sent but could not be recorded",
                              reference(attempt.story_id))  # fmt: skip
            raise

    def _record(self, item: Acknowledgement, err: SendError) -> None:
        attempt = self._failed_attempt(item, err)
        self._store.outbox.finish_many([attempt], self._now)
        self._count([attempt])

    def _failed_attempt(self, item: Acknowledgement, err: SendError) -> Attempt:
        retry = not err.permanent and item.attempts + 1 < MAX_ATTEMPTS
        if not err.permanent:
            self.last_error = str(err)[:300]
        if retry:
            self._retrying.append(item.story_id)
        state = ReplyState.PENDING if retry else ReplyState.FAILED
        return Attempt(item.story_id, state, error=str(err)[:300],
                       retry_at=self._now + backoff(item.attempts) if retry else None,
                       permanent=err.permanent, detail=err.reason_class)  # fmt: skip

    def _count(self, attempts: Sequence[Attempt]) -> None:
        for attempt in attempts:
            self.sent += attempt.state == ReplyState.SENT
            self.worked = self.worked or attempt.state == ReplyState.SENT
            self._failures = self._failures + 1 if attempt.state == ReplyState.PENDING else 0
