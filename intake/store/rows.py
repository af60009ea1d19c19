"""Store stage: records <-> plain row dicts for ``intake.store.engine``. Stdlib only."""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import Any

from intake.records import (
    Address,
    Attachment,
    Evidence,
    RawMessage,
    Story,
    StoryStatus,
    Triage,
)

# An Evidence as its JSON row, [label, rule, start, end, text], built without a Python loop.
_EVIDENCE_ROW = attrgetter("label", "rule", "start", "end", "text")


def story_row(story: Story, now: datetime) -> dict[str, Any]:
    # Field by field: dataclasses.asdict deep-copies every record and was 6% of a run.
    mailbox, uidvalidity, uid = story.source
    return {
        "story_id": story.story_id, "mailbox": mailbox, "uidvalidity": uidvalidity, "uid": uid,
        "sender_name": story.sender.name, "sender_address": story.sender.address,
        "recipients": [{"name": r.name, "address": r.address} for r in story.recipients],
        "subject": story.subject, "sent_at": story.sent_at, "received_at": story.received_at,
        "text": story.text, "quoted": story.quoted, "signature": story.signature,
        "footer": story.footer, "forwarded": story.forwarded, "html_only": story.html_only,
        "attachments": [{"name": a.name, "content_type": a.content_type, "size": a.size}
                        for a in story.attachments],
        "defects": list(story.defects), "headers": [list(h) for h in story.headers],
        "status": StoryStatus.RECEIVED.value, "stored_at": now,
    }  # fmt: skip


def row_story(row: Any) -> Story:
    return Story(
        story_id=row["story_id"],
        sender=Address(row["sender_name"], row["sender_address"]),
        recipients=tuple(Address(**a) for a in row["recipients"]),
        subject=row["subject"], sent_at=row["sent_at"], received_at=row["received_at"],
        text=row["text"], quoted=row["quoted"], signature=row["signature"],
        footer=row["footer"], forwarded=row["forwarded"], html_only=row["html_only"],
        attachments=tuple(Attachment(**a) for a in row["attachments"]),
        defects=tuple(row["defects"]),
        headers=tuple((h[0], h[1]) for h in row["headers"]),
        source=(row["mailbox"], row["uidvalidity"], row["uid"]),
    )  # fmt: skip


def triage_row(triage: Triage, now: datetime) -> dict[str, Any]:
    return {
        "story_id": triage.story_id, "kind": triage.kind, "themes": list(triage.themes),
        "scores": dict(triage.scores),
        "evidence": list(map(_EVIDENCE_ROW, triage.evidence)),  # JSON writes each as a list
        "review_reasons": list(triage.review_reasons), "tagged_at": now,
        "agencies": list(map(_EVIDENCE_ROW, triage.agencies)),
    }  # fmt: skip


def row_triage(row: Any) -> Triage | None:
    if row["triage_story_id"] is None:
        return None
    return Triage(
        story_id=row["triage_story_id"], kind=row["triage_kind"],
        themes=tuple(row["triage_themes"]),
        scores=tuple((k, float(v)) for k, v in row["triage_scores"].items()),
        evidence=tuple(Evidence(str(e[0]), str(e[1]), int(e[2]), int(e[3]), str(e[4]))
                       for e in row["triage_evidence"]),
        review_reasons=tuple(row["triage_review_reasons"]),
        agencies=tuple(Evidence(str(e[0]), str(e[1]), int(e[2]), int(e[3]), str(e[4]))
                       for e in row["triage_agencies"] or ()),
    )  # fmt: skip


def raw_row(raw: RawMessage, story: Story) -> dict[str, Any]:
    return {"story_id": story.story_id, "internal_at": raw.internal_at, "size": raw.size,
            "too_large": raw.too_large, "data": raw.data}  # fmt: skip


def run_summary(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    m = row._mapping
    return {"command": m["command"], "started_at": plain(m["started_at"]),
            "finished_at": plain(m["finished_at"]), "counts": m["counts"],
            "error": m["error"]}  # fmt: skip


def plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
