"""What the command line prints: export rows, the counts line, the demo summary. Stdlib only.

Fields a stage has not filled (a story stored before tagging, an acknowledgement not yet
decided) are null or empty, never invented.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any, TextIO

from intake.records import RunCounts, Triage
from intake.store.engine import Store

EXPORT_FIELDS = (
    "story_id", "reference", "mailbox", "sender", "sender_name", "subject", "sent_at",
    "received_at", "kind", "themes",
    "scores", "evidence", "needs_review", "review_reasons", "acknowledgement", "urgent",
    "quarantined", "agencies", "agency_evidence",
    "text", "words", "quoted", "signature", "footer", "attachments", "defects",
)  # fmt: skip


def export_rows(
    store: Store, reference: Callable[[str], str] | None = None
) -> Iterator[dict[str, Any]]:
    """One plain dict per stored story, then one per quarantined message.

    ``reference(story_id)`` is the story's ``ST-`` reference (``triage.reply.policy.reference``,
    handed in: intake does not import triage); without it the column is null. A quarantined
    message has none: it is not a story yet, and ``requeue`` may store it under another id.
    """
    acknowledgements = store.outbox.outbox_states()
    urgent = store.outbox.urgent_ids()
    for story, triage in store.stories.triaged():
        yield {
            "story_id": story.story_id,
            "reference": reference(story.story_id) if reference else None,
            "mailbox": story.source[0],
            "sender": story.sender.address,
            "sender_name": story.sender.name,
            "subject": story.subject,
            "sent_at": story.sent_at.isoformat() if story.sent_at else None,
            "received_at": story.received_at.isoformat(),
            **_triage_fields(triage),
            "acknowledgement": acknowledgements.get(story.story_id),
            "urgent": story.story_id in urgent,
            "quarantined": None,
            "text": story.text,
            "words": len(story.text.split()),
            # What cleaning set apart from the sender's words: kept, so a reader can check it.
            "quoted": story.quoted,
            "signature": story.signature,
            "footer": story.footer,
            "attachments": [asdict(a) for a in story.attachments],
            "defects": list(story.defects),
        }  # fmt: skip
    for entry in store.quarantine.quarantined():
        digest = hashlib.sha256(entry.raw.data).hexdigest()
        yield {name: None for name in EXPORT_FIELDS} | {
            "story_id": f"sha256:{digest}",
            "mailbox": entry.raw.mailbox,
            "received_at": entry.raw.internal_at.isoformat(),
            "themes": [], "scores": {}, "evidence": {}, "attachments": [], "defects": [],
            "agencies": [], "agency_evidence": {},
            "review_reasons": [],
            "quarantined": f"{entry.stage}: {entry.reason}",
        }  # fmt: skip


def _triage_fields(triage: Triage | None) -> dict[str, Any]:
    if triage is None:  # stored before it could be tagged: empty, never invented
        return {"kind": None, "themes": [], "scores": {}, "evidence": {}, "needs_review": None,
                "review_reasons": [], "agencies": [], "agency_evidence": {}}  # fmt: skip
    evidence: dict[str, list[dict[str, Any]]] = {}
    for item in triage.evidence:
        evidence.setdefault(item.label, []).append(
            {"text": item.text, "start": item.start, "end": item.end, "rule": item.rule}
        )
    agencies: dict[str, list[dict[str, Any]]] = {}
    for item in triage.agencies:
        agencies.setdefault(item.label, []).append(
            {"text": item.text, "start": item.start, "end": item.end}
        )
    return {"kind": triage.kind, "themes": list(triage.themes), "scores": dict(triage.scores),
            "evidence": evidence, "needs_review": triage.needs_review,
            "review_reasons": list(triage.review_reasons), "agencies": list(agencies),
            "agency_evidence": agencies}  # fmt: skip


def export(
    store: Store, fmt: str, out: TextIO, reference: Callable[[str], str] | None = None
) -> None:
    """Write every story as JSON lines or CSV (lists and maps as JSON inside the cell; a
    cell a spreadsheet would run as a formula starts with ``'``, see ``spreadsheet_safe``)."""
    rows = export_rows(store, reference)
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value
    return spreadsheet_safe(text) if isinstance(text, str) else text


# OWASP's CSV-injection list (= + - @ tab CR), plus LF, and the full-width forms of the four
# signs, which some spreadsheet locales read as the ASCII ones. Subjects, names and text come
# from strangers: a cell starting with one of these must stay text, never become a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would otherwise read it as a formula."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def counts_line(counts: RunCounts, names: Sequence[str] | None = None) -> str:
    """The counts of one pass (or only ``names``) as ``name=value`` pairs."""
    values = asdict(counts)
    return " ".join(f"{k}={values[k]}" for k in (names or values))


class Progress:
    """How far a pass has got: messages done, rate and time left.

    ``update`` returns the figures for the per-batch log line; on a terminal (``stream``) it
    also redraws one line in place, so a first run on a large backlog shows it is moving.
    Counts and times only. ``clock`` is a monotonic clock in seconds.
    """

    def __init__(self, stream: TextIO | None, clock: Callable[[], float]) -> None:
        self._stream, self._clock = stream, clock
        self._began = clock()
        self._drawn = False

    def update(self, done: int, remaining: int) -> str:
        """Record ``done`` messages so far with ``remaining`` still to come."""
        elapsed = max(self._clock() - self._began, 1e-9)
        rate = done / elapsed
        left = remaining / rate if rate else 0.0
        if self._stream is not None:
            total = done + remaining
            self._stream.write(f"\r{done:,}/{total:,} messages, {rate:,.0f}/s, "
                               f"{_duration(left)} left \x1b[K")  # fmt: skip
            self._stream.flush()
            self._drawn = True
        return f"done={done} remaining={remaining} rate={rate:.0f}/s eta={left:.0f}s"

    def close(self) -> None:
        """End the terminal line, if one was drawn."""
        if self._stream is not None and self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def demo_summary(store: Store, out: TextIO) -> None:
    """A short table of what was stored, for ``make demo``: references and shapes, no text."""
    header = f"{'story_id':<40} {'words':>5}  {'kind':<20} {'acknowledgement':<26}"
    out.write(f"{header}themes (review)\n")
    acknowledgements = store.outbox.outbox_states()
    for story, triage in store.stories.triaged():
        kind = triage.kind if triage else "-"
        themes = ",".join(triage.themes) if triage and triage.themes else "-"
        review = f" ({','.join(triage.review_reasons)})" if triage and triage.needs_review else ""
        ack = acknowledgements.get(story.story_id, "-")
        out.write(f"{story.story_id[:40]:<40} {len(story.text.split()):>5}  {kind:<20} "
                  f"{ack:<26}{themes}{review}\n")  # fmt: skip
    for entry in store.quarantine.quarantined():
        out.write(f"quarantined uid={entry.raw.uid}: {entry.stage}: {entry.reason[:80]}\n")
