"""Bad-input fuzzing: real corpus messages, mutated, through parse, clean, tag, store and the
acknowledgement decision. Nothing may escape the stage loop; every message ends stored or
quarantined with a reason; no reply may gain a second recipient or an injected header.

CI runs ``FUZZ_EXAMPLES`` cases (default 150); ``make faults`` runs the full count.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections import Counter
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from conftest import FUZZ_COUNTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.records import MailboxState, RawMessage, Story, Triage
from intake.store.engine import Store, StoreSettings
from story_intake.pipeline import process
from triage.reply.policy import Decision, decide, reference
from triage.reply.render import TEMPLATES, make_environment, render_acknowledgement
from triage.reply.settings import AcknowledgementSettings, SmtpSettings
from triage.tag.tagger import Tagger

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
OWN = ("stories@example.org",)
REPLY_HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
                 "Auto-Submitted", "X-Auto-Response-Suppress", "X-Loop", "MIME-Version",
                 "Content-Type"}  # fmt: skip
MUTATIONS = ("truncate_headers", "flip_bytes", "cut_boundary", "duplicate_headers",
             "huge_header", "deep_nesting", "hostile_from")  # fmt: skip


@pytest.fixture(scope="module")
def messages(corpus: Path) -> list[bytes]:
    manifest = (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]
    paths = sorted(line.split("\t")[0] for line in manifest if line.split("\t")[1] == "message")
    return [(corpus / p).read_bytes() for p in random.Random(7).sample(paths, 300)]


@pytest.fixture(scope="module")
def ran(request: pytest.FixtureRequest) -> Counter[str]:
    """How many cases of each mutation ran; conftest prints it in the summary."""
    counts: Counter[str] = Counter()
    request.config.stash[FUZZ_COUNTS] = counts
    return counts


def mutate(data: bytes, how: str, rng: random.Random) -> bytes:
    """One kind of damage real mailboxes deliver."""
    head = data.partition(b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n")[0]
    if how == "truncate_headers":
        return head[: rng.randrange(len(head) + 1)]
    if how == "flip_bytes":
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 50)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        return bytes(damaged)
    if how == "cut_boundary":
        lines = data.split(b"\n")
        cuts = [i for i, line in enumerate(lines) if line.startswith(b"--")] or [len(lines) // 2]
        return b"\n".join(lines[: rng.choice(cuts)])
    if how == "duplicate_headers":
        extra = b"".join(line + b"\r\n" for line in head.splitlines()[:8] * rng.randint(2, 40))
        return extra + data
    if how == "huge_header":
        return b"Subject: " + b"A " * rng.randint(10_000, 500_000) + b"\r\n" + data
    if how == "deep_nesting":
        depth = rng.randint(50, 400)
        nested = b"Content-Type: text/plain\r\n\r\nThe GP never got it.\r\n"
        for level in range(depth):
            start = b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n'
            nested = start % (level, level) + nested + b"\r\n--b%d--\r\n" % level
        return head + b"\r\nMIME-Version: 1.0\r\n" + nested
    return (rng.choice([b'From: "a@example.org\r\nBcc: x@example.net" <a@example.org>\r\n',
                        b"From: a@example.org, b@example.net\r\n",
                        b"From: a@example.org\rBcc: evil@example.net\r\n",
                        b"From: =?utf-8?q?a=0D=0ABcc:_x@example.net?= <c@example.org>\r\n",
                        b"From: <a@example.org>\n\tBcc: y@example.net\r\n"])
            + data)  # fmt: skip


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(pick=st.integers(0, 299), how=st.sampled_from(MUTATIONS), seed=st.integers(0, 2**32))
def test_fuzz_mutated_mail_is_stored_or_quarantined_and_replies_stay_safe(
    messages: list[bytes], tagger: Tagger, ran: Counter[str], pick: int, how: str, seed: int
) -> None:
    data = mutate(messages[pick], how, random.Random(seed))
    raw = RawMessage("INBOX", 1, 1, NOW, len(data), data)
    done, failed = process([raw], tagger)  # must not raise: the stage loop quarantines
    parsed = [(item.raw, item.story) for item in done]
    triages = {item.story.story_id: item.triage for item in done}
    with tempfile.TemporaryDirectory() as folder, Store(
        StoreSettings(f"sqlite:///{folder}/s.db")) as store:  # fmt: skip
        result = store.stories.commit_batch(
            MailboxState("INBOX", 1), 1, parsed, failed, NOW, triages
        )
    assert result.stored + result.quarantined == 1
    assert all(q.reason for q in failed)
    for item in done:
        story, triage = item.story, item.triage
        decision = decide(story, triage, OWN, AcknowledgementSettings(), NOW, lambda _: False)
        if decision.send:
            check_reply(decision, story, triage)
    ran[how] += 1


def check_reply(decision: Decision, story: Story, triage: Triage) -> None:
    from intake.errors import SendError

    try:
        outgoing = render_acknowledgement(
            make_environment(TEMPLATES),
            decision,
            story.story_id,
            story.sender.name,
            reference(story.story_id),
            SmtpSettings(),
            NOW,
            help_text="Call 999.",
            team_name="The Team",
        )
    except SendError:
        return  # refused to render: the recipient was not one plain address
    reply = message_from_bytes(outgoing.data, policy=default)
    assert set(reply.keys()) <= REPLY_HEADERS, reply.keys()
    assert len(reply.get_all("To") or []) == 1 and "," not in str(reply["To"])
    assert outgoing.envelope_to in ((), (outgoing.to,)) and "\n" not in outgoing.to
