"""A withdrawal asked in the subject line alone: "Please delete my story" above a body of
"Thanks, Jo" (or nothing). Stdlib only.

The body is what the tagger reads; people also put the whole request in the subject, as they do
with "unsubscribe" for Mailman. Only a subject the sender wrote is read: a reply's or forward's
("Re:", "AW:", "Fwd:" …) belongs to the thread, often to our own acknowledgement. It counts only
through themes.toml's withdrawal phrases that ask us (``asking.reads_as_request``, as in the
body), never through the classifier: a subject is too short for a guess. A short body makes the
message a withdrawal; a story told beneath the subject, or another request asked in the body,
makes it a mixed request, which a person confirms before anything is removed
(``rules.MIXED_REQUEST``).
"""

from __future__ import annotations

import re
from dataclasses import replace

from intake.records import Evidence, Kind, Triage
from triage.tag.asking import reads_as_request
from triage.tag.judge import WITHDRAWAL_SHORT_WORDS, Reading
from triage.tag.rules import AUTOMATED, MIXED_REQUEST, REVIEW_DEFECTS, WITHDRAWAL

# Reply and forward prefixes of the common mail clients and languages, repeated or numbered
# ("Re[2]:", "RE: AW:", "Fwd:", "TR:", "RV:", "Odp:", "Antw:", "SV:", "VS:", "R:", "I:").
_THREAD_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|odp|res|ref|r|wg|fw|fwd|tr|enc|rv|i|ynt|yan)\s*(?:\[\d+\])?\s*[:：]",
    re.IGNORECASE,
)
SUBJECT_CHARS = 300  # a subject is one line; a hostile megabyte one is read up to here
SHORT_BODY_WORDS = 3  # "Thanks, Jo": a sign-off, not a request of its own
SUBJECT_RULE = "subject"  # Evidence.rule of a request read in the subject (an empty span)


def own_subject(subject: str) -> str:
    """The subject when the sender wrote it, else "" (a reply's or forward's, or none)."""
    return "" if _THREAD_PREFIX.match(subject) else subject.strip()[:SUBJECT_CHARS]


def may_ask_in_subject(triage: Triage) -> bool:
    """Whether a message read this way could still be a withdrawal asked in its subject: a
    story, or another request (the classifier may read "Thanks, Jo" as one; a subject's phrase
    that asks outranks its guess)."""
    return triage.kind not in (AUTOMATED, WITHDRAWAL)


def asks_withdrawal(subject: str, reading: Reading) -> bool:
    """Whether the subject's withdrawal phrases ask us for one (``reading`` is of ``subject``)."""
    return any(
        hit.section == "requests"
        and f"request:{hit.name}" == WITHDRAWAL
        and reads_as_request(subject, hit.start, hit.end)
        for hit in reading.hits
    )


def as_withdrawal(triage: Triage, body_words: int) -> Triage:
    """``triage`` as a withdrawal asked in the subject. The evidence is an empty span named
    ``subject`` (Evidence spans are of Story.text; the subject is shown beside it). A story told
    beneath it keeps its themes out (requests tell none) and goes to a person first."""
    told = bool(triage.themes) and body_words > WITHDRAWAL_SHORT_WORDS
    # A body that asks something else in a sentence ("please fix my son's name") as well:
    # which of the two the sender means is a person's call.
    told = told or (Kind.is_request(triage.kind) and body_words > SHORT_BODY_WORDS)
    reasons = tuple(r for r in triage.review_reasons if r in REVIEW_DEFECTS)  # the body's
    return replace(
        triage,
        kind=WITHDRAWAL,
        themes=(),
        evidence=(Evidence("withdrawal", SUBJECT_RULE, 0, 0, ""),),
        review_reasons=(*reasons, MIXED_REQUEST) if told else reasons,
    )
