"""Delegated OAuth2 (issue 19: ``authorize``, the device-code flow, the token cache file)
against the tests' OpenID issuer over HTTPS and Dovecot's oauth2 passdb. Nothing mocked: the
test plays the person by approving the printed code at the issuer."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import TESTS, DovecotServer
from test_oauth2 import TRIAGED, fresh_story, oauth_box, oauth_config, run_cli, stories_in

from story_intake.pipeline import run_once
from story_intake.secrets import delegated_provider
from story_intake.settings import load_settings

CACHE = "var/token-cache.json"  # relative: anchored to the config file's folder


def delegated_config(folder: Path, box: Any, issuer: Any, client_id: str, ca_file: Path,
                     extra: str = "") -> Path:  # fmt: skip
    """oauth_config with ``oauth2_flow = "device_code"`` and the cache under ``folder``."""
    config = oauth_config(folder, box, issuer, client_id, ca_file, extra=extra)
    text = config.read_text().replace(
        f'oauth2_client_id = "{client_id}"\n',
        f'oauth2_client_id = "{client_id}"\noauth2_flow = "device_code"\n'
        f'oauth2_token_cache = "{CACHE}"\n',
    )
    config.write_text(text)
    return config


def sign_in(config: Path, issuer: Any) -> None:
    """What ``authorize`` does, in this process: the person approves the code at once."""
    settings = load_settings(config, {})

    def approve(message: str) -> None:
        issuer.approve(re.findall(r"code (\d+)", message)[0])

    delegated_provider(settings.mailbox).authorize(approve)  # type: ignore[arg-type]


def test_oauth2_delegated_authorize_writes_a_0600_cache_and_a_pass_logs_in_from_it(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path, tagger: Any,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, client = oauth_issuer.register_public(box.user)
    box.append(fresh_story(1))
    config = delegated_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file)
    command = [sys.executable, str(TESTS.parent / "run_pipeline.py"), "--config", str(config),
               "--log-level", "DEBUG", "authorize"]  # fmt: skip
    with subprocess.Popen(command, cwd=tmp_path.parent, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as person:  # fmt: skip
        assert person.stdout is not None
        instructions = person.stdout.readline()  # printed before it waits for the sign-in
        assert f"{oauth_issuer.url}/device" in instructions
        oauth_issuer.approve(re.findall(r"code (\d+)", instructions)[0])
        out, err = person.communicate(timeout=60)
    assert person.returncode == 0, err
    cache = tmp_path / CACHE
    assert "authorized: token cache written to " + str(cache) in out
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temp file left over
    assert client.refreshes[-1] in cache.read_text()
    for token in [*client.issued, *client.refreshes]:
        assert token not in instructions + out + err

    counts = run_once(load_settings(config, {}), datetime.now(UTC), tagger=tagger)

    assert counts.stored == 1
    assert all(TRIAGED in flags for flags in box.flags().values())


def test_oauth2_delegated_refresh_rotates_and_the_file_holds_the_new_token(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    # 60 s tokens: under MSAL's five minutes, so every pass refreshes with the refresh token.
    client_id, client = oauth_issuer.register_public(box.user, lifetime=60)
    config = delegated_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file)
    sign_in(config, oauth_issuer)
    first = client.refreshes[-1]
    box.append(fresh_story(1))

    result = run_cli(config, "", "--log-level", "DEBUG", "once")

    assert result.returncode == 0, result.stderr
    assert stories_in(tmp_path) == 1
    assert len(client.refreshes) == 2  # rotated: the first one no longer works
    held = (tmp_path / CACHE).read_text()
    assert client.refreshes[-1] in held and first not in held
    assert stat.S_IMODE((tmp_path / CACHE).stat().st_mode) == 0o600
    for token in [*client.issued, *client.refreshes]:
        assert token not in result.stderr + result.stdout
    box.append(fresh_story(2))  # and the rotated one serves the next pass
    assert run_cli(config, "", "once").returncode == 0
    assert stories_in(tmp_path) == 2 and len(client.refreshes) == 3


def test_oauth2_delegated_expired_refresh_token_exits_1_saying_run_authorize(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, _ = oauth_issuer.register_public(box.user, lifetime=60)
    config = delegated_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file)
    box.append(fresh_story(1))

    never = run_cli(config, "", "once")  # nobody ran authorize yet

    sign_in(config, oauth_issuer)
    oauth_issuer.expire_refresh_tokens()
    expired = run_cli(config, "", "once")

    for result in (never, expired):
        assert result.returncode == 1, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "run `story-intake authorize` again" in lines[0]
    assert "TEST700082" in expired.stderr  # the provider's own error, for the person
    assert stories_in(tmp_path) == 0
    assert all(TRIAGED not in flags for flags in box.flags().values())
    assert json.loads((tmp_path / CACHE).read_text())["msal_cache"]  # the cache kept as it was
    assert os.access(tmp_path / CACHE, os.R_OK)


def alert_mails(folder: Path) -> list[str]:
    """The team's expiry alerts handed to the pickup folder."""
    mails = [p.read_text() for p in (folder / "outbox").glob("*.eml")]
    return [m for m in mails if "sign-in expires soon" in m]


def test_oauth2_delegated_refresh_token_expiring_shows_in_status_and_alerts_once(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    # The provider dates each refresh token 3 days out (and every pass refreshes: 60 s tokens).
    client_id, _ = oauth_issuer.register_public(box.user, lifetime=60, refresh_lifetime=3 * 86400)
    config = delegated_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file,
                              extra='[alerts]\nrecipients = ["team@example.org"]\n')  # fmt: skip
    sign_in(config, oauth_issuer)

    for n in (1, 2):
        box.append(fresh_story(n))
        assert run_cli(config, "", "once").returncode == 0
    status = json.loads(run_cli(config, "", "status").stdout)

    credentials = status["oauth2_credentials"]
    assert credentials["expiring_within_14_days"] == ["refresh_token"]
    expires = datetime.fromisoformat(credentials["expires_at"]["refresh_token"])
    assert 2.9 < (expires - datetime.now(UTC)).total_seconds() / 86400 <= 3
    assert credentials["alert_sent"] is True
    mails = alert_mails(tmp_path)
    assert len(mails) == 1  # two passes, one alert
    assert "authorize" in mails[0]


def test_oauth2_delegated_refresh_token_far_from_expiry_is_not_alerted(
    oauth_dovecot: DovecotServer, oauth_issuer: Any, oauth_ca: Any, tmp_path: Path,
) -> None:  # fmt: skip
    box = oauth_box(oauth_dovecot)
    client_id, _ = oauth_issuer.register_public(box.user, lifetime=60, refresh_lifetime=90 * 86400)
    config = delegated_config(tmp_path, box, oauth_issuer, client_id, oauth_ca.ca_file,
                              extra='[alerts]\nrecipients = ["team@example.org"]\n')  # fmt: skip
    sign_in(config, oauth_issuer)
    box.append(fresh_story(1))

    assert run_cli(config, "", "once").returncode == 0

    credentials = json.loads(run_cli(config, "", "status").stdout)["oauth2_credentials"]
    assert credentials["expiring_within_14_days"] == []
    assert "refresh_token" in credentials["expires_at"]
    assert credentials["alert_sent"] is False
    assert alert_mails(tmp_path) == []
