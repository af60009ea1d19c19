"""Expiring OAuth2 credentials: a refresh token (delegated sign-in) or a client secret that the
provider says expires within 14 days shows in ``status`` and the team is told once, before
the mailbox goes silent (peers' refresh tokens expired unnoticed after 90 days). Each channel
that logs in by OAuth2 (``mailbox``: IMAP; ``smtp``: SMTP's own client) is watched and
alerted on its own.

Imports ``intake`` and ``triage.alerts``. The record lives in the store's worker state: the
dates and whether the alert went, never a credential. The alert is due again only after the
expiry moved beyond the window (a new sign-in) and came back into it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from intake.store.engine import Store
from triage.alerts import send_team_alert

if TYPE_CHECKING:
    from triage.alerts import AlertSettings
    from triage.reply.settings import SmtpSettings

log = logging.getLogger(__name__)
WARN_WITHIN = timedelta(days=14)
NAMES = {"refresh_token": "the refresh token of the delegated sign-in (`authorize`)",
         "client_secret": "the OAuth2 client secret"}  # fmt: skip
CHANNELS = {"mailbox": "mailbox", "smtp": "SMTP"}  # as the alert's subject names them


def expiring(expires: dict[str, str], now: datetime) -> dict[str, str]:
    """Those of ``expires`` (kind -> ISO 8601) that end within 14 days of ``now``."""
    return {kind: at for kind, at in expires.items()
            if datetime.fromisoformat(at) - now <= WARN_WITHIN}  # fmt: skip


def watch_expiry(
    store: Store, expires: dict[str, datetime], now: datetime, alerts: AlertSettings,
    smtp: SmtpSettings, team_name: str, channel: str = "mailbox",
) -> None:  # fmt: skip
    """Record ``channel``'s credentials' expiry dates and alert once when one is within 14
    days (once per channel: the mailbox's alert says nothing of SMTP's)."""
    record = store.worker.credential_expiry(channel)
    dates = {kind: at.isoformat(timespec="seconds") for kind, at in expires.items()}
    soon = expiring(dates, now)
    alerted = bool(record.get("alerted")) and bool(soon)  # out of the window: due again later
    if soon and not alerted:
        alerted = _tell(soon, now, alerts, smtp, team_name, channel)
    if dates != record.get("expires") or alerted != record.get("alerted"):
        store.worker.save_credential_expiry({"expires": dates, "alerted": alerted}, now, channel)


def _tell(
    soon: dict[str, str], now: datetime, alerts: AlertSettings, smtp: SmtpSettings,
    team_name: str, channel: str,
) -> bool:  # fmt: skip
    """Send the alert; whether the team was told (no recipients: the log line is the alert)."""
    log.warning("oauth2 credentials of %s expire within 14 days: %s", channel,
                ", ".join(sorted(soon)))  # fmt: skip
    if not alerts.recipients:
        return True
    context: dict[str, object] = {"expiring": {NAMES.get(k, k): at for k, at in soon.items()},
               "now": now.isoformat(timespec="seconds"), "channel": channel}  # fmt: skip
    subject = f"Story intake: the {CHANNELS.get(channel, channel)} sign-in expires soon"
    key = ",".join(f"{kind}={at}" for kind, at in sorted(soon.items()))
    if channel != "mailbox":  # its own Message-ID: the same dates on two channels, two alerts
        key = f"{channel}:{key}"
    return send_team_alert("expiry_alert", context, subject, key, now, alerts, smtp, team_name)


def expiry_status(store: Store, now: datetime, channel: str = "mailbox") -> dict[str, object]:
    """For ``status``: each of ``channel``'s dated credentials' expiry, those within 14 days,
    and whether the team was told."""
    record = store.worker.credential_expiry(channel)
    expires = dict(record.get("expires") or {})
    soon = expiring(expires, now)
    return {"expires_at": expires, "expiring_within_14_days": sorted(soon),
            "alert_sent": bool(record.get("alerted")) and bool(soon)}  # fmt: skip
