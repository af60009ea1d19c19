"""Expiry watching per OAuth2 channel (issue 19): SMTP's own client is watched like the
mailbox's (its token's expiry in ``status`` and on the Health page, a dated refresh token
alerted once), under its own names, so a password or Maildir mailbox with an OAuth2 [smtp]
shows SMTP's alone. Real parts: the tests' OpenID issuer, Dovecot, an SMTP server taking AUTH
XOAUTH2."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

from conftest import (
    PASSWORD,
    TESTS,
    Mailbox,
    XOAuth2Sink,
    imap_config,
    seed_maildir,
    story_message,
)
from test_oauth2 import fresh_story
from test_oauth2_channels import SMTP_SECRET_ENV, smtp_client_with_maildir

from intake.store.engine import Store
from story_intake.cli_store import status
from story_intake.pipeline import run_once
from story_intake.settings import load_settings
from story_intake.web.insights import token_expiry

USER = "stories@example.org"
SUBJECT = "Story intake: the SMTP sign-in expires soon"


def test_oauth2_expiry_channels_smtp_token_expiry_shown_alone_with_a_maildir(
    oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink, tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    smtp_id, smtp_client = oauth_issuer.register(USER, lifetime=1800)
    config = smtp_client_with_maildir(tmp_path, USER, smtp_id, oauth_issuer, oauth_ca, xoauth2_sink)
    seed_maildir(tmp_path / "mailbox", story_message(1))
    settings = load_settings(config, {SMTP_SECRET_ENV: smtp_client.secret})
    now = datetime.now(UTC)

    assert run_once(settings, now, tagger=tagger).acknowledged == 1

    with Store(settings.store) as store:
        found = status(store, settings, now)
        shown = token_expiry(settings, store)
    expires = datetime.fromisoformat(str(found["smtp_oauth2_token_expires_at"]))
    assert 1700 < (expires - now).total_seconds() <= 1810  # the issuer's 30-minute token
    assert found["oauth2_token_expires_at"] is None  # the Maildir logs in to nothing
    assert found["smtp_oauth2_credentials"] == {
        "expires_at": {}, "expiring_within_14_days": [], "alert_sent": False,
    }  # fmt: skip
    assert shown == {"smtp": expires}  # the Health page: SMTP's alone


def smtp_delegated_config(folder: Path, box: Mailbox, issuer: Any, client_id: str,
                          ca_file: Path, sink_port: int) -> Path:  # fmt: skip
    """The mailbox logs in with its password; [smtp] inherits [mailbox]'s delegated client
    (device code) and so has a delegated sign-in of its own, its token cache under ``folder``."""
    config = imap_config(folder, box, smtp_port=sink_port,
                         extra=f'username = "{USER}"\nauth = "oauth2"\n'
                         '[alerts]\nrecipients = ["team@example.org"]\n')  # fmt: skip
    text = config.read_text().replace(
        'password_env = "STORY_TEST_IMAP_PASSWORD"\n',
        'password_env = "STORY_TEST_IMAP_PASSWORD"\noauth2_provider = "generic"\n'
        f'oauth2_authority = "{issuer.url}"\noauth2_client_id = "{client_id}"\n'
        f'oauth2_flow = "device_code"\noauth2_token_cache = "var/smtp-cache.json"\n'
        f'ca_file = "{ca_file}"\n',
    )
    config.write_text(text)
    return config


def authorize(config: Path, issuer: Any) -> None:
    """``authorize`` as a child process, the person approving its code at once."""
    command = [sys.executable, str(TESTS.parent / "run_pipeline.py"), "--config", str(config),
               "authorize"]  # fmt: skip
    with subprocess.Popen(command, cwd=config.parent, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as person:  # fmt: skip
        assert person.stdout is not None
        instructions = person.stdout.readline()
        found = re.findall(r"code (\d+)", instructions)
        if found:
            issuer.approve(found[0])
        out, err = person.communicate(timeout=60)
    assert person.returncode == 0, err
    assert "authorized: token cache written to " + str(config.parent / "var") in out


def alerts_to_team(sink: XOAuth2Sink) -> list[str]:
    subjects = [str(message_from_bytes(data)["Subject"]) for _, _, data in sink.messages]
    return [s for s in subjects if "sign-in expires soon" in s]


def test_oauth2_expiry_channels_smtp_refresh_token_expiring_alerts_once_under_smtp(
    mailbox: Mailbox, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    # The provider dates each refresh token 3 days out (60 s tokens: every pass refreshes).
    client_id, _ = oauth_issuer.register_public(USER, lifetime=60, refresh_lifetime=3 * 86400)
    config = smtp_delegated_config(tmp_path, mailbox, oauth_issuer, client_id, oauth_ca.ca_file,
                                   xoauth2_sink.port)  # fmt: skip
    environ = {"STORY_TEST_IMAP_PASSWORD": PASSWORD}
    authorize(config, oauth_issuer)  # SMTP's sign-in: the mailbox has no OAuth2 of its own

    # Passes as `once` processes (fresh providers from the cache): one with nothing to send
    # between (SMTP asks for no token: the record and its alert must stand).
    for n in (1, 2, 0, 3):
        if n:
            mailbox.append(fresh_story(n))
        settings = load_settings(config, environ)
        assert run_once(settings, datetime.now(UTC), tagger=tagger).acknowledged == bool(n)

    now = datetime.now(UTC)
    with Store(settings.store) as store:
        found = status(store, settings, now)
    credentials = found["smtp_oauth2_credentials"]
    assert isinstance(credentials, dict)
    assert credentials["expiring_within_14_days"] == ["refresh_token"]
    expires = datetime.fromisoformat(credentials["expires_at"]["refresh_token"])
    assert timedelta(days=2.9) < expires - now <= timedelta(days=3)
    assert credentials["alert_sent"] is True
    assert alerts_to_team(xoauth2_sink) == [SUBJECT]  # three passes sent, one alert, SMTP's
    assert found["oauth2_credentials"] == {
        "expires_at": {}, "expiring_within_14_days": [], "alert_sent": False,
    }  # fmt: skip
    assert found["oauth2_token_expires_at"] is None  # the mailbox logs in with its password
