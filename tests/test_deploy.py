"""The operating files in deploy/: systemd units, Dockerfile, example config and secrets.

The unit files are read by a small parser of systemd's syntax (repeated keys kept, as systemd
keeps them) and checked for the hardening the worker must run with and for secrets, on every
machine. Where ``systemd-analyze`` is installed, the units are also verified by systemd itself
(with ExecStart pointed at this Python, as ``verify`` needs the binary to exist) and the
worker's exposure score is checked; only that part skips without the tool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
WORKER = DEPLOY / "story-intake.service"
ONCE = DEPLOY / "story-intake-once.service"
TIMER = DEPLOY / "story-intake-once.timer"
DIGEST = DEPLOY / "story-intake-digest.service"
DIGEST_TIMER = DEPLOY / "story-intake-digest.timer"
HOUSEKEEPING = DEPLOY / "story-intake-housekeeping.service"
HOUSEKEEPING_TIMER = DEPLOY / "story-intake-housekeeping.timer"
WEB = DEPLOY / "story-intake-web.service"
SERVICES = (WORKER, ONCE, DIGEST, HOUSEKEEPING, WEB)
UNITS = (WORKER, ONCE, TIMER, DIGEST, DIGEST_TIMER, HOUSEKEEPING, HOUSEKEEPING_TIMER, WEB)
INSTALLED_COMMAND = "/opt/story-intake/bin/story-intake"
CONFIG = "/etc/story-intake/pipeline.toml"
STATE = "/var/lib/story-intake"
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)

Unit = dict[str, list[tuple[str, str]]]

# Every service runs with these (key, value) settings, exactly.
HARDENING = {
    "User": "story-intake",
    "StateDirectory": "story-intake",
    "StateDirectoryMode": "0700",
    "WorkingDirectory": STATE,
    "UMask": "0077",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "EnvironmentFile": "/etc/story-intake/env",
}


def parse_unit(path: Path) -> Unit:
    """A unit file as {section: [(key, value), ...]}: comments and blank lines dropped,
    backslash continuations joined, repeated keys kept in order. Anything else is an error."""
    sections: Unit = {}
    current: list[tuple[str, str]] | None = None
    lines = path.read_text(encoding="utf-8").splitlines()
    joined: list[tuple[int, str]] = []
    pending = ""
    for number, line in enumerate(lines, 1):
        if not pending and line.lstrip().startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append((number, pending + line))
        pending = ""
    assert not pending, f"{path.name}: the last line continues into nothing"
    for number, line in joined:
        text = line.strip()
        if not text:
            continue
        if text.startswith("[") and text.endswith("]"):
            name = text[1:-1]
            assert name not in sections, f"{path.name}:{number}: section [{name}] twice"
            current = sections[name] = []
            continue
        key, equals, value = text.partition("=")
        assert equals, f"{path.name}:{number}: not a key=value line: {text!r}"
        assert current is not None, f"{path.name}:{number}: a key before any section"
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()), f"{path.name}:{number}: {key!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [value for name, value in unit.get(section, []) if name == key]


def only(unit: Unit, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}: expected once, found {found}"
    return found[0]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_deploy_units_parse(path: Path) -> None:
    unit = parse_unit(path)
    assert only(unit, "Unit", "Description")
    expected = {"Unit", "Timer", "Install"} if path.suffix == ".timer" else {"Unit", "Service"}
    assert expected <= set(unit) <= {"Unit", "Service", "Timer", "Install"}


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_deploy_services_hardened(path: Path) -> None:
    unit = parse_unit(path)
    for key, value in HARDENING.items():
        assert only(unit, "Service", key) == value, f"{path.name}: {key}"
    assert "DynamicUser" not in dict(unit["Service"])
    filters = values(unit, "Service", "SystemCallFilter")
    assert filters[0] == "@system-service", filters
    assert all(f == "@system-service" or f.startswith("~") for f in filters), filters


def test_deploy_worker_runs_and_restarts() -> None:
    unit = parse_unit(WORKER)
    assert only(unit, "Service", "ExecStart") == f"{INSTALLED_COMMAND} --config {CONFIG} run"
    assert only(unit, "Service", "Restart") == "on-failure"
    # Bad configuration (exit 2) is not retried in a loop.
    assert only(unit, "Service", "RestartPreventExitStatus") == "2"
    assert only(unit, "Install", "WantedBy") == "multi-user.target"


def test_deploy_web_serves_on_loopback_and_restarts() -> None:
    unit = parse_unit(WEB)
    assert only(unit, "Service", "ExecStart") == (
        f"{INSTALLED_COMMAND} --config {CONFIG} serve --host 127.0.0.1 --port 8025"
    )
    assert only(unit, "Service", "Restart") == "on-failure"
    assert only(unit, "Service", "RestartPreventExitStatus") == "2"
    assert only(unit, "Install", "WantedBy") == "multi-user.target"


def test_deploy_once_timer_starts_one_pass() -> None:
    once = parse_unit(ONCE)
    assert only(once, "Service", "Type") == "oneshot"
    assert only(once, "Service", "ExecStart") == f"{INSTALLED_COMMAND} --config {CONFIG} once"
    assert "Install" not in once  # started by the timer only
    timer = parse_unit(TIMER)
    assert only(timer, "Timer", "Unit") == ONCE.name
    assert values(timer, "Timer", "OnUnitInactiveSec") or values(timer, "Timer", "OnCalendar")
    assert only(timer, "Install", "WantedBy") == "timers.target"


def test_deploy_digest_timer_sends_digest() -> None:
    digest = parse_unit(DIGEST)
    assert only(digest, "Service", "Type") == "oneshot"
    command = f"{INSTALLED_COMMAND} --config {CONFIG} digest --send"
    assert only(digest, "Service", "ExecStart") == command
    assert "Install" not in digest
    timer = parse_unit(DIGEST_TIMER)
    assert only(timer, "Timer", "Unit") == DIGEST.name
    assert only(timer, "Timer", "OnCalendar") == "Mon..Fri *-*-* 08:00:00 Europe/London"
    assert only(timer, "Timer", "Persistent") == "true"


def test_deploy_housekeeping_timer_runs_retention_daily() -> None:
    service = parse_unit(HOUSEKEEPING)
    assert only(service, "Service", "Type") == "oneshot"
    command = f"{INSTALLED_COMMAND} --config {CONFIG} housekeeping"
    assert only(service, "Service", "ExecStart") == command
    assert "Install" not in service  # started by the timer only
    timer = parse_unit(HOUSEKEEPING_TIMER)
    assert only(timer, "Timer", "Unit") == HOUSEKEEPING.name
    assert only(timer, "Timer", "OnCalendar") == "*-*-* 03:30:00"
    assert only(timer, "Timer", "Persistent") == "true"
    assert only(timer, "Install", "WantedBy") == "timers.target"


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_deploy_units_hold_no_secrets(path: Path) -> None:
    unit = parse_unit(path)
    for section, pairs in unit.items():
        for key, value in pairs:
            if key == "Environment":
                # Environment= may name settings, never set a secret's value.
                for assignment in value.split():
                    name = assignment.partition("=")[0]
                    assert not SECRET_WORDS.search(name), f"{path.name}: [{section}] {value}"
            elif key != "EnvironmentFile":
                assert not SECRET_WORDS.search(value), f"{path.name}: [{section}] {key}={value}"


def test_deploy_env_example_holds_names_only() -> None:
    lines = (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines()
    assignments = [line for line in lines if line.strip() and not line.startswith("#")]
    assert assignments, "env.example names no variable"
    for line in assignments:
        name, equals, value = line.partition("=")
        assert equals and re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and value == "", line
    assert "STORY_IMAP_PASSWORD=" in assignments


def test_deploy_example_config_loads(tmp_path: Path) -> None:
    """The example /etc/story-intake/pipeline.toml is accepted by the program as it stands
    (its data paths moved into a temporary folder): `status` reads it and exits 0."""
    example = (DEPLOY / "pipeline.toml.example").read_text(encoding="utf-8")
    assert STATE in example and "password =" not in example
    config = tmp_path / "pipeline.toml"
    config.write_text(example.replace(STATE, str(tmp_path)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_pipeline.py"), "--config", str(config), "status"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "stories.db").exists()


def test_deploy_dockerfile_runs_worker_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line for line in text.splitlines() if line and not line[0].isspace()]
    instructions = [line for line in instructions if not line.startswith("#")]

    def one(keyword: str) -> str:
        found = [line for line in instructions if line.startswith(keyword + " ")]
        assert len(found) == 1, f"{keyword}: {found}"
        return found[0].removeprefix(keyword + " ")

    assert one("FROM").startswith("python:3.11-slim")
    assert one("USER").split(":")[0] not in {"root", "0"}
    assert one("VOLUME") == f'["{STATE}"]'
    assert one("ENTRYPOINT") == f'["story-intake", "--config", "{CONFIG}"]'
    assert one("CMD") == '["run"]'
    assert "pip install" in text
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", "var", ".git", "**/__pycache__", ".pytest_cache"} <= ignored


def verifiable_copy(path: Path, folder: Path) -> Path:
    """The unit with ExecStart pointed at this checkout and this Python, which exist here."""
    text = path.read_text(encoding="utf-8")
    assert INSTALLED_COMMAND in text or path.suffix == ".timer"
    local = f"{sys.executable} {ROOT / 'run_pipeline.py'}"
    copy = folder / path.name
    copy.write_text(text.replace(INSTALLED_COMMAND, local), encoding="utf-8")
    return copy


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip(
            "systemd-analyze is not installed (Debian package systemd): systemd's own "
            "verification skipped; the unit files' keys are still checked by the other tests"
        )
    return tool


def test_deploy_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = systemd_analyze()
    copies = [verifiable_copy(path, tmp_path) for path in UNITS]
    done = subprocess.run(
        [tool, "verify", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values, warning on stderr: both must be silent.
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert done.stdout.strip() == "", done.stdout


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_deploy_systemd_exposure_low(path: Path, tmp_path: Path) -> None:
    tool = systemd_analyze()
    copy = verifiable_copy(path, tmp_path)
    done = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    # systemd's scale: 0 (locked down) to 10; 1.4 at the time of writing.
    assert float(found.group(1)) <= 2.0, done.stdout
