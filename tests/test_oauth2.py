"""OAuth2 (issue 19) against real parts: the tests' OpenID issuer over HTTPS with its own CA
(MSAL's oidc_authority), Dovecot's oauth2 passdb validating the issued JWTs, and an SMTP
server taking AUTH XOAUTH2. Nothing mocked."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from conftest import TESTS, DovecotServer, Mailbox, XOAuth2Sink, story_message

from intake.errors import ConfigError
from story_intake.jobs import poll_job
from story_intake.pipeline import run_once
from story_intake.settings import load_settings, settings_from

SECRET_ENV = "STORY_TEST_OAUTH2_SECRET"
TRIAGED = b"$Triaged"


def oauth_box(server: DovecotServer) -> Mailbox:
    """A fresh user whose name is the address the issuer's tokens carry."""
    return Mailbox(server, f"user-{uuid.uuid4().hex[:10]}@example.org")


def oauth_config(
    folder: Path, box: Mailbox, issuer: Any, client_id: str, ca_file: Path,
    smtp_port: int = 0, extra: str = "", security: str = "starttls",
) -> Path:  # fmt: skip
    """A pipeline.toml logging in to ``box`` over STARTTLS with XOAUTH2 (and to the SMTP server
    on ``smtp_port`` with AUTH XOAUTH2, else the pickup folder)."""
    smtp = (f'pickup_dir = ""\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            f'username = "{box.user}"\nauth = "oauth2"\n'
            if smtp_port else f'pickup_dir = "{folder}/outbox"\n')  # fmt: skip
    config = folder / "pipeline.toml"
    config.write_text(
        f'[mailbox]\nmaildir = ""\nhost = "127.0.0.1"\nport = {box.server.port}\n'
        f'security = "{security}"\nusername = "{box.user}"\nauth = "oauth2"\n'
        f'oauth2_provider = "generic"\noauth2_authority = "{issuer.url}"\n'
        f'oauth2_client_id = "{client_id}"\noauth2_client_secret_env = "{SECRET_ENV}"\n'
        f'ca_file = "{ca_file}"\nconnect_timeout = 5.0\nread_timeout = 10.0\n'
        f'[store]\nurl = "sqlite:///{folder}/stories.db"\n'
        f'[intake]\nworkers = 0\naddresses = ["stories@example.org", "{box.user}"]\n'
        f"[smtp]\n{smtp}{extra}"
    )
    return config


def fresh_story(n: int) -> bytes:
    return story_message(n, date=formatdate(usegmt=True))


def stories_in(folder: Path) -> int:
    database = folder / "stories.db"
    if not database.exists():
        return 0
    with closing(sqlite3.connect(database)) as db:
        return int(db.execute("SELECT count(*) FROM stories").fetchone()[0])


def run_cli(config: Path, secret: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, SECRET_ENV: secret, **env}
    command = [sys.executable, str(TESTS.parent / "run_pipeline.py"), "--config", str(config),
               *args]  # fmt: skip
    return subprocess.run(command, env=environ, cwd=TESTS.parent, text=True, capture_output=True,
                          timeout=120)  # fmt: skip


def test_oauth2_login_and_a_full_pass(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, client = oauth_issuer.register(box.user)
    box.append(fresh_story(1), fresh_story(2))
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file,
                          smtp_port=xoauth2_sink.port)  # fmt: skip
    settings = load_settings(config, {SECRET_ENV: client.secret})

    counts = run_once(settings, datetime.now(UTC), tagger=tagger)

    assert (counts.stored, counts.acknowledged) == (2, 2)
    assert all(TRIAGED in flags for flags in box.flags().values())
    assert xoauth2_sink.logins == [box.user]  # one SMTP session, logged in by XOAUTH2
    assert len(xoauth2_sink.messages) == 2
    # One token per channel (each has its own provider): a third would mean no cache at all.
    assert len(client.issued) == 2


