"""``story-intake check`` against the real Dovecot and aiosmtpd fixtures: everything passes,
a wrong password, a closed port, TLS spoken to a plain port, and the embedded default."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import (
    PASSWORD,
    SINK_USER,
    DovecotServer,
    Mailbox,
    SmtpSink,
    free_port,
    imap_config,
    maildir_config,
)

from intake.errtext import TLS_HINT
from story_intake.cli import main

IMAP_STEPS = ["dns", "tcp", "tls", "authentication", "folder", "permanentflags",
              "capabilities", "processed_folder"]  # fmt: skip
SMTP_STEPS = ["smtp_connect", "smtp_starttls", "smtp_auth"]


@pytest.fixture
def config(
    tmp_path: Path, dovecot: DovecotServer, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A config for a fresh mailbox whose login is its address, the sink with AUTH."""
    monkeypatch.setenv("STORY_TEST_IMAP_PASSWORD", PASSWORD)
    box = Mailbox(dovecot, f"stories-{uuid.uuid4().hex[:8]}@example.org")
    return imap_config(tmp_path, box, smtp_port=smtp_sink.port, extra=(
        f'username = "{SINK_USER}"\npassword_env = "STORY_TEST_IMAP_PASSWORD"\n'))  # fmt: skip


def run_check(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--config", str(config), "check", *args])
    return code, capsys.readouterr().out


def lines_by_step(out: str) -> dict[str, str]:
    """Each report line by its check's name (fix lines are kept under ``name:fix``)."""
    found, last = {}, ""
    for line in out.splitlines():
        if line.lstrip().startswith("fix:"):
            found[f"{last}:fix"] = line.strip()
            continue
        last = line.split()[1]
        found[last] = line
    return found


def test_check_all_steps_pass_against_real_servers(
    config: Path, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_check(config, capsys)
    lines = lines_by_step(out)
    assert code == 0, out
    assert list(lines) == [*IMAP_STEPS, *SMTP_STEPS, "own_address"]
    assert all(line.startswith("✓ ") for line in lines.values()), out
    assert "IDLE yes" in lines["capabilities"] and "MOVE yes" in lines["capabilities"]
    assert "$Triaged can be stored" in lines["permanentflags"]
    assert "LOGIN" in lines["authentication"]
    assert smtp_sink.logins == [SINK_USER] and smtp_sink.messages == []  # AUTH, nothing sent


def test_check_wrong_password_fails_authentication_and_skips_what_needs_it(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text(
        config.read_text().replace(
            'password_env = "STORY_TEST_IMAP_PASSWORD"\nbatch',
            'password_env = "STORY_WRONG"\nbatch',
        )
    )
    monkeypatch.setenv("STORY_WRONG", "not-the-password")
    code, out = run_check(config, capsys)
    lines = lines_by_step(out)
    assert code == 1
    assert lines["authentication"].startswith("✗ ") and "AUTHENTICATIONFAILED" in out
    assert "$STORY_WRONG" in lines["authentication:fix"]
    assert "not-the-password" not in out
    for step in ("folder", "permanentflags", "capabilities", "processed_folder"):
        assert lines[step].startswith("- ") and "skipped" in lines[step]
    assert lines["smtp_auth"].startswith("✓ ")  # the relay is checked all the same
    code, out = run_check(config, capsys, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["authentication"] == "fail" and status["folder"] == "skip"


def test_check_closed_port_fails_tcp(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = config.read_text()
    port = text.split("port = ", 1)[1].split("\n", 1)[0]
    config.write_text(text.replace(f"port = {port}\n", f"port = {free_port()}\n", 1))
    code, out = run_check(config, capsys)
    lines = lines_by_step(out)
    assert code == 1
    assert lines["dns"].startswith("✓ ")
    assert lines["tcp"].startswith("✗ ") and "ConnectionRefusedError" in lines["tcp"]
    assert "port" in lines["tcp:fix"]
    assert lines["tls"].startswith("- ") and lines["authentication"].startswith("- ")


def test_check_tls_on_a_plain_port_fails_with_the_hint(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(config.read_text().replace('security = "none"\nusername',
                                                 'security = "ssl"\nusername', 1))  # fmt: skip
    code, out = run_check(config, capsys)
    lines = lines_by_step(out)
    assert code == 1
    assert lines["tcp"].startswith("✓ ") and lines["tls"].startswith("✗ ")
    assert TLS_HINT in lines["tls:fix"]
    assert lines["authentication"].startswith("- ")


def test_check_the_embedded_default_checks_its_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path / "site")
    code, out = run_check(config, capsys, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == ["maildir", "pickup_dir", "own_address"]
    assert "first pass creates it" in checks["maildir"]["detail"]
    (tmp_path / "site" / "outbox").write_text("a file, not a folder")
    code, out = run_check(config, capsys)
    assert code == 1 and lines_by_step(out)["pickup_dir"].startswith("✗ ")


def test_check_tls_reports_the_certificate_and_a_refused_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    untrusted_tls_sink: SmtpSink,
) -> None:  # fmt: skip
    key, cert = tmp_path / "imap.key", tmp_path / "imap.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-subj", "/CN=127.0.0.1/O=Story Test CA", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    os.chmod(key, 0o644)  # read by Dovecot's unprivileged processes
    server = DovecotServer(f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n")
    server.start()
    try:
        monkeypatch.setenv("STORY_TEST_IMAP_PASSWORD", PASSWORD)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # this machine trusts the test CA
        config = imap_config(tmp_path, Mailbox(server, "stories@example.org"),
                             smtp_port=untrusted_tls_sink.port)  # fmt: skip
        text = config.read_text().replace('security = "none"\nusername',
                                          'security = "starttls"\nusername', 1)  # fmt: skip
        config.write_text(text.replace('security = "none"', 'security = "starttls"'))
        code, out = run_check(config, capsys)
    finally:
        server.remove()
    lines = lines_by_step(out)
    assert lines["tls"].startswith("✓ ") and "starttls, verified" in lines["tls"]
    assert "subject CN=127.0.0.1, O=Story Test CA" in lines["tls"] and "(in 29 days)" in out
    assert lines["folder"].startswith("✓ ")
    # The relay's certificate is signed by no CA this machine trusts: refused, with the fix.
    assert code == 1 and lines["smtp_connect"].startswith("✓ ")
    assert lines["smtp_starttls"].startswith("✗ ") and "SSLCertVerificationError" in out
    assert "certificate" in lines["smtp_starttls:fix"]
    assert lines["smtp_auth"].startswith("- ")
