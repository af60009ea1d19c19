"""Pattern tables and single-line predicates for intake.clean: what a line looks like.

`intake.clean` decides structure (where history, signature and footer begin); this module only
answers questions about one line or one short span. Every regex is anchored or applied to a
bounded slice and has no nested unbounded repetition, so matching stays linear on hostile input.
"""

from __future__ import annotations

import re
import unicodedata

from intake.clean import labels

MAX_LINE = 1000  # header, attribution and footer lines are never longer; skip costly checks


def _phrases(table: str) -> tuple[str, ...]:
    """A "|"-separated table of phrases, kept as text so it stays compact and easy to extend."""
    return tuple(phrase.strip() for phrase in table.split("|") if phrase.strip())


def _wordset(table: str) -> frozenset[str]:
    """A whitespace-separated table of single words."""
    return frozenset(table.split())


def alternation(phrases: tuple[str, ...]) -> str:
    """A regex alternation of literal phrases, longest first so "kind regards" beats "regards"."""
    ordered = sorted(phrases, key=len, reverse=True)
    return "|".join(re.escape(phrase).replace(r"\ ", r"\s+") for phrase in ordered)


# --- quoted history ----------------------------------------------------------------------------

QUOTE_LINE = re.compile(r"[ \t]{0,3}>")
SUPERCITE_LINE = re.compile(r"[ \t]{0,2}[^\W\d_][\w.-]{0,15}>(?:\s|$)")  # "Richard> text"
# Both in one pattern: `is_quote` is asked of every line, one match call is half the cost.
_ANY_QUOTE = re.compile(QUOTE_LINE.pattern + "|" + SUPERCITE_LINE.pattern)
_QUOTE_REACH = 20  # either form has its ">" within this many characters

EMAIL = re.compile(r"[^\s<>@\"]{1,64}@[^\s<>@\"]{1,255}\.[^\s<>@\".]{1,63}")

# Outlook-style header blocks ("From: … Sent: … To: … Subject: …"), labels from intake.clean.labels.
FROM_KEYS = frozenset(labels.phrases("sender"))
_OTHER_KEYS = labels.phrases("fields")
HEADER_LINE = re.compile(
    r"[ \t]{0,3}\*{0,2}("
    + alternation((*FROM_KEYS, *_OTHER_KEYS))
    + r")\*{0,2}[ \t\u00a0]?[:：]\*{0,2}(?:\s|$)",
    re.IGNORECASE,
)

# Words a forwarder's note may consist of and still count as "no text of their own".
TRIVIAL_WORDS = _wordset(
    """fyi fya fwd fw fwded forward forwarded forwarding see below above attached attachment
    please pls read here is are my our the this that a an story email e-mail mail message for
    your info information hi hello hey dear team all as discussed requested promised
    i i'm im am have sending send you thanks thank cheers regards x ok"""
)
FORWARD_CUES = _wordset("fyi fya fwd fw fwded forward forwarded forwarding below")

# --- signatures --------------------------------------------------------------------------------

SIG_DASHES = re.compile(r"--[ \t]?$")
# A line that only draws a rule: "--", "______", "*****". Unicode dashes are added in is_rule();
# U+1427 "ᐧ" is the placeholder line that Gmail tracking extensions (Streak, Mixmax) append.
_RULE_CHARS = frozenset("-_=*~#+^\u1427\u2500\u2501")
NEXT_PART = re.compile(r"-{3,}\s?next part\s?-{3,}\s*$", re.IGNORECASE)  # Mailman's scrubber

SIGNOFF = re.compile(
    r"[\W_]{0,3}("
    + alternation(
        _phrases(
            """thanks|thank you|thanks again|thanks so much|thank you so much|many thanks|
            with thanks|thx|cheers|regards|kind regards|best regards|warm regards|
            warmest regards|kindest regards|best wishes|best|all the best|sincerely|
            yours sincerely|sincerely yours|yours faithfully|yours truly|respectfully|
            take care|love|with love|speak soon|greetings|viele grüße|viele grüsse|
            liebe grüße|beste grüße|mit freundlichen grüßen|freundliche grüße|mfg|gruß|grüße|
            lg|vg|cordialement|bien cordialement|bien à vous|salutations|merci|saludos|
            un saludo|atentamente|gracias|un abrazo|cordiali saluti|distinti saluti|saluti|
            grazie|met vriendelijke groet|vriendelijke groet|hartelijke groet|groeten|groet|
            mvg|med vänliga hälsningar|vänliga hälsningar|hälsningar|mvh|vennlig hilsen|
            med venlig hilsen|hilsen|pozdrawiam|z poważaniem|dziękuję|atenciosamente|abraços|
            obrigado|obrigada|cumprimentos"""
        )
    )
    + r")(?![^\W_])(.*)$",
    re.IGNORECASE,
)
_NAME = r"[^\W\d_][\w.'-]{0,20}"
SIGNATURE_DASH_NAME = re.compile(rf"(?:--?|—|–|~|//?)\s?{_NAME}(?:\s{_NAME})?$")  # "—Ryan", "-Carl"
PHONE = re.compile(r"\+?\(?\d[\d ().-]{6,20}\d")
URL = re.compile(r"(?:https?://|www\.)\S", re.IGNORECASE)
_WORD = re.compile(r"[^\W_][\w'’-]*")