def test_oauth2_token_is_renewed_before_it_expires_and_reused_until_then(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    # MSAL reuses a token only while it has more than 300 s left: 303 s gives 3 s of reuse.
    client_id, client = oauth_issuer.register(box.user, lifetime=303)
    settings = load_settings(
        oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file),
        {SECRET_ENV: client.secret},
    )
    box.append(fresh_story(1))
    assert run_once(settings, datetime.now(UTC), tagger=tagger).stored == 1
    assert len(client.issued) == 1
    box.append(fresh_story(2))
    assert run_once(settings, datetime.now(UTC), tagger=tagger).stored == 1
    assert len(client.issued) == 1  # the same token, still well within its life
    time.sleep(3.5)  # now under five minutes left: MSAL must not hand it out again
    box.append(fresh_story(3))
    assert run_once(settings, datetime.now(UTC), tagger=tagger).stored == 1
    assert len(client.issued) == 2
    assert settings.mailbox.tokens is not None  # type: ignore[union-attr]
    expires_at = settings.mailbox.tokens.expires_at  # type: ignore[union-attr]
    assert expires_at is not None and expires_at > datetime.now(UTC)


def test_oauth2_wrong_secret_exits_1_with_the_providers_error_and_marks_nothing(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, client = oauth_issuer.register(box.user)
    box.append(fresh_story(1))
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file)

    result = run_cli(config, "revoked-or-wrong", "once")

    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "invalid_client: TEST7000215: Invalid client secret provided." in lines[0]
    assert "Trace ID" not in result.stderr  # one line, not the provider's whole text
    assert "revoked-or-wrong" not in result.stderr + result.stdout
    assert client.issued == []
    assert all(TRIAGED not in flags for flags in box.flags().values())
    assert stories_in(tmp_path) == 0


def test_oauth2_failing_token_is_a_failed_poll(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    from intake.store.engine import Store

    box = oauth_box(oauth_dovecot)
    client_id, _ = oauth_issuer.register(box.user)
    box.append(fresh_story(1))
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file)
    settings = load_settings(config, {SECRET_ENV: "wrong"})

    assert poll_job(settings, datetime.now(UTC)) is True

    with Store(settings.store) as store:
        health = store.worker.poll_health()
    assert health.failures == 1
    assert "invalid_client" in (health.last_error or "")
    assert stories_in(tmp_path) == 0


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_oauth2_ca_file_wins_over_the_environment(
    variable: str, oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any,
    other_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, client = oauth_issuer.register(box.user)
    box.append(fresh_story(1))
    # ca_file names a CA that did not sign the issuer's certificate; the environment names
    # the right one. (IMAP in plain text on loopback: only the token endpoint is under test.)
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, other_ca.ca_file,
                          security="none")  # fmt: skip
    environment = {"REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": "", "CURL_CA_BUNDLE": "",
                   variable: str(oauth_ca.ca_file)}  # fmt: skip

    result = run_cli(config, client.secret, "once", **environment)

    assert result.returncode == 1, result.stderr
    assert "SSLError" in result.stderr and "mailbox.ca_file" in result.stderr
    assert client.issued == []
    assert stories_in(tmp_path) == 0


def test_oauth2_imap_tls_trusts_only_ca_file(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, other_ca: Any,
    tmp_path: Path, tagger: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from dataclasses import replace

    from intake.errors import FetchError

    box = oauth_box(oauth_dovecot)
    client_id, client = oauth_issuer.register(box.user)
    box.append(fresh_story(1))
    settings = load_settings(
        oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file),
        {SECRET_ENV: client.secret},
    )
    # The token endpoint is trusted (its provider was built with the right CA); the IMAP
    # server's certificate must now be checked against ca_file alone, not SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(oauth_ca.ca_file))
    wrong = replace(settings.mailbox, ca_file=str(other_ca.ca_file))
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        run_once(replace(settings, mailbox=wrong), datetime.now(UTC), tagger=tagger)
    assert stories_in(tmp_path) == 0


