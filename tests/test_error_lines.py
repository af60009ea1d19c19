"""Error lines: what a person running a command sees when the mailbox or relay says no.

Against the real Dovecot of the session fixture (its static passdb takes only "secret", so any
other password is a real login failure) and a real aiosmtpd sink (plain text on its port).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from intake.errors import SendError
from intake.errtext import TLS_HINT, describe
from tests.conftest import TESTS, Mailbox, SmtpSink, imap_config
from triage.reply.settings import SmtpSettings
from triage.reply.smtp import SmtpConnection


def _once(config: Path, password: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STORY_TEST_IMAP_PASSWORD": password}
    command = [sys.executable, str(TESTS.parent / "run_pipeline.py"), "--config", str(config),
               "once"]  # fmt: skip
    return subprocess.run(command, env=env, cwd=TESTS.parent, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 1, result.stderr[-2000:]
    # Start-up warnings (such as the mailbox's own address missing from [intake] addresses,
    # which these test configs provoke) are not the error; the error is said exactly once.
    return [line for line in result.stderr.splitlines()
            if line.strip() and " WARNING " not in line]  # fmt: skip


def test_cli_login_failure_prints_the_servers_text_once(mailbox: Mailbox, tmp_path: Path) -> None:
    lines = _error_lines(_once(imap_config(tmp_path, mailbox), "not-the-password"))
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: IMAP 127.0.0.1:")
    assert "[AUTHENTICATIONFAILED] Authentication failed." in lines[0]
    assert "b'" not in lines[0] and 'b"' not in lines[0]
    assert "not-the-password" not in lines[0]


def test_cli_ssl_to_a_plain_port_prints_the_tls_hint_once(mailbox: Mailbox, tmp_path: Path) -> None:
    config = imap_config(tmp_path, mailbox)
    config.write_text(config.read_text().replace('security = "none"', 'security = "ssl"', 1))
    lines = _error_lines(_once(config, "secret"))
    assert len(lines) == 1, lines
    assert "WRONG_VERSION_NUMBER" in lines[0]
    assert TLS_HINT in lines[0]


def test_smtp_ssl_to_a_plain_port_gives_the_tls_hint(smtp_sink: SmtpSink) -> None:
    settings = SmtpSettings(host=smtp_sink.host, port=smtp_sink.port, security="ssl", timeout=5)
    with pytest.raises(SendError) as caught, SmtpConnection(settings) as connection:
        connection.open()
    assert TLS_HINT in str(caught.value)
    assert not caught.value.permanent  # the configuration is wrong, not the message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((b"[AUTHENTICATIONFAILED] Authentication failed.",),
         "Exception: [AUTHENTICATIONFAILED] Authentication failed."),
        (("SELECT command error: BAD [b'Error in IMAP command SELECT: Bad \\'name\\'']",),
         "Exception: SELECT command error: BAD [Error in IMAP command SELECT: Bad 'name']"),
        (("caf\\xc3\\xa9 b'caf\\xc3\\xa9'",), "Exception: caf\\xc3\\xa9 café"),
        (("b'unterminated",), "Exception: b'unterminated"),
    ],
)  # fmt: skip
def test_errtext_decodes_server_bytes(args: tuple[object, ...], expected: str) -> None:
    assert describe(Exception(*args)) == expected
