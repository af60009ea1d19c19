"""``story-intake check``: every step between this machine and the mailbox and the relay, one
line each, ✓ or ✗ with the fix, honest about each step (a step whose prerequisite did not pass
is reported as skipped, never as passed). Exit 0 only when every check passes.

The ``checks`` lists are the steps, in order; each is a small function of the ``Probe`` (the
settings, the environment, the connection so far) that returns what it found or raises
``Failed`` with what it found and the fix. Nothing is read from or changed in the mailbox:
no flag is stored, no message fetched and no mail sent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TextIO

from intake.sources.imap import ImapSettings
from story_intake import check_imap as imap
from story_intake import check_mail as mail
from story_intake.app_settings import Settings
from story_intake.check_base import Check, Failed, Outcome, Probe

IMAP_CHECKS = (
    Check("dns", None, imap.dns),
    Check("tcp", "dns", imap.tcp),
    Check("tls", "tcp", imap.tls),
    Check("authentication", "tls", imap.authentication),
    Check("folder", "authentication", imap.folder),
    Check("permanentflags", "folder", imap.permanent_flags),
    Check("capabilities", "authentication", imap.capabilities),
    Check("processed_folder", "authentication", imap.processed_folder),
)
MAILDIR_CHECKS = (Check("maildir", None, mail.maildir),)
SMTP_CHECKS = (
    Check("smtp_connect", None, mail.smtp_connect),
    Check("smtp_starttls", "smtp_connect", mail.smtp_starttls),
    Check("smtp_auth", "smtp_starttls", mail.smtp_auth),
)
PICKUP_CHECKS = (Check("pickup_dir", None, mail.pickup_dir),)
ADDRESS_CHECKS = (Check("own_address", None, mail.own_address),)


def checks_for(settings: Settings) -> tuple[Check, ...]:
    """The checks these settings call for: the mailbox's (IMAP or the Maildir), the relay's
    (SMTP or the pickup folder), and the mailbox's own address."""
    box = IMAP_CHECKS if isinstance(settings.mailbox, ImapSettings) else MAILDIR_CHECKS
    out = SMTP_CHECKS if settings.smtp.host else PICKUP_CHECKS
    return box + out + ADDRESS_CHECKS


MARKS = {"pass": "✓", "fail": "✗", "skip": "-"}


def run_checks(settings: Settings, environ: Mapping[str, str], now: datetime) -> list[Outcome]:
    """Every check for these settings, in order."""
    state, outcomes = Probe(settings, environ, now), []
    passed: set[str] = set()
    try:
        for check in checks_for(settings):
            outcome = _run(check, state, passed)
            outcomes.append(outcome)
            if outcome.status == "pass":
                passed.add(check.name)
    finally:
        if state.imap is not None:
            state.imap.close()
    return outcomes


def _run(check: Check, state: Probe, passed: set[str]) -> Outcome:
    if check.needs is not None and check.needs not in passed:
        return Outcome(check.name, "skip", f"skipped: {check.needs} did not pass")
    try:
        return Outcome(check.name, "pass", check.run(state))
    except Failed as failed:
        return Outcome(check.name, "fail", failed.detail, failed.fix)


def report(outcomes: Sequence[Outcome], as_json: bool, out: TextIO) -> int:
    """Print the outcomes (one line each, the fix under a failure; or one JSON object);
    returns the exit code: 0 only when every check passed."""
    ok = all(o.status == "pass" for o in outcomes)
    if as_json:
        out.write(json.dumps({"ok": ok, "checks": [asdict(o) for o in outcomes]}) + "\n")
        return 0 if ok else 1
    width = max((len(o.name) for o in outcomes), default=0)
    for o in outcomes:
        out.write(f"{MARKS[o.status]} {o.name:<{width}}  {o.detail}\n")
        if o.fix:
            out.write(f"  {'':<{width}}  fix: {o.fix}\n")
    return 0 if ok else 1


def check_command(settings: Settings, as_json: bool, out: TextIO) -> int:
    """``story-intake check [--json]``."""
    return report(run_checks(settings, os.environ, datetime.now(UTC)), as_json, out)
