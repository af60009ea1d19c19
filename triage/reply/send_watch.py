"""Acknowledge stage, watching the hand-over: send health and the breaker's alert.

Imports ``intake`` and ``triage.alerts``. A pass whose replies cannot be handed over (a bad
certificate, a server without STARTTLS, a refused login) still ends well: the stories are
stored and the replies stay ``pending``. So that this is seen, each such pass is counted in
the send record, as a failed poll is in the poll record: ``status`` shows it, and after
``[alerts] after_failures`` failures in a row the team gets one email, and one more when a
reply goes again. A tripped breaker is told once. Either email goes over the same server and
may fail too: it then stays due (``status`` says so) and is tried again after the next pass.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from intake.store.engine import Store
from triage.alerts import alert_due, record_poll, send_alert, send_team_alert
from triage.reply.breaker import resumed, window_start

if TYPE_CHECKING:
    from triage.alerts import AlertSettings
    from triage.reply.settings import SmtpSettings

log = logging.getLogger(__name__)


def watch_sending(
    store: Store, failure: str | None, worked: bool, now: datetime, alerts: AlertSettings,
    smtp: SmtpSettings, team_name: str, max_per_hour: int,
) -> None:  # fmt: skip
    """Record how handing replies over went in one pass (``failure``: why it failed; else
    ``worked``: whether anything was tried and went) and send any alert that is due."""
    health = store.worker.send_health()
    if failure is not None or worked:
        health = record_poll(health, now, failure)
        if failure is not None:
            log.warning("sending failed (%d passes in a row): %s", health.failures, failure)
    action = alert_due(health, alerts.after_failures)
    if action:
        health = send_alert(action, health, now, alerts, smtp, team_name,
                            about="sending replies", template="send_alert")  # fmt: skip
    store.worker.save_send_health(health, now)
    _tell_breaker(store, now, alerts, smtp, team_name, max_per_hour)


def _tell_breaker(
    store: Store, now: datetime, alerts: AlertSettings, smtp: SmtpSettings, team_name: str,
    max_per_hour: int,
) -> None:  # fmt: skip
    breaker = store.worker.breaker()
    if not breaker.tripped_at or breaker.alerted:
        return
    context = {"action": "breaker", "breaker": breaker, "max_per_hour": max_per_hour,
               "now": now.isoformat(timespec="seconds")}  # fmt: skip
    subject = "Story intake: acknowledgements stopped (hourly cap reached)"
    if _tell(alerts, "send_alert", context, subject, breaker.tripped_at, now, smtp, team_name):
        store.worker.save_breaker(replace(breaker, alerted=True), now)


def _tell(
    alerts: AlertSettings, template: str, context: dict[str, object], subject: str, key: str,
    now: datetime, smtp: SmtpSettings, team_name: str,
) -> bool:  # fmt: skip
    """Send one alert; with no recipients the log line is the alert (and it counts as told)."""
    action = context["action"]
    if not alerts.recipients:
        log.warning("alert %s (sending); no [alerts] recipients configured", action)
        return True
    if not send_team_alert(template, context, subject, key, now, alerts, smtp, team_name):
        return False
    log.warning("alert %s (sending) sent", action)
    return True


def sending_status(store: Store, after_failures: int) -> dict[str, object]:
    """Send health for ``status``: passes in a row whose replies could not be handed over,
    and whether the alert about it went (or is waiting for the server to take it)."""
    health = store.worker.send_health()
    waiting = health.failures >= after_failures and not health.alerted
    return {"last_success_at": health.last_success_at,
            "consecutive_failures": health.failures, "last_error": health.last_error,
            "alert_sent": health.alerted, "alert_waiting_to_be_sent": waiting}  # fmt: skip


def breaker_status(store: Store, max_per_hour: int, now: datetime) -> dict[str, object]:
    """The breaker for ``status``: tripped (since when, how many had gone) until resumed."""
    breaker = store.worker.breaker()
    tripped = breaker.tripped_at is not None
    state = "open: sending stopped until `resume` (or `release --all`)" if tripped else "closed"
    return {"state": state, "tripped_at": breaker.tripped_at,
            "sent_when_tripped": breaker.sent if tripped else None,
            "alert_sent": breaker.alerted if tripped else None,
            "resumed_at": breaker.resumed_at, "max_per_hour": max_per_hour,
            "sent_last_hour": store.outbox.sent_since(window_start(breaker, now))}  # fmt: skip


def resume(store: Store, now: datetime) -> bool:
    """A person resumes sending after the breaker tripped; returns whether it was tripped."""
    was = store.worker.breaker().tripped_at is not None
    store.worker.save_breaker(resumed(now), now)
    if was:
        log.warning("acknowledgement breaker resumed by hand")
    return was
