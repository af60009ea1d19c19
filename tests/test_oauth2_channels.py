"""OAuth2 channel isolation (issue 19, zammad#3294: one failing token stopped every channel):
the mailbox (IMAP) and SMTP each have their own OAuth2 client and token provider, so revoking
one never stops the other's work. Real parts: the tests' OpenID issuer with two clients
registered, Dovecot's oauth2 passdb and an SMTP server taking AUTH XOAUTH2."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import DovecotServer, XOAuth2Sink, maildir_config, seed_maildir, story_message
from test_oauth2 import (
    SECRET_ENV,
    TRIAGED,
    fresh_story,
    oauth_box,
    oauth_config,
    run_cli,
    stories_in,
)

from intake.errors import ConfigError
from intake.store.engine import Store
from story_intake.pipeline import run_once
from story_intake.settings import load_settings, settings_from

SMTP_SECRET_ENV = "STORY_TEST_SMTP_OAUTH2_SECRET"


def two_client_config(
    folder: Path, box: Any, issuer: Any, mailbox_id: str, smtp_id: str, ca_file: Path,
    smtp_port: int,
) -> Path:  # fmt: skip
    """The mailbox logs in with ``mailbox_id``; SMTP with ``smtp_id``, its other keys inherited."""
    config = oauth_config(folder, box, issuer, mailbox_id, ca_file, smtp_port=smtp_port)
    config.write_text(config.read_text() + f'oauth2_client_id = "{smtp_id}"\n'
                      f'oauth2_client_secret_env = "{SMTP_SECRET_ENV}"\n')  # fmt: skip
    return config


def smtp_client_with_maildir(
    folder: Path, user: str, smtp_id: str, issuer: Any, ca: Any, sink: XOAuth2Sink
) -> Path:
    """A Maildir mailbox (no OAuth2 there) and an [smtp] with its own OAuth2 client."""
    smtp = (f'host = "127.0.0.1"\nport = {sink.port}\n'
            f'security = "none"\nusername = "{user}"\nauth = "oauth2"\n'
            f'oauth2_provider = "generic"\noauth2_authority = "{issuer.url}"\n'
            f'oauth2_client_id = "{smtp_id}"\noauth2_client_secret_env = "{SMTP_SECRET_ENV}"\n'
            f'ca_file = "{ca.ca_file}"\n')  # fmt: skip
    return maildir_config(folder, smtp=smtp, extra="[intake]\nworkers = 0\n")


def revoke(client: Any) -> str:
    """The issuer forgets the client's secret (as an admin's revoke does); returns it."""
    secret, client.secret = client.secret, f"revoked-{client.secret}"
    return str(secret)


def two_clients_with_two_stories(
    dovecot: DovecotServer, issuer: Any, ca: Any, sink: XOAuth2Sink, folder: Path
) -> tuple[Any, Path, dict[str, str], Any, Any]:
    """A mailbox holding two stories, its client and SMTP's registered at the issuer: (the
    mailbox, the config, the environment with both secrets, mailbox client, SMTP client)."""
    box = oauth_box(dovecot)
    mailbox_id, mailbox_client = issuer.register(box.user)
    smtp_id, smtp_client = issuer.register(box.user)
    box.append(fresh_story(1), fresh_story(2))
    config = two_client_config(folder, box, issuer, mailbox_id, smtp_id, ca.ca_file, sink.port)
    environ = {SECRET_ENV: mailbox_client.secret, SMTP_SECRET_ENV: smtp_client.secret}
    return box, config, environ, mailbox_client, smtp_client


def pending(settings: Any) -> int:
    with Store(settings.store) as store:
        return int(store.outbox.outbox_counts().get("pending", 0))


def test_oauth2_channels_smtp_client_revoked_intake_goes_on_and_replies_wait(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    box, config, environ, mailbox_client, smtp_client = two_clients_with_two_stories(
        oauth_dovecot, oauth_issuer, oauth_ca, xoauth2_sink, tmp_path
    )
    settings = load_settings(config, environ)
    secret = revoke(smtp_client)

    counts = run_once(settings, datetime.now(UTC), tagger=tagger)

    assert (counts.stored, counts.tagged, counts.acknowledged) == (2, 2, 0)
    assert all(TRIAGED in flags for flags in box.flags().values())  # marked: intake went on
    assert xoauth2_sink.messages == [] and pending(settings) == 2
    assert smtp_client.issued == [] and len(mailbox_client.issued) == 1
    with Store(settings.store) as store:
        sending = store.worker.send_health()
    assert sending.failures == 1 and "invalid_client" in (sending.last_error or "")

    smtp_client.secret = secret  # un-revoked: the next pass sends what waited
    again = run_once(settings, datetime.now(UTC), tagger=tagger)

    assert (again.fetched, again.acknowledged) == (0, 2)
    assert len(xoauth2_sink.messages) == 2 and xoauth2_sink.logins == [box.user]
    assert len(smtp_client.issued) == 1 and len(mailbox_client.issued) == 1  # still cached


def test_oauth2_channels_mailbox_client_revoked_still_sends_queued_replies_then_exits_1(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    box, config, environ, mailbox_client, smtp_client = two_clients_with_two_stories(
        oauth_dovecot, oauth_issuer, oauth_ca, xoauth2_sink, tmp_path
    )
    settings = load_settings(config, environ)
    smtp_secret = revoke(smtp_client)  # an earlier pass: stored, the replies queued
    assert run_once(settings, datetime.now(UTC), tagger=tagger).stored == 2
    assert pending(settings) == 2 and xoauth2_sink.messages == []
    smtp_client.secret = smtp_secret
    revoke(mailbox_client)
    box.append(fresh_story(3))

    result = run_cli(config, environ[SECRET_ENV], "once",
                     **{SMTP_SECRET_ENV: environ[SMTP_SECRET_ENV]})  # fmt: skip

    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "invalid_client: TEST7000215: Invalid client secret provided." in errors[0]
    assert len(xoauth2_sink.messages) == 2 and pending(settings) == 0  # the queue went out
    assert stories_in(tmp_path) == 2  # nothing new stored...
    assert TRIAGED not in box.flags()[max(box.flags())]  # ...nor marked


def test_oauth2_channels_smtp_client_of_its_own_with_a_maildir(
    oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink, tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    user = "stories@example.org"
    smtp_id, smtp_client = oauth_issuer.register(user)
    config = smtp_client_with_maildir(tmp_path, user, smtp_id, oauth_issuer, oauth_ca, xoauth2_sink)
    seed_maildir(tmp_path / "mailbox", story_message(1), story_message(2))
    settings = load_settings(config, {SMTP_SECRET_ENV: smtp_client.secret})

    counts = run_once(settings, datetime.now(UTC), tagger=tagger)

    assert (counts.stored, counts.acknowledged) == (2, 2)
    assert xoauth2_sink.logins == [user] and len(smtp_client.issued) == 1


def test_oauth2_channels_unset_smtp_keys_inherit_the_mailbox_client() -> None:
    document = tomllib.loads(
        '[mailbox]\nmaildir = ""\nhost = "imap.example.org"\nusername = "stories@example.org"\n'
        'password_env = "IMAP_PW"\noauth2_provider = "generic"\n'
        'oauth2_authority = "https://sso.example.org/realms/mail"\noauth2_scope = "mail"\n'
        '[smtp]\npickup_dir = ""\nhost = "smtp.example.org"\nusername = "stories@example.org"\n'
        'auth = "oauth2"\noauth2_client_id = "sender"\noauth2_client_secret_env = "SMTP_S"\n'
    )  # a password IMAP mailbox: only SMTP uses OAuth2, with the mailbox's issuer and scope

    settings = settings_from(document, {"IMAP_PW": "pw", "SMTP_S": "s3cret"})

    tokens = settings.smtp.tokens
    assert tokens is not None and getattr(settings.mailbox, "tokens", None) is None
    client = tokens.settings
    assert (client.provider, client.authority, client.scope) == (
        "generic", "https://sso.example.org/realms/mail", "mail")  # fmt: skip
    assert (client.client_id, client.client_secret, client.section) == ("sender", "s3cret",
                                                                        "mailbox")  # fmt: skip


def test_oauth2_channels_mailbox_and_smtp_never_share_a_token_provider() -> None:
    document = tomllib.loads(
        '[mailbox]\nmaildir = ""\nhost = "imap.example.org"\nusername = "stories@example.org"\n'
        'auth = "oauth2"\noauth2_tenant = "example.org"\noauth2_client_id = "reader"\n'
        '[smtp]\npickup_dir = ""\nhost = "smtp.example.org"\nusername = "stories@example.org"\n'
        'auth = "oauth2"\n'
    )
    settings = settings_from(document, {"STORY_OAUTH2_SECRET": "s"})
    imap_tokens = getattr(settings.mailbox, "tokens", None)
    assert imap_tokens is not None and settings.smtp.tokens is not None
    assert settings.smtp.tokens is not imap_tokens  # same client, own MSAL app and cache
    assert settings.smtp.tokens.settings.client_id == "reader"


@pytest.mark.parametrize(("smtp", "key"), [
    ("", "smtp.oauth2_client_id must be set"),
    ('oauth2_client_id = "c"\n', "smtp.oauth2_tenant must be set"),
    ('oauth2_client_id = "c"\noauth2_provider = "generic"\n', "smtp.oauth2_authority must be set"),
    ('oauth2_client_id = "c"\noauth2_provider = "generic"\n'
     'oauth2_authority = "http://sso.example.org/x"\n', "smtp.oauth2_authority must be an https"),
    ('oauth2_provider = "okta"\n', "smtp.oauth2_provider must be one of"),
    ('oauth2_scope = 3\n', "smtp.oauth2_scope must be a string"),
])  # fmt: skip
def test_oauth2_channels_smtp_client_config_errors_name_the_key(smtp: str, key: str) -> None:
    head = '[smtp]\npickup_dir = ""\nhost = "smtp.example.org"\nusername = "stories@example.org"\n'
    document = tomllib.loads(f'{head}auth = "oauth2"\n{smtp}')
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as caught:
        settings_from(document, {})
    assert "\n" not in str(caught.value)


def test_oauth2_channels_check_logs_in_to_smtp_with_its_own_client(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    mailbox_id, mailbox_client = oauth_issuer.register(box.user)
    smtp_id, smtp_client = oauth_issuer.register(box.user)
    config = two_client_config(tmp_path, box, oauth_issuer, mailbox_id, smtp_id,
                               oauth_ca.ca_file, xoauth2_sink.port)  # fmt: skip

    done = run_cli(config, mailbox_client.secret, "check", "--json",
                   **{SMTP_SECRET_ENV: smtp_client.secret})  # fmt: skip

    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["smtp_auth"]["status"] == "pass", checks["smtp_auth"]
    assert (
        "XOAUTH2" in checks["smtp_auth"]["detail"] and "expires 20" in checks["smtp_auth"]["detail"]
    )
    assert xoauth2_sink.logins == [box.user] and len(smtp_client.issued) == 1
    assert len(mailbox_client.issued) == 1  # the IMAP check's token, the mailbox's own


def test_oauth2_channels_digest_goes_out_while_the_mailbox_client_is_revoked(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    mailbox_id, mailbox_client = oauth_issuer.register(box.user)
    smtp_id, smtp_client = oauth_issuer.register(box.user)
    box.append(fresh_story(1))
    config = two_client_config(tmp_path, box, oauth_issuer, mailbox_id, smtp_id,
                               oauth_ca.ca_file, xoauth2_sink.port)  # fmt: skip
    config.write_text(config.read_text() + '[digest]\nrecipients = ["team@example.net"]\n'
                      f'output_dir = "{tmp_path}/digests"\n')  # fmt: skip
    environ = {SECRET_ENV: mailbox_client.secret, SMTP_SECRET_ENV: smtp_client.secret}
    assert run_once(load_settings(config, environ), datetime.now(UTC), tagger=tagger).stored == 1
    revoke(mailbox_client)

    result = run_cli(config, environ[SECRET_ENV], "digest", "--send",
                     **{SMTP_SECRET_ENV: environ[SMTP_SECRET_ENV]})  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "sent"
    assert ("team@example.net",) in [rcpt_tos for _, rcpt_tos, _ in xoauth2_sink.messages]
