"""The digest in a busy inbox: the real worker polls Dovecot while stories keep arriving and
digests go out every minute over SMTP; every story must reach exactly one digest, once."""

from __future__ import annotations

import email
import re
import signal
import sqlite3
import time
from collections import Counter
from email.policy import default
from pathlib import Path

import pytest
from conftest import Mailbox, SmtpSink, imap_config, start_pipeline, story_message

from triage.reply.policy import reference

STORIES = 40
PACE = 3.0  # seconds between arrivals: a pass is under way at most digest times
BODIES = (
    "I had to tell the GP, the hospital and the council the same thing three times.",
    "The police took my statement and then the officer lost it, so I gave it again.",
    "My mum is 84 and the care home never heard from the social worker about her fall.",
    "The bins were not collected again this week and nobody answers the phone.",
)
_REFERENCE = re.compile(r"\bST-[0-9A-F]{8}\b")


def digest_texts(sink: SmtpSink) -> list[str]:
    """The plain-text part of every digest the sink received, in the order received (without
    the agency-pairs section)."""
    texts = []
    for _, _, data in sink.messages:
        if b"Message-ID: <digest-" not in data:
            continue
        message = email.message_from_bytes(data, policy=default)
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        # The agency-pairs section cites stories shown above: a cross-reference, not a card.
        text = str(part.get_content())
        texts.append(re.sub(r"== Agencies named together.*?(?=\n== )", "", text, flags=re.S))
    return texts


def stored_references(database: Path) -> set[str]:
    """The reference of every stored story that is not automated mail."""
    with sqlite3.connect(database) as db:
        found = db.execute("SELECT s.story_id FROM stories s LEFT JOIN triage t "
                           "ON t.story_id = s.story_id "
                           "WHERE coalesce(t.kind, 'story') != 'automated'").fetchall()  # fmt: skip
    return {reference(story_id) for (story_id,) in found}


def wait_until_stored(database: Path, count: int, deadline: float = 120.0) -> None:
    """Until the worker has stored ``count`` messages (stories and automated mail) or the
    deadline passes: on a loaded machine the last poll can take longer than its interval."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with sqlite3.connect(database) as db:
            if db.execute("SELECT count(*) FROM stories").fetchone()[0] >= count:
                return
        time.sleep(0.5)


def wait_for_digests(sink: SmtpSink, count: int, deadline: float = 75.0) -> None:
    """Until the worker has sent ``count`` digests or the deadline passes: two minutes of
    arrivals span two digest times only when the first minute began early enough."""
    end = time.monotonic() + deadline
    while time.monotonic() < end and len(digest_texts(sink)) < count:
        time.sleep(0.5)


def crossed(database: Path) -> int:
    """Stories a pass stored (``stored_at``, its start) before the digest that claimed them
    opened: a clock-based window would have put them in an earlier, closed one."""
    with sqlite3.connect(database) as db:
        return int(
            db.execute(
                "SELECT count(*) FROM stories s JOIN digests d "
                "ON d.id = s.digest_id WHERE s.stored_at < d.start"
            ).fetchone()[0]
        )


def deliver_steadily(mailbox: Mailbox) -> None:
    """APPEND one message every PACE seconds; every tenth is an out-of-office reply."""
    start = time.monotonic()
    for n in range(STORIES):
        time.sleep(max(0.0, start + n * PACE - time.monotonic()))
        headers = {"Auto_Submitted": "auto-replied"} if n % 10 == 9 else {}
        mailbox.append(story_message(n, body=f"Story {n}. {BODIES[n % len(BODIES)]}\n",
                                     **headers))  # fmt: skip


@pytest.mark.slow
def test_digest_every_story_in_exactly_one_digest_in_a_busy_inbox(
    tmp_path: Path, mailbox: Mailbox, smtp_sink: SmtpSink
) -> None:
    config = imap_config(tmp_path, mailbox, smtp_port=smtp_sink.port, extra=(
        '[digest]\nrecipients = ["team@example.org"]\nschedule = "* * * * *"\n'
        f'output_dir = "{tmp_path}/digests"\n[schedule]\npoll_seconds = 5\n'))  # fmt: skip
    worker = start_pipeline(config, "run")
    try:
        deliver_steadily(mailbox)
        wait_until_stored(tmp_path / "stories.db", STORIES)  # the last arrivals' polls
        wait_for_digests(smtp_sink, 2)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err[-2000:]
    # The final digest holds what came after the worker's last one, or nothing at all.
    scheduled = len(digest_texts(smtp_sink))
    final = start_pipeline(config, "digest", "--send")
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err[-2000:]
    texts = digest_texts(smtp_sink)
    expected = stored_references(tmp_path / "stories.db")
    digests_with = Counter(ref for text in texts for ref in set(_REFERENCE.findall(text)))
    repeated = {ref for text in texts for ref, n in Counter(_REFERENCE.findall(text)).items()
                if n > 1}  # fmt: skip
    missing = expected - set(digests_with)
    in_several = {ref for ref, n in digests_with.items() if n > 1}
    figures = (f"stories={len(expected)} digests={len(texts)} scheduled={scheduled} "
               f"missing={len(missing)} "
               f"in_several={len(in_several)} repeated_within_one={len(repeated)} "
               f"crossed={crossed(tmp_path / 'stories.db')}")  # fmt: skip
    print(figures)  # shown with -s: the scenario's figures
    assert len(expected) == STORIES - STORIES // 10, figures
    assert scheduled >= 2, figures  # the scenario crosses at least two digest times
    assert not missing and not in_several and not repeated, figures
    assert set(digests_with) == expected, figures
