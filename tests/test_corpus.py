"""Every raw message of the real-world corpus goes through the run loop to a defined outcome."""

from __future__ import annotations

import csv
import mailbox
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake.errors import ParseError
from intake.parse import parse
from intake.records import RawMessage
from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.pipeline import run_once


def corpus_messages(corpus: Path) -> list[Path]:
    with (corpus / "MANIFEST.tsv").open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [corpus / row["path"] for row in rows if row["role"] == "message"]


@pytest.mark.slow
def test_corpus_every_message_is_stored_or_quarantined_with_a_reason(
    corpus: Path, maildir_settings: Settings, now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = corpus_messages(corpus)
    assert len(paths) > 1000
    box = mailbox.Maildir(maildir_settings.mailbox.maildir, factory=None, create=True)  # type: ignore[union-attr]
    for path in paths:
        box.add(path.read_bytes())
    counts = run_once(maildir_settings, now)
    assert counts.fetched == len(paths)
    assert counts.stored + counts.duplicates + counts.quarantined == len(paths)
    assert len(box) == 0  # every message was handled and moved
    with Store(maildir_settings.store) as store:
        stories = list(store.stories.stories())
        quarantined = store.quarantine.quarantined()
    assert len(stories) == counts.stored
    assert all(entry.reason and entry.stage for entry in quarantined)
    # The parser recovers from nearly everything; a jump here means a regression.
    assert counts.quarantined <= len(paths) // 100
    defects = Counter(d for story in stories for d in story.defects)
    with capsys.disabled():
        print(f"\ncorpus: {len(paths)} messages -> stored {counts.stored}, duplicates "
              f"{counts.duplicates}, quarantined {counts.quarantined} "
              f"{Counter(e.reason.split(':')[0] for e in quarantined)}; "
              f"commonest defects {defects.most_common(5)}")  # fmt: skip


def test_corpus_mailparser_epilogue_bug_is_a_parse_error(corpus: Path) -> None:
    # CR-only line endings with a broken epilogue made mail-parser raise AttributeError.
    data = (corpus / "sisimai-set-of-emails/maildir/mac/lhost-sendgrid-01.eml").read_bytes()
    raw = RawMessage("INBOX", 1, 1, datetime(2026, 11, 24, tzinfo=UTC), len(data), data)
    with pytest.raises(ParseError, match="mail-parser failed"):
        parse(raw)