# --- footers -----------------------------------------------------------------------------------

# "Sent from my iPhone" and friends, in the languages of the corpus.
DEVICE_LINE = re.compile(
    r"[\W_]{0,3}(?:"
    r"(?:sent|sendt|envoyé|enviado|inviato|verzonden|gesendet|skickat|wysłano|lähetetty|"
    r"odesláno|отправлено|enviada|get)\s+\[?(?:from|with|via|using|by|on|depuis|avec|de|desde|"
    r"con|da|dal|met|vanaf|von|fra|från|z|ze|с|из|outlook)\b"
    r"|from\s+my\s+\w|von\s+meinem\b.{0,60}\bgesendet|diese\s+nachricht\s+wurde\s+von\s+meinem\b"
    r"|[^\W\d_]{1,20}\s+from\s+(?:my\s+)?(?:mobile|phone|iphone|ipad|android)\b"
    r"|(?:從|从|发自|寄自)我的|iphoneから送信|" + alternation(labels.phrases("device")) + r"\b"
    r").{0,140}$",
    re.IGNORECASE,
)
# The first words DEVICE_LINE can open with ("iphoneから送信" and "从我的…" by their start).
_DEVICE_FIRST = frozenset(
    {phrase.split()[0] for phrase in labels.phrases("device")}
    | _wordset(
        """sent sendt envoyé enviado inviato verzonden gesendet skickat wysłano lähetetty
        odesláno отправлено enviada get from von diese 從我 从我 发自 寄自 ip"""
    )
)
_DEVICE_LEAD = " \t-_*.~>|[(•–—"
# Paragraph openings of legal, confidentiality, environment and virus-scan footers.
FOOTER_START = re.compile(
    r"[\W_]{0,5}(?:"
    r"(?:this|the|any)\s+(?:e-?mail|message|communication|transmission|information)\b.{0,160}"
    r"\b(?:confidential|privileged|intended|scanned|virus|legally|nhs)"
    r"|(?:the\s+)?information\s+(?:contained\s+)?in\s+this\s+(?:e-?mail|message)"
    r"|if\s+you\s+(?:are\s+not\s+the\s+intended|have\s+received\s+this)"
    r"|(?:please\s+)?(?:consider|think\s+of)\s+the\s+environment|think\s+before\s+you\s+print"
    r"|(?:confidentiality|legal|privacy|email)\s+(?:notice|disclaimer|statement|warning)"
    r"|disclaimer\b|confidential(?:ity)?\b.{0,40}$|nhs\s?mail\b"
    r"|.{0,60}\b(?:has\s+been|was|were)\s+(?:scanned|checked)\s+(?:for|by)\b"
    r"|questo\s+messaggio\s+e'?\s+stato\s+analizzato"
    r"|(?:views|opinions)\s+expressed\s+in\s+this"
    r"|registered\s+(?:in\s+england|office|charity|company)"
    r")",
    re.IGNORECASE,
)
LIST_FOOTER = re.compile(
    r".{0,120}(?:mailing\s+list|listinfo|list-?unsubscribe|mailman|"
    r"you\s+received\s+this\s+(?:message|email)\s+because\s+you\s+are\s+subscribed|"
    r"unsubscribe\s+from\s+this\s+(?:group|list)|majordomo|attachment\s+was\s+scrubbed)",
    re.IGNORECASE,
)
# A word every LIST_FOOTER phrase holds: asked first, since LIST_FOOTER's leading ".{0,120}"
# tries each phrase at each of 120 places (the costliest test of the stage on the bench).
_LIST_HINT = re.compile(r"list|subscribe|scrubbed|mailman|majordomo", re.IGNORECASE)
FIRST_PERSON = re.compile(r"\b(?:I|I'm|I've|[Mm]y|[Mm]e)\b")

# --- predicates --------------------------------------------------------------------------------


def header_line(line: str) -> re.Match[str] | None:
    """A "From: …" / "Sent: …" header line of an Outlook-style block (group 1: the field)."""
    if len(line) > MAX_LINE or (":" not in line and "：" not in line):
        return None  # most lines of a story: no field name can end here
    return HEADER_LINE.match(line)


def is_blank(line: str) -> bool:
    return not line.strip()


def is_quote(line: str) -> bool:
    return ">" in line[:_QUOTE_REACH] and _ANY_QUOTE.match(line) is not None


