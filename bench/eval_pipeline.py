"""Score the tagger on a labelled set through the whole pipeline, not on bare text.

Each labelled row becomes an email (its ``eml`` when it has one: forwarded-as-attachment and
HTML-only mail; otherwise a plain message with its ``subject`` and ``text``) in a fresh Maildir.
One pass of ``run_pipeline.py once`` parses, cleans, stores and tags them; ``export`` gives what
the team would see. Only the command-line contract is used, so the figures mean the same whatever
the code inside looks like.

    .venv/bin/python bench/eval_pipeline.py triage/tag/data/eval_r4.jsonl [--show-requests]

Prints per-theme precision/recall/F1 (on stories), macro-F1, kind accuracy, withdrawal recall,
and how many stories were read as requests (and as withdrawals).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
THEMES = ("health", "policing", "elderly_care", "duplication")
GUESSED = ("withdrawal_by_classifier", "mixed_request")  # triage.tag.rules.GUESSED
CONFIG = """\
[mailbox]
maildir = "{root}/mailbox"
[smtp]
pickup_dir = "{root}/outbox"
from_address = "stories@example.org"
[intake]
addresses = ["stories@example.org"]
[store]
url = "sqlite:///{root}/stories.db"
[digest]
output_dir = "{root}/digests"
"""


def message_id(row_id: str) -> str:
    return f"<{row_id}@eval.example.org>"


def to_email(row: dict[str, Any], when: datetime) -> bytes:
    """The row as the raw bytes of one email, with a Message-ID that names the row."""
    if row.get("eml"):
        # As bytes: a writer's raw 8-bit body (no transfer encoding) is kept as it was typed.
        raw = row["eml"].encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        del msg["Message-ID"]
        msg["Message-ID"] = message_id(row["id"])
        return msg.as_bytes()
    msg = EmailMessage()
    msg["From"] = f"Person {row['id']} <{row['id']}@example.net>"
    msg["To"] = "stories@example.org"
    msg["Subject"] = row.get("subject") or "My story"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id(row["id"])
    msg.set_content(row["text"])
    return msg.as_bytes()


def seed(rows: list[dict[str, Any]], maildir: Path) -> None:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    for i, row in enumerate(rows):
        (maildir / "new" / f"{int(time.time())}.{i}.eval").write_bytes(to_email(row, now))


def run(root: Path, *args: str) -> str:
    cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "--config", str(root / "eval.toml"),
           *args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def score(rows: list[dict[str, Any]], exported: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures, from gold rows and the exported records keyed by row id."""
    stories = [r for r in rows if r["kind"] == "story"]
    figures: dict[str, Any] = {"themes": {}}
    for theme in THEMES:
        tp = sum(theme in r["themes"] and theme in exported[r["id"]]["themes"] for r in stories)
        fp = sum(theme not in r["themes"] and theme in exported[r["id"]]["themes"] for r in stories)
        fn = sum(theme in r["themes"] and theme not in exported[r["id"]]["themes"] for r in stories)
        p = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * rec / (p + rec) if p + rec else 0.0
        figures["themes"][theme] = (round(p, 3), round(rec, 3), round(f1, 3), tp + fn)
    figures["macro_f1"] = round(sum(v[2] for v in figures["themes"].values()) / len(THEMES), 3)
    figures["kind_accuracy"] = round(
        sum(r["kind"] == exported[r["id"]]["kind"] for r in rows) / len(rows), 3
    )
    withdrawals = [r for r in rows if r["kind"] == "request:withdrawal"]
    figures["withdrawal_recall"] = (
        sum(exported[r["id"]]["kind"] == "request:withdrawal" for r in withdrawals),
        len(withdrawals),
    )
    figures["stories_as_request"] = [
        (r["id"], exported[r["id"]]["kind"])
        for r in stories
        if str(exported[r["id"]]["kind"]).startswith("request:")
    ]
    # A request the tagger guessed (classifier alone, or a story told beside it) is held for a
    # person: nothing is removed or confirmed until someone has read it.
    figures["held_for_a_person"] = sum(
        bool(set(exported[row_id].get("review_reasons", [])) & set(GUESSED))
        for row_id, _ in figures["stories_as_request"]
    )
    figures["stories"] = len(stories)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labelled", type=Path)
    parser.add_argument(
        "--show-requests", action="store_true", help="list the ids of stories read as requests"
    )
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.labelled.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory(prefix="eval-") as tmp:
        root = Path(tmp)
        (root / "eval.toml").write_text(CONFIG.format(root=root))
        seed(rows, root / "mailbox")
        run(root, "once", "--dry-run")
        records = [json.loads(line) for line in run(root, "export").splitlines() if line]
    by_story = {r["story_id"].strip("<>"): r for r in records}
    exported = {}
    for row in rows:
        record = by_story.get(message_id(row["id"]).strip("<>"))
        exported[row["id"]] = record or {"kind": "missing", "themes": []}
    figures = score(rows, exported)
    for theme, (p, rec, f1, support) in figures["themes"].items():
        print(f"{theme:<14} precision {p:.3f} recall {rec:.3f} F1 {f1:.3f} support {support}")
    print(
        f"macro-F1 {figures['macro_f1']:.3f}; kind accuracy {figures['kind_accuracy']:.3f}; "
        f"withdrawal recall {figures['withdrawal_recall'][0]}/{figures['withdrawal_recall'][1]}"
    )
    asked = figures["stories_as_request"]
    as_withdrawal = sum(kind == "request:withdrawal" for _, kind in asked)
    print(
        f"stories read as a request: {len(asked)} of {figures['stories']} "
        f"({as_withdrawal} as a withdrawal; {figures['held_for_a_person']} held for a person)"
    )
    missing = [r["id"] for r in rows if exported[r["id"]]["kind"] == "missing"]
    if missing:
        print(f"not in the export (quarantined?): {len(missing)}")
    if args.show_requests:
        for row_id, kind in asked:
            print(f"  {row_id}: {kind}")


if __name__ == "__main__":
    main()