def test_oauth2_no_token_or_secret_in_debug_logs_status_or_the_store(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, client = oauth_issuer.register(box.user)
    box.append(fresh_story(1))
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file,
                          smtp_port=xoauth2_sink.port)  # fmt: skip

    once = run_cli(config, client.secret, "--log-level", "DEBUG", "once")
    status = run_cli(config, client.secret, "status")

    assert once.returncode == 0, once.stderr
    assert len(xoauth2_sink.messages) == 1 and len(client.issued) == 2  # IMAP's and SMTP's
    assert "DEBUG" in once.stderr  # the level really was on
    expires_at = json.loads(status.stdout)["oauth2_token_expires_at"]
    assert datetime.fromisoformat(expires_at) > datetime.now(UTC)  # status shows the expiry
    seen = once.stdout + once.stderr + status.stdout + status.stderr
    stored = (tmp_path / "stories.db").read_bytes()
    assert "IMAP login by XOAUTH2 (new token" in once.stderr
    seen += repr(load_settings(config, {SECRET_ENV: client.secret}))
    secrets = [client.secret, *client.issued, *(token.split(".")[2] for token in client.issued)]
    for value in secrets:
        assert value not in seen
        assert value.encode() not in stored


@pytest.mark.parametrize(("lines", "key"), [
    ('auth = "oauth2"\noauth2_tenant = "example.org"\n', "mailbox.oauth2_client_id"),
    ('auth = "oauth2"\noauth2_client_id = "c"\n', "mailbox.oauth2_tenant"),
    ('auth = "oauth2"\noauth2_client_id = "c"\noauth2_provider = "generic"\n',
     "mailbox.oauth2_authority"),
    ('auth = "oauth2"\noauth2_client_id = "c"\noauth2_provider = "generic"\n'
     'oauth2_authority = "http://issuer.example.org"\n', "mailbox.oauth2_authority"),
    ('auth = "oauth2"\noauth2_client_id = "c"\noauth2_tenant = "t"\n'
     'oauth2_client_secret_env = ""\n', "mailbox.oauth2_client_secret_env"),
    ('auth = "kerberos"\n', "mailbox.auth must be one of: password | oauth2"),
    ('oauth2_provider = "okta"\n', "mailbox.oauth2_provider must be one of"),
    ('ca_file = "/nonexistent/ca.pem"\n', "mailbox.ca_file cannot be read"),
])  # fmt: skip
def test_oauth2_config_errors_name_the_key(lines: str, key: str) -> None:
    import tomllib

    document = tomllib.loads('[mailbox]\nmaildir = ""\nhost = "imap.example.org"\n'
                             f'username = "stories@example.org"\n{lines}')  # fmt: skip
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as caught:
        settings_from(document, {"STORY_OAUTH2_SECRET": "x", "STORY_IMAP_PASSWORD": "x"})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("smtp", "key"), [
    ('host = "smtp.example.org"\nauth = "oauth2"\n', "smtp.username"),
    ('host = "smtp.example.org"\nauth = "oauth2"\nusername = "stories@example.org"\n',
     "smtp.oauth2_client_id must be set when smtp.auth = oauth2"),
    ('host = "smtp.example.org"\nca_file = "/nonexistent/ca.pem"\n', "smtp.ca_file cannot be read"),
])  # fmt: skip
def test_oauth2_smtp_config_errors_name_the_key(smtp: str, key: str) -> None:
    import tomllib

    document = tomllib.loads(f'[smtp]\npickup_dir = ""\n{smtp}')
    with pytest.raises(ConfigError, match=key):
        settings_from(document, {})