def is_rule(line: str) -> bool:
    s = line.strip()
    return bool(s) and all(
        c in _RULE_CHARS or c.isspace() or unicodedata.category(c) == "Pd" for c in s
    )


def is_sentence(line: str) -> bool:
    words = line.split()
    return len(words) >= 10 or (len(words) >= 6 and line.rstrip()[-1:] in ".!?:")


def is_sig_like(line: str) -> bool:
    """Short and not prose: a name, a job title, a phone number, an organisation."""
    return len(line.strip()) <= 80 and not is_sentence(line)


def is_sig_line(line: str) -> bool:
    """What may follow a sign-off: signature-like and not the end of a sentence."""
    return is_sig_like(line) and not ends_sentence(line)


def ends_sentence(line: str) -> bool:
    token = line.split()[-1]
    word = token.rstrip(".!?…")
    return word != token and len(word) >= 4 and word.isalpha() and word.islower()


def is_signoff(line: str) -> bool:
    match = SIGNOFF.match(line.strip()) if len(line) <= 120 else None
    if match is None:
        return False
    # Only a name may follow on the same line: "Regards, Jane" yes, "Thanks for reading" no.
    rest = _WORD.findall(match.group(2))
    return len(rest) <= 3 and all(word[0].isupper() for word in rest)


def names_sender(line: str, sender_name: str) -> bool:
    """A line that is the sender's name (maybe with a short title) or carries their address."""
    name = sender_name.casefold()
    folded = line.strip(" \t-—~/,.").casefold()
    if len(name) < 3:
        return False
    if "@" in name:
        return name in folded
    if folded == name or folded == name.split()[0]:
        return True
    # "Jane Doe, Staff Nurse" yes; "Jane Doe rang them herself." is a sentence of the story.
    rest = folded.removeprefix(name)
    return " " in name and rest != folded and len(rest.split()) <= 4 and not ends_sentence(line)


def is_contact(line: str, sender_name: str) -> bool:
    if PHONE.search(line) or EMAIL.search(line) or URL.search(line):
        return True
    return names_sender(line, sender_name)


def is_device(line: str) -> bool:
    return len(line) <= 200 and DEVICE_LINE.match(line.strip()) is not None


def may_be_device(line: str) -> bool:
    """A cheap first look before `is_device`, which the scan would otherwise ask of every line:
    the first or second word opens a device line ("Sent …", "Von meinem …", "X from my …")."""
    words = line.lstrip(_DEVICE_LEAD).split(None, 2)[:2]
    if not words or len(line) > 200:
        return False
    first = words[0].casefold()
    return (
        first in _DEVICE_FIRST
        or first[:2] in _DEVICE_FIRST
        or (len(words) == 2 and words[1].casefold() == "from")
    )


def is_list_footer(line: str) -> bool:
    """A mailing list's footer line ("… mailing list", a listinfo link, "unsubscribe …")."""
    if line.isascii():  # lower() is then exactly what IGNORECASE compares, and ten times faster
        low = line.lower()
        # Every LIST_FOOTER phrase holds one of these words (the words of _LIST_HINT).
        found = "list" in low or "subscribe" in low or "scrubbed" in low
        if not (found or "mailman" in low or "majordomo" in low):
            return False
    elif _LIST_HINT.search(line) is None:  # "ſ" matches "s" under IGNORECASE, for one
        return False
    return LIST_FOOTER.match(line) is not None


def has_link(paragraph: list[str]) -> bool:
    return any(URL.search(line) or EMAIL.search(line) for line in paragraph[:40])


def trivial_words(text: str) -> set[str] | None:
    """The words of a forwarder's note if they are all filler ("FYI", "see below"), else None."""
    words = {word.casefold() for word in _WORD.findall(text)}
    return words if len(words) <= 20 and words <= TRIVIAL_WORDS else None


# --- line-list helpers -------------------------------------------------------------------------


def skip_blank(lines: list[str], i: int) -> int:
    while i < len(lines) and is_blank(lines[i]):
        i += 1
    return i


def join(lines: list[str]) -> str:
    """Lines joined, without leading or trailing blank lines."""
    start = skip_blank(lines, 0)
    end = len(lines)
    while end > start and is_blank(lines[end - 1]):
        end -= 1
    return "\n".join(lines[start:end])


def join_parts(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def nonblank_above(lines: list[str], start: int, limit: int) -> list[int]:
    """Indexes of up to `limit` non-blank lines above `start`, nearest first."""
    found: list[int] = []
    for k in range(start - 1, -1, -1):
        if lines[k].strip():  # not is_blank(): a call per line was a tenth of the stage
            found.append(k)
            if len(found) >= limit:
                break
    return found


def dequote(line: str) -> str:
    stripped = line.lstrip(" \t")
    if not stripped.startswith(">"):
        return line
    return stripped[2:] if stripped.startswith("> ") else stripped[1:]
