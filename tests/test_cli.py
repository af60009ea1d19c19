"""The command line as a person meets it: unknown references, --version, --help, and which
commands need the mailbox password."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import maildir_config

from story_intake.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", ["release", "erase"])
def test_cli_unknown_reference_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    config = maildir_config(tmp_path)
    assert main(["--config", str(config), command, "--story", "st-nosuch1"]) == 2
    captured = capsys.readouterr()
    assert "no story ST-NOSUCH1 in the store" in captured.err
    assert captured.out == ""  # no empty lists that read as "done"


def test_cli_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.split() == ["story-intake", expected]


COMMANDS = ["once", "run", "digest", "export", "requeue", "release", "resume", "erase",
            "subject-access", "status", "train", "evaluate", "demo"]  # fmt: skip


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_cli_help_describes_each_command_for_a_user(
    capsys: pytest.CaptureFixture[str], command: str | None
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"] if command else ["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    _usage, _, rest = text.partition("\n\n")
    description = rest.split("\n\n")[0]
    # A sentence or two of what it does, before the options: not the module's docstring.
    assert not description.startswith(("options:", "positional")), text
    assert len(description.split()) >= 12, description
    assert "module" not in text and "argument parsing" not in text
    if command is None:
        assert all(name in text for name in COMMANDS) and "Exit codes" in text


def _no_secret_config(tmp_path: Path, retention: str = "") -> Path:
    """IMAP and an SMTP relay with logins whose passwords are in no environment variable."""
    config = tmp_path / "pipeline.toml"
    config.write_text(
        '[mailbox]\nhost = "127.0.0.1"\nport = 9\nsecurity = "none"\n'
        'username = "team@example.net"\npassword_env = "STORY_TEST_ABSENT_IMAP"\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 9\nsecurity = "none"\nusername = "team"\n'
        'password_env = "STORY_TEST_ABSENT_SMTP"\n'
        f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n'
        f'[digest]\noutput_dir = "{tmp_path}/digests"\n{retention}'
    )
    return config


READ_ONLY = [["status"], ["export"], ["export", "--format", "csv"], ["digest"],
             ["release", "--all"], ["resume"], ["evaluate"], ["requeue"],
             ["erase", "--sender", "someone@example.org"],
             ["subject-access", "--sender", "someone@example.org", "--out", "SAR"]]  # fmt: skip


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_cli_commands_that_only_read_the_store_need_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:  # fmt: skip
    monkeypatch.delenv("STORY_TEST_ABSENT_IMAP", raising=False)
    monkeypatch.delenv("STORY_TEST_ABSENT_SMTP", raising=False)
    argv = [str(tmp_path / a) if a == "SAR" else a for a in command]
    assert main(["--config", str(_no_secret_config(tmp_path)), *argv]) == 0
    assert "STORY_TEST_ABSENT" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "variable", "retention"),
    [(["once"], "STORY_TEST_ABSENT_IMAP", ""), (["run"], "STORY_TEST_ABSENT_IMAP", ""),
     (["digest", "--send"], "STORY_TEST_ABSENT_SMTP", ""),
     (["erase", "--sender", "someone@example.org"], "STORY_TEST_ABSENT_IMAP",
      "[retention]\npurge_mailbox = true\n")],
)  # fmt: skip
def test_cli_commands_that_log_in_stop_at_start_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str], variable: str, retention: str,
) -> None:  # fmt: skip
    monkeypatch.delenv("STORY_TEST_ABSENT_IMAP", raising=False)
    monkeypatch.delenv("STORY_TEST_ABSENT_SMTP", raising=False)
    assert main(["--config", str(_no_secret_config(tmp_path, retention)), *command]) == 2
    assert f"environment variable {variable}" in capsys.readouterr().err