def test_oauth2_missing_secret_variable_is_named_at_start(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    config = oauth_config(tmp_path, box, oauth_issuer, "client-x", oauth_ca.ca_file)
    result = run_cli(config, "", "once")
    assert result.returncode == 2
    assert f"{SECRET_ENV} (named by mailbox.oauth2_client_secret_env) is not set" in result.stderr


def test_oauth2_smtp_refusing_the_token_leaves_the_acknowledgement_to_retry(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    from intake.store.engine import Store

    box = oauth_box(oauth_dovecot)
    client_id, client = oauth_issuer.register(box.user)
    box.append(fresh_story(1))
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file,
                          smtp_port=xoauth2_sink.port)  # fmt: skip
    # The token is the mailbox's: a relay login as another user is refused (535).
    text = config.read_text().split("[smtp]")
    config.write_text(text[0] + "[smtp]" + text[1].replace(box.user, "other@example.org"))
    settings = load_settings(config, {SECRET_ENV: client.secret})

    counts = run_once(settings, datetime.now(UTC), tagger=tagger)

    assert (counts.stored, counts.acknowledged) == (1, 0)
    assert xoauth2_sink.logins == [] and xoauth2_sink.messages == []
    assert all(TRIAGED in flags for flags in box.flags().values())  # intake went on
    with Store(settings.store) as store:
        assert store.outbox.outbox_counts().get("pending") == 1  # a later run retries it


def test_oauth2_google_service_account_acts_as_the_mailbox(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, xoauth2_sink: XOAuth2Sink,
    tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, key, account = oauth_issuer.register_service_account()
    box.append(fresh_story(1))
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file,
                          smtp_port=xoauth2_sink.port)  # fmt: skip
    # Google: the service account's JSON key is the secret; its token_uri is the issuer's.
    config.write_text(config.read_text().replace('oauth2_provider = "generic"',
                                                 'oauth2_provider = "google"'))  # fmt: skip
    settings = load_settings(config, {SECRET_ENV: key})

    counts = run_once(settings, datetime.now(UTC), tagger=tagger)
    counts_again = run_once(settings, datetime.now(UTC), tagger=tagger)

    assert (counts.stored, counts.acknowledged, counts_again.fetched) == (1, 1, 0)
    assert xoauth2_sink.logins == [box.user]
    assert len(account.issued) == 2  # one per channel; the second pass reused both


def test_oauth2_google_unknown_key_is_refused_by_name(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    import json as json_module

    box = oauth_box(oauth_dovecot)
    client_id, key, _ = oauth_issuer.register_service_account()
    forged = json_module.loads(key)
    forged["client_email"] = "someone-else@project.iam.example.org"
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file)
    config.write_text(config.read_text().replace('oauth2_provider = "generic"',
                                                 'oauth2_provider = "google"'))  # fmt: skip
    box.append(fresh_story(1))

    result = run_cli(config, json_module.dumps(forged), "once")

    assert result.returncode == 1
    assert "invalid_grant: Invalid JWT Signature." in result.stderr
    assert "PRIVATE KEY" not in result.stderr
    assert stories_in(tmp_path) == 0


@pytest.mark.parametrize("trusted", [True, False])
def test_oauth2_smtp_starttls_trusts_only_its_ca_file(
    trusted: bool, oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any,
    other_ca: Any, tmp_path: Path, tagger: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import ssl

    from aiosmtpd.controller import Controller

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(oauth_ca.cert_file, oauth_ca.key_file)
    sink = XOAuth2Sink(oauth_issuer)
    controller = Controller(sink, hostname=sink.host, port=sink.port, tls_context=context,
                            require_starttls=True)  # fmt: skip
    controller.start()
    try:
        box = oauth_box(oauth_dovecot)
        client_id, client = oauth_issuer.register(box.user)
        box.append(fresh_story(1))
        ca_file = oauth_ca.ca_file if trusted else other_ca.ca_file
        config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file,
                              smtp_port=sink.port)  # fmt: skip
        config.write_text(config.read_text().replace(
            'security = "none"\nusername', f'security = "starttls"\nca_file = "{ca_file}"\n'
            "username"))  # fmt: skip
        # The environment trusts the right CA: only [smtp] ca_file may decide.
        monkeypatch.setenv("SSL_CERT_FILE", str(oauth_ca.ca_file))
        settings = load_settings(config, {SECRET_ENV: client.secret})

        counts = run_once(settings, datetime.now(UTC), tagger=tagger)
    finally:
        controller.stop()

    assert counts.stored == 1
    assert (counts.acknowledged, sink.logins) == ((1, [box.user]) if trusted else (0, []))


def test_oauth2_check_says_the_mechanism_flow_and_token_expiry(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, client = oauth_issuer.register(box.user)
    config = oauth_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file)

    done = run_cli(config, client.secret, "check", "--json")

    report = json.loads(done.stdout)
    (auth,) = [c for c in report["checks"] if c["name"] == "authentication"]
    assert auth["status"] == "pass", auth
    assert "XOAUTH2" in auth["detail"] and "client credentials token" in auth["detail"]
    assert "token expires 20" in auth["detail"]  # a date, never the token itself
    assert client.issued and all(token not in done.stdout for token in client.issued)
