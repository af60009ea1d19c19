"""The command line as a person meets it: unknown references, --version, --help, and which
commands need the mailbox password."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import maildir_config

from cli import main

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
