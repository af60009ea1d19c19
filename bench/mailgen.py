"""A reproducible synthetic mailbox of story-like emails for the intake benchmark.

Message ``i`` depends only on ``(seed, i)``, so the mailbox for N=1,000 is the first 1,000
messages of the one for N=10,000. The mix, by share of messages:

- 40 % plain text (built with ``tests/conftest.py``'s ``story_message``),
- 20 % multipart/alternative, plain and HTML,
- 10 % quoted-printable plain text with non-ASCII punctuation and long lines,
- 10 % plain text with a small binary attachment (1-16 KiB, base64),
- 15 % replies with quoted history (attribution line, ``>`` and ``>>`` quotes),
-  5 % automated: half out-of-office auto-replies, half delivery-status bounces.

Stories run 200-800 words, built from a small vocabulary of people, places and complaints.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP

from conftest import story_message  # tests/ is on sys.path (see intake_bench.py)


def _phrases(text: str) -> tuple[str, ...]:
    """The "|"-separated phrases of ``text``."""
    return tuple(text.split("|"))


FIRST = _phrases(
    "Alex|Sam|Priya|Tom|Aisha|Gareth|Mei|Joan|Kwame|Rhiannon|Olu|Fiona|Dariusz|Helen|Imran|Beth"
)
LAST = _phrases("Jones|Patel|Okafor|Smith|Nowak|Evans|Chen|Murphy|Khan|Williams|Hughes|Ali")
PEOPLE = _phrases(
    "my mother|my father|my son|my daughter|my husband|my wife|my neighbour|the GP|"
    "the practice nurse|the social worker|the duty officer|the police officer|"
    "the ward sister|the care coordinator|the receptionist|the housing officer|"
    "the paramedic|the consultant|the pharmacist|I|we"
)
PLACES = _phrases(
    "the surgery|the hospital|the council|the police station|the care home|"
    "the mental health team|the housing office|A&E|the memory clinic|the pharmacy|"
    "social services|the school|the out-of-hours service"
)
VERBS = _phrases(
    "told|phoned|wrote to|asked|emailed|visited|waited for|called|"
    "explained everything to|complained to|chased"
)
WHAT = _phrases(
    "about her medication|about the discharge plan|about his care package|"
    "about the referral|about the missing letter|about what had happened|"
    "about the safeguarding concern|about the appointment|about the records|"
    "about the same problem|about the crisis plan|about the home visit"
)
TAILS = _phrases(
    "three times|again the next week|before anyone listened|"
    "and nobody wrote it down|but the notes never arrived|"
    "and had to start from the beginning|"
    "because the systems do not talk to each other|on the phone for an hour|"
    "and they had no record of it|which took weeks|"
    "and I had to repeat the whole story|"
)
OPENERS = _phrases(
    "In March|Last winter|After the fall|When she came home|The next morning|"
    "Two weeks later|Eventually|At first|Then|In the end|Every time|Meanwhile|"
    "On the Friday"
)
FEELINGS = _phrases(
    "It was exhausting.|I felt nobody was listening.|We were lucky in the end.|"
    "I still do not understand why.|Nobody seemed to know who was responsible.|"
    "It should not be this hard.|The staff were kind but overwhelmed.|"
    "I hope this helps someone.|Nobody had read the previous notes."
)
TEAM = "Stories Team <stories@example.org>"
DATE = "Tue, 24 Nov 2026 09:00:00 +0000"


def _sentence(rng: random.Random) -> str:
    """One plausible sentence of a story."""
    person, place = rng.choice(PEOPLE), rng.choice(PLACES)
    form = rng.randrange(5)
    if form == 0:
        text = f"{rng.choice(OPENERS)}, {person} {rng.choice(VERBS)} {place} {rng.choice(WHAT)}"
    elif form == 1:
        text = f"{person} had to tell {place} {rng.choice(WHAT)} {rng.choice(TAILS)}"
    elif form == 2:
        text = f"{person} said {place} would call back, but nobody did"
    elif form == 3:
        return rng.choice(FEELINGS)
    else:
        text = f"{person} {rng.choice(VERBS)} {place} {rng.choice(TAILS)}"
    text = text.strip()
    return text[0].upper() + text[1:] + "."


def story_paragraphs(rng: random.Random, words: int) -> list[str]:
    """Paragraphs of 3-6 sentences totalling at least ``words`` words."""
    paragraphs: list[str] = []
    count = 0
    while count < words:
        sentences = [_sentence(rng) for _ in range(rng.randint(3, 6))]
        paragraphs.append(" ".join(sentences))
        count += sum(len(s.split()) for s in sentences)
    return paragraphs


def _person(rng: random.Random, i: int) -> tuple[str, str]:
    """(display name, From header) for message ``i``."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return first, f"{first} {last} <{first.lower()}.{last.lower()}{i}@example.net>"


def _letter(rng: random.Random, first: str, wrap: bool = True) -> str:
    """A whole story email body: greeting, 200-800 words, sign-off, sometimes a signature."""
    paragraphs = story_paragraphs(rng, rng.randint(200, 800))
    if wrap:
        paragraphs = [textwrap.fill(p, 72) for p in paragraphs]
    body = rng.choice(("Dear team,", "Hello,", "Hi there,")) + "\n\n" + "\n\n".join(paragraphs)
    body += f"\n\n{rng.choice(('Kind regards', 'Best wishes', 'Thanks'))},\n{first}\n"
    if rng.random() < 0.3:
        body += f"-- \n{first}\nTel 01632 960{rng.randint(100, 999)}\n"
    return body


