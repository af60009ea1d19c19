"""The command line as a person meets it: unknown references, --version, --help, and which
commands need the mailbox password."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import maildir_config

from cli import main


@pytest.mark.parametrize("command", ["release", "erase"])
def test_cli_unknown_reference_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    config = maildir_config(tmp_path)
    assert main(["--config", str(config), command, "--story", "st-nosuch1"]) == 2
    captured = capsys.readouterr()
    assert "no story ST-NOSUCH1 in the store" in captured.err
    assert captured.out == ""  # no empty lists that read as "done"
