"""What `export` prints: the contract's columns, through the command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import maildir_config, nested_message, seed_maildir, story_message

from run_pipeline import main
from triage.acknowledge import reference


def test_report_export_has_reference_and_mailbox_in_jsonl_and_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path)
    seed_maildir(tmp_path / "mailbox", story_message(1, message_id="<one@example.org>"),
                 nested_message(5000))  # fmt: skip
    assert main(["--config", str(config), "once"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "export", "--format", "jsonl"]) == 0
    story, bad = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert story["reference"] == reference("one@example.org") and story["reference"][:3] == "ST-"
    assert story["mailbox"] == bad["mailbox"] == "maildir:mailbox"  # the folder it came from
    assert bad["reference"] is None and bad["quarantined"]  # not a story yet: no reference
    assert main(["--config", str(config), "export", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["reference"] == story["reference"]
    assert rows[0]["mailbox"] == story["mailbox"]