def _message(i: int, seed: int, sender: str, subject: str) -> EmailMessage:
    """An EmailMessage with the usual headers filled in."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = "stories@example.org"
    msg["Subject"] = subject
    msg["Date"] = DATE
    msg["Message-ID"] = f"<bench-{seed}-{i}@example.net>"
    return msg


def _finish(msg: EmailMessage, i: int, seed: int) -> bytes:
    """The message as bytes, with fixed MIME boundaries (the stdlib's are random)."""
    for n, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_bench_{seed}_{i}_{n}")
    return msg.as_bytes()


def _plain(rng: random.Random, i: int, seed: int) -> bytes:
    first, sender = _person(rng, i)
    return story_message(
        i, message_id=f"<bench-{seed}-{i}@example.net>", body=_letter(rng, first), sender=sender
    )


def _html(rng: random.Random, i: int, seed: int) -> bytes:
    first, sender = _person(rng, i)
    text = _letter(rng, first)
    msg = _message(i, seed, sender, "What happened to my mother")
    msg.set_content(text)
    paras = "".join(f"<p>{p.replace(chr(10), ' ')}</p>" for p in text.split("\n\n"))
    html = f"<html><body><div style='font-family:Arial'>{paras}</div></body></html>"
    msg.add_alternative(html.replace("&", "&amp;"), subtype="html")
    return _finish(msg, i, seed)


def _quoted_printable(rng: random.Random, i: int, seed: int) -> bytes:
    first, sender = _person(rng, i)
    text = _letter(rng, first, wrap=False).replace("do not", "don\u2019t")
    text = text.replace(" - ", " \u2013 ") + "\nSent from my caf\u00e9 \u2013 sorry for typos\n"
    msg = _message(i, seed, sender, "Telling my story \u2013 three agencies")
    msg.set_content(text, cte="quoted-printable")
    return _finish(msg, i, seed)


def _attachment(rng: random.Random, i: int, seed: int) -> bytes:
    first, sender = _person(rng, i)
    msg = _message(i, seed, sender, "My story, with the letter attached")
    msg.set_content(_letter(rng, first))
    kind = rng.choice((("application", "pdf", "letter.pdf"), ("image", "jpeg", "photo.jpg")))
    data = rng.randbytes(rng.randint(1024, 16 * 1024))
    msg.add_attachment(data, maintype=kind[0], subtype=kind[1], filename=f"{i}-{kind[2]}")
    return _finish(msg, i, seed)


def _reply(rng: random.Random, i: int, seed: int) -> bytes:
    first, sender = _person(rng, i)
    earlier = [textwrap.fill(p, 70) for p in story_paragraphs(rng, rng.randint(60, 200))]
    history = "\n".join(f"> {line}".rstrip() for line in "\n\n".join(earlier).splitlines())
    request = "Thank you for writing to us. Could you tell us more about what happened?"
    quoted = f"> {request}\n>\n>> {earlier[0].splitlines()[0]}\n{history}\n"
    msg = _message(i, seed, sender, "Re: Your story for the campaign")
    msg["In-Reply-To"] = f"<team-{seed}-{i}@example.org>"
    msg["References"] = f"<story-{seed}-{i}@example.net> <team-{seed}-{i}@example.org>"
    attribution = f"On Mon, 23 Nov 2026 at 10:15, {TEAM} wrote:"
    msg.set_content(f"{_letter(rng, first)}\n{attribution}\n{quoted}")
    return _finish(msg, i, seed)


def _auto_reply(rng: random.Random, i: int, seed: int) -> bytes:
    _, sender = _person(rng, i)
    msg = _message(i, seed, sender, "Automatic reply: Your story for the campaign")
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(
        f"I am out of the office until {rng.randint(1, 28)} December and will "
        "reply when I return. For urgent matters call the duty desk.\n"
    )
    return _finish(msg, i, seed)


def _bounce(rng: random.Random, i: int, seed: int) -> bytes:
    boundary = f"bounce-{seed}-{i}"
    lost = f"{rng.choice(FIRST).lower()}{i}@example.invalid"
    text = f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: stories@example.org
Subject: Undelivered Mail Returned to Sender
Date: {DATE}
Message-ID: <bench-{seed}-{i}@mx.example.org>
Auto-Submitted: auto-replied
Return-Path: <>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org. Your message could not be delivered
to <{lost}>: host example.invalid said: 550 5.1.1 User unknown.

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Final-Recipient: rfc822; {lost}
Action: failed
Status: 5.1.1

--{boundary}
Content-Type: text/rfc822-headers

From: {TEAM}
To: <{lost}>
Subject: Thank you for your story

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode("ascii")


_KINDS: tuple[tuple[float, Callable[[random.Random, int, int], bytes]], ...] = (
    (0.40, _plain),
    (0.20, _html),
    (0.10, _quoted_printable),
    (0.10, _attachment),
    (0.15, _reply),
    (0.025, _auto_reply),
    (0.025, _bounce),
)


def message(seed: int, i: int) -> bytes:
    """Message ``i`` of the mailbox for ``seed`` (CRLF line endings, as on the wire)."""
    rng = random.Random(f"{seed}:{i}")
    pick = rng.random()
    for share, build in _KINDS:
        if pick < share:
            return build(rng, i, seed)
        pick -= share
    return _plain(rng, i, seed)
