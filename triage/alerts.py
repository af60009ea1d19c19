"""Poll health and the team's alerts: one email when polling keeps failing, one when it works
again, never a storm. The bookkeeping is pure; ``send_alert`` renders and hands over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from intake.errors import ConfigError, SendError
from intake.store.worker import PollHealth
from triage.reply.render import TEMPLATES, make_environment, our_message_id, render_team_mail
from triage.reply.smtp import send

if TYPE_CHECKING:
    from triage.reply.settings import SmtpSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """``[alerts]``: who hears about repeated failures, and after how many."""

    recipients: tuple[str, ...] = ()
    after_failures: int = 3


def record_poll(health: PollHealth, now: datetime, error: str | None) -> PollHealth:
    """The health after one poll that ended with ``error`` (None: it worked)."""
    at = now.isoformat()
    if error is None:
        return replace(health, failures=0, last_attempt_at=at, last_success_at=at,
                       last_error=None)  # fmt: skip
    return replace(health, failures=health.failures + 1, last_attempt_at=at, last_error=error)


def alert_due(health: PollHealth, after_failures: int) -> str | None:
    """``alert`` when failures reached the limit and the team has not been told, ``recovered``
    when polling works again after an alert, else None."""
    if health.failures == 0:
        return "recovered" if health.alerted else None
    if not health.alerted and health.failures >= after_failures:
        return "alert"
    return None


def send_alert(
    action: str, health: PollHealth, now: datetime, alerts: AlertSettings, smtp: SmtpSettings,
    team_name: str, *, about: str = "polling", template: str = "alert",
) -> PollHealth:  # fmt: skip
    """Tell ``[alerts] recipients`` that ``about`` (polling, or sending replies) is failing
    (or works again); returns the health with ``alerted`` updated. A failed hand-over leaves
    it unchanged, so the next pass tries again; with no recipients the log line is the alert."""
    alerted = action == "alert"
    if not alerts.recipients:
        log.warning("alert %s: %s failures=%d; no [alerts] recipients configured",
                    action, about, health.failures)  # fmt: skip
        return replace(health, alerted=alerted)
    subject = (f"Story intake: {about} has failed {health.failures} times in a row"
               if alerted else f"Story intake: {about} works again")  # fmt: skip
    context = {"action": action, "health": health, "now": now.isoformat(timespec="seconds"),
               "after_failures": alerts.after_failures}  # fmt: skip
    key = f"{action}:{health.last_attempt_at}"
    if not send_team_alert(template, context, subject, key, now, alerts, smtp, team_name):
        return health
    log.warning("alert %s sent: %s failures=%d", action, about, health.failures)
    return replace(health, alerted=alerted)


def send_team_alert(
    template: str, context: dict[str, object], subject: str, key: str, now: datetime,
    alerts: AlertSettings, smtp: SmtpSettings, team_name: str,
) -> bool:  # fmt: skip
    """Render ``template`` and hand it to ``[alerts] recipients``; whether it went. ``key``
    makes the Message-ID (``<alert-…>``): the same alert retried is the same message. A
    failure is logged (the alert goes over the same server that may be failing) and the
    caller keeps the alert due."""
    try:
        outgoing = render_team_mail(
            make_environment(TEMPLATES), template, context, subject=subject,
            to=alerts.recipients, settings=smtp, team_name=team_name, now=now,
            message_id=our_message_id("alert", f"{template}:{key}", smtp.from_address),
        )  # fmt: skip
        send(outgoing, smtp)
    except (SendError, ConfigError) as err:
        log.error("alert %s could not be sent (%s): will try again", template, err)
        return False
    return True
